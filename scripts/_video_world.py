"""World-video data shared by ``train_video_ground.py`` and ``benchmarks/bench_video.py``.

Seed ranges (objects theme videos): training ``GROUND_TRAIN``, development ``GROUND_DEV`` (choosing the
epoch), test ``GROUND_TEST`` (reported only). Each video is written as an mp4 and read back through
the same PyAV path as the tools, then encoded once with the CLIP spec; each event is one query.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

GROUND_TRAIN = 3_000_000
GROUND_DEV = 3_100_000
GROUND_TEST = 3_200_000


def settings_for(root: Path) -> Any:
    from vltools.core.settings import Settings

    return Settings(allowed_roots=[root], home=root / "home", device="cpu")


def world_queries(base: int, count: int, folder: Path, clip: str = "demo", *, split: str = "train",
                  fps: float = 4.0, log=None) -> list[dict[str, Any]]:
    """[{seed, path, duration, ff (FrameFeatures), events: [{caption, start, end, q}]}] for seeds base..base+count."""
    from vltools.core import Context
    from vltools.models.clip import get_clip
    from vltools.tools.video._frames import encode_video
    from vltools.world import generate_object_video, write_video

    folder.mkdir(parents=True, exist_ok=True)
    settings = settings_for(folder)
    ctx = Context(settings=settings)
    backend = get_clip(clip, settings)
    out = []
    captions: list[str] = []
    for k in range(count):
        seed = base + k
        v = generate_object_video(seed, split=split)  # type: ignore[arg-type]
        path = folder / f"v{seed}.mp4"
        if not path.exists():
            write_video(v.frames, path, v.fps)
        ff = encode_video(str(path), ctx, backend, fps=fps, max_frames=256)
        evs = [{"caption": e["caption"], "start": float(e["start"]), "end": float(e["end"]), "type": e["type"],
                "concept": e["concept"]} for e in v.events]
        captions += [e["caption"] for e in evs]
        out.append({"seed": seed, "path": str(path), "duration": ff.duration, "ff": ff, "events": evs,
                    "caption": v.caption})
        if log and (k + 1) % 50 == 0:
            log(f"encoded {k + 1}/{count} videos from seed {base}")
    uniq = sorted(set(captions))
    vecs, _ = backend.encode_texts(uniq)
    table = dict(zip(uniq, vecs, strict=True))
    for item in out:
        for e in item["events"]:
            e["q"] = np.asarray(table[e["caption"]], dtype=np.float32)
    return out


DEFECTS = ("frozen", "jitter", "flicker", "wrong_content")


def plant_defect(frames: list[np.ndarray], defect: str, seed: int, other: list[np.ndarray] | None = None
                 ) -> list[np.ndarray]:
    """``frames`` with one planted generation defect.

    frozen: every frame from 30 % on repeats the frame at 30 %; jitter: each frame shifted by a random
    -4..4 px (edges repeated); flicker: alternate frames 25 % brighter / 20 % darker; wrong_content: the
    frames of ``other`` (another clip) instead.
    """
    rng = np.random.default_rng(seed)
    n = len(frames)
    if defect == "frozen":
        cut = int(0.3 * n)
        return [f if i < cut else frames[cut] for i, f in enumerate(frames)]
    if defect == "jitter":
        out = []
        for f in frames:
            dx, dy = (int(v) for v in rng.integers(-4, 5, size=2))
            g = np.pad(f, ((4, 4), (4, 4), (0, 0)), mode="edge")
            out.append(g[4 + dy : 4 + dy + f.shape[0], 4 + dx : 4 + dx + f.shape[1]].copy())
        return out
    if defect == "flicker":
        return [np.clip(f.astype(np.float32) * (1.25 if i % 2 else 0.8), 0, 255).astype(np.uint8)
                for i, f in enumerate(frames)]
    if defect == "wrong_content":
        if other is None:
            raise ValueError("wrong_content needs the other clip's frames")
        return list(other)
    raise ValueError(f"unknown defect {defect}")
