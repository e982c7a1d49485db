"""Materialise a world dataset on disk: images/*.png, videos/*.mp4 and labels.jsonl.

Item ``k`` of kind image uses scene seed ``DATASET_SEED_BASE + seed * SEED_STRIDE + k`` and item
``k`` of kind video video seed ``... + 500_000 + k``, so a dataset is a pure function of its
arguments, and its scenes never coincide with the demo CLIP's training layouts (seeds 1,000,000 +
k, k < a few thousand) or with its evaluation scenes (seeds from 9,000,000).
Every labels.jsonl line holds: id, kind, file (relative path), seed, theme, caption, captions (image
scenes also heldout_captions), labels; videos add fps, duration and events with start/end. Theme
"objects" adds qa (question-answer pairs) to images, masks (run-length, `objects.rle_decode`) and
per-frame tracks to the labels; its concepts come from ``split`` ("train" unless asked).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vltools.core.paths import atomic_output
from vltools.world.degrade import degrade
from vltools.world.scene import generate_scene
from vltools.world.video import generate_video, write_video

SEED_STRIDE = 1_000_003
DATASET_SEED_BASE = 10_000_000_000  # far above the training (1e6 + k) and evaluation (9e6 + k) seeds


def image_seed(seed: int, k: int) -> int:
    return DATASET_SEED_BASE + seed * SEED_STRIDE + k


def video_seed(seed: int, k: int) -> int:
    return DATASET_SEED_BASE + seed * SEED_STRIDE + 500_000 + k


def materialise(
    out_dir: str | Path,
    *,
    images: int,
    videos: int,
    seed: int = 0,
    image_size: int | None = None,
    single: bool = False,
    degradation: str | None = None,
    degradation_level: int = 0,
    video_size: tuple[int, int] = (128, 96),
    fps: float = 8.0,
    progress: Callable[[int, int, str], None] | None = None,
    theme: str = "shapes",
    split: str = "train",
    background: str | None = None,
    tint: str | None = None,
    audio: bool = False,
) -> dict[str, Any]:
    """Write the dataset; returns counts and the labels.jsonl path.

    ``theme`` "shapes" (default) or "objects"; ``split``, ``background``, ``tint`` and ``audio`` (a tone
    per event's object category muxed into each video; cues in its labels) apply to "objects".
    """
    if audio and theme != "objects":
        raise ValueError("audio cues apply to the objects theme only")
    if theme not in ("shapes", "objects"):
        raise ValueError(f"unknown theme {theme!r}")
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    if videos:
        (out / "videos").mkdir(parents=True, exist_ok=True)
    total = images + videos
    done = 0
    labels_path = out / "labels.jsonl"
    # Every file goes to a fresh temp name (O_EXCL) and is renamed into place: a symlink planted
    # at an output name is replaced, never written through.
    with atomic_output(labels_path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for k in range(images):
            s = image_seed(seed, k)
            if theme == "objects":
                from vltools.world.objects import generate_object_scene

                sc = generate_object_scene(s, image_size=image_size, n_objects=1 if single else None, split=split,
                                           background=background, tint=tint)
            else:
                sc = generate_scene(s, image_size=image_size, single=single)
            img = sc.image
            if degradation:
                img = degrade(img, degradation, degradation_level, seed=s)
            rel = f"images/img_{k:06d}.png"
            with atomic_output(out / rel) as tmp_img:
                img.save(tmp_img)
            rec = {
                "id": f"img_{k:06d}", "kind": "image", "file": rel, "seed": s, "theme": theme, "caption": sc.caption,
                "captions": sc.captions, "heldout_captions": sc.heldout_captions, "labels": sc.labels,
            }
            if theme == "objects":
                rec["qa"] = sc.qa
            if degradation:
                rec["degradation"] = {"kind": degradation, "level": degradation_level}
            fh.write(json.dumps(rec) + "\n")
            done += 1
            if progress:
                progress(done, total, f"image {k + 1}/{images}")
        for k in range(videos):
            s = video_seed(seed, k)
            if theme == "objects":
                from vltools.world.objects_video import generate_object_video

                v = generate_object_video(s, size=video_size, fps=fps, split=split, background=background, audio=audio)
            else:
                v = generate_video(s, size=video_size, fps=fps)
            rel = f"videos/vid_{k:06d}.mp4"
            with atomic_output(out / rel) as tmp_vid:
                write_video(v.frames, tmp_vid, v.fps, audio=getattr(v, "audio", None))
            rec = {
                "id": f"vid_{k:06d}", "kind": "video", "file": rel, "seed": s, "theme": theme, "caption": v.caption,
                "captions": v.captions, "fps": v.fps, "duration": v.labels["duration"], "events": v.events,
                "labels": v.labels,
            }
            fh.write(json.dumps(rec) + "\n")
            done += 1
            if progress:
                progress(done, total, f"video {k + 1}/{videos}")
    return {"images": images, "videos": videos, "labels": str(labels_path)}


def read_labels(path: str | Path) -> list[dict[str, Any]]:
    """The records of a labels.jsonl (or of the folder holding it)."""
    p = Path(path)
    if p.is_dir():
        p = p / "labels.jsonl"
    with open(p, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
