"""ETVA (P35) vs CLIPScore on the synthetic world's videos, where the truth is known.

    python benchmarks/bench_etva.py [--videos N] [--frames 8] [--model demo-shapes]

For each held-out world video with a moving object, captions are composed from its labels: the true
caption ("a red circle moves to the left") and every combination of four perturbations — wrong
colour, wrong shape, wrong direction, wrong count — so a caption holds 0..4 true facts of the 4.
Each (video, caption) is scored by `t2v.etva` (fraction of atomic questions answered yes; soft score
= mean P(yes)) and by CLIPScore (mean over the same sampled frames of the CLIP cosine between frame
and caption, via `clip.score`). Reported side by side in one run:

- pairwise accuracy per perturbation: how often the true caption scores above the caption with that
  one fact wrong (a tie counts one half);
- Spearman correlation between the score and the number of true facts (pooled over all pairs, and
  the mean of per-video correlations).

Writes benchmarks/results/etva_world.json and .md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RESULTS = Path(__file__).resolve().parent / "results"
KINDS = ("colour", "shape", "direction", "count")
NUMBER = {1: "a", 2: "two", 3: "three"}
OTHER_DIRECTION = {"left": "right", "right": "left", "up": "down", "down": "up"}
WHERE = {"left": "to the left", "right": "to the right", "up": "up", "down": "down"}


def caption(facts: dict) -> str:
    n = facts["count"]
    noun = facts["shape"] if n == 1 else (facts["shape"] + ("es" if facts["shape"].endswith("s") else "s"))
    det = NUMBER[n] if n != 1 else ("an" if facts["colour"][0] in "aeiou" else "a")
    verb = "moves" if n == 1 else "move"
    return f"{det} {facts['colour']} {noun} {verb} {WHERE[facts['direction']]}"


def perturb(facts: dict, kinds: tuple[str, ...], rng) -> dict:
    from vltools.world import vocab

    out = dict(facts)
    for k in kinds:
        if k == "colour":
            out["colour"] = str(rng.choice([c for c in vocab.COLOUR_NAMES if c != facts["colour"]]))
        elif k == "shape":
            out["shape"] = str(rng.choice([s for s in vocab.SHAPES if s != facts["shape"]]))
        elif k == "direction":
            out["direction"] = OTHER_DIRECTION[facts["direction"]]
        else:
            out["count"] = 2 if facts["count"] == 1 else 1
    return out


def spearman(xs: list[float], ys: list[float]) -> float | None:
    from scipy.stats import spearmanr

    if len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    return float(spearmanr(xs, ys).statistic)


def moving_facts(video) -> dict | None:
    """Facts of the clip's moving object (colour, shape, count 1, dominant direction), or None when the
    move is too diagonal to name one direction."""
    from vltools.world import vocab

    ev = video.events[0]
    ob = next(o for o in video.labels["objects"] if o["id"] == ev["object"])
    (r0, c0), (r1, c1) = (divmod(vocab.POSITIONS.index(ev[k]), 3) for k in ("from", "to"))
    if r0 == r1:
        direction = "right" if c1 > c0 else "left"
    elif c0 == c1:
        direction = "down" if r1 > r0 else "up"
    else:
        return None
    return {"colour": ob["colour"], "shape": ob["shape"], "count": 1, "direction": direction}


def world_videos(n: int, folder: Path) -> list[tuple[Path, dict]]:
    """n held-out world videos (seeds from 7,000,001) with one or two objects, one of which makes one
    clear left/right/up/down move: (mp4 path, facts of the moving object)."""
    from vltools.world.video import generate_video, write_video

    out = []
    seed = 7_000_000
    while len(out) < n:
        seed += 1
        vid = generate_video(seed, n_objects=1 + seed % 2, n_events=1, event_types=("move",))
        facts = moving_facts(vid)
        if facts is None:
            continue
        path = folder / f"world_{seed}.mp4"
        write_video(vid.frames, path, fps=vid.fps)
        out.append((path, facts))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=30)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--model", default="demo-shapes")  # v1: the recorded figures
    ap.add_argument("--out", default="etva_world")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    torch.set_num_threads(2)
    import vltools
    from vltools.core.settings import get_settings
    from vltools.models.video import sample_frames

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_vqa import _allow, demo_weights_hash

    weights = demo_weights_hash()
    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp(prefix="bench_etva_", dir="/tmp"))
    _allow(str(tmp))  # only VLTOOLS_HOME is an allowed root by default
    t_start = time.time()
    videos = world_videos(args.videos, tmp)
    rows = []
    for vi, (path, facts) in enumerate(videos):
        frames, _, _ = sample_frames(path, get_settings(), n=args.frames)
        pngs = []
        for j, fr in enumerate(frames):
            p = tmp / f"{path.stem}_f{j}.png"
            fr.save(p)
            pngs.append(str(p))
        subsets = [s for r in range(len(KINDS) + 1) for s in itertools.combinations(KINDS, r)]
        for kinds in subsets:
            f = perturb(facts, kinds, rng)
            cap = caption(f)
            e = vltools.call("t2v.etva", {"video": str(path), "prompt": cap, "clip": args.model,
                                          "frames": args.frames})
            cs = vltools.call("clip.score", {"pairs": [{"image": p, "text": cap} for p in pngs], "clip": args.model})
            rows.append({"video": path.name, "perturbed": list(kinds), "true_facts": len(KINDS) - len(kinds),
                         "caption": cap, "etva": e.score, "etva_soft": e.soft_score,
                         "clipscore": float(np.mean(cs.cosines)),
                         "answers": {q.question: q.answer for q in e.questions}})
        print(f"[{vi + 1}/{len(videos)}] {time.time() - t_start:.0f}s", file=sys.stderr, flush=True)

    metrics = ("etva", "etva_soft", "clipscore")
    by_video: dict[str, dict[tuple, dict]] = {}
    for r in rows:
        by_video.setdefault(r["video"], {})[tuple(r["perturbed"])] = r
    pairwise = {m: {} for m in metrics}
    for m in metrics:
        for k in KINDS:
            wins = []
            for caps in by_video.values():
                a, b = caps[()][m], caps[(k,)][m]
                wins.append(1.0 if a > b else 0.5 if a == b else 0.0)
            pairwise[m][k] = round(float(np.mean(wins)), 4)
        pairwise[m]["mean"] = round(float(np.mean([pairwise[m][k] for k in KINDS])), 4)
    corr = {}
    for m in metrics:
        per_video = [spearman([r[m] for r in caps.values()], [r["true_facts"] for r in caps.values()])
                     for caps in by_video.values()]
        per_video = [c for c in per_video if c is not None]
        corr[m] = {
            "pooled": round(spearman([r[m] for r in rows], [r["true_facts"] for r in rows]) or 0.0, 4),
            "mean_per_video": round(float(np.mean(per_video)), 4) if per_video else None,
        }
    result = {
        "videos": len(videos), "captions_per_video": len(rows) // max(1, len(videos)), "frames": args.frames,
        "model": args.model, "demo_weights_sha256_16": weights, "pairwise_accuracy": pairwise,
        "spearman_vs_true_facts": corr,
        "wall_seconds": round(time.time() - t_start, 1), "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# ETVA vs CLIPScore on {len(videos)} world videos ({result['captions_per_video']} captions each, "
        f"{args.frames} frames, CLIP `{args.model}`)",
        "",
        "Pairwise accuracy (true caption scored above the caption with one wrong fact; ties = 1/2):",
        "",
        "| metric | " + " | ".join(KINDS) + " | mean |",
        "|---|" + "---|" * (len(KINDS) + 1),
    ]
    for m in metrics:
        cells = " | ".join(f"{pairwise[m][k]:.3f}" for k in KINDS)
        lines.append(f"| {m} | {cells} | {pairwise[m]['mean']:.3f} |")
    lines += ["", "Spearman correlation with the number of true facts (0-4):", "",
              "| metric | pooled | mean per video |", "|---|---|---|"]
    for m in metrics:
        mpv = corr[m]["mean_per_video"]
        lines.append(f"| {m} | {corr[m]['pooled']:.3f} | {'n/a' if mpv is None else f'{mpv:.3f}'} |")
    lines += ["", f"Wall time: {result['wall_seconds']} s; demo weights sha256[:16]: {weights}"]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
