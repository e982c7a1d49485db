"""Video II benchmarks on held-out world videos (objects theme), each against its baseline in one run.

    nice -n 19 python benchmarks/bench_video.py ground   [--videos 150]
    nice -n 19 python benchmarks/bench_video.py search   [--videos 120]
    nice -n 19 python benchmarks/bench_video.py classify [--videos 100]

- ground: `video.ground` R1@IoU0.5/0.7 and mAP@[0.5:0.95] of the trained head vs the training-free
  similarity baseline, on test seeds (train concepts) and on held-out concepts; queries = event captions.
- search: `video.search` recall@1/5, ms/query, features/video and frames encoded per query of every
  mode vs mean pooling, on one collection indexed once (queries = clip captions).
- classify: `video.classify` accuracy (single-object clips, label = the object) with mean and max
  pooling vs the middle frame alone.

Writes benchmarks/results/video_<part>.json and .md. Seeds: scripts/_video_world.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "scripts"))

from _video_world import GROUND_TEST, world_queries  # noqa: E402

THRESHOLDS = [round(0.5 + 0.05 * i, 2) for i in range(10)]


def _write(name: str, result: dict, md: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
    (RESULTS / f"{name}.md").write_text(md)
    print(md)


def _allow(folder: Path) -> None:
    from vltools.core.settings import reset_settings

    extra = json.loads(os.environ.get("VLTOOLS_EXTRA_ROOTS") or "[]")
    os.environ["VLTOOLS_EXTRA_ROOTS"] = json.dumps([*extra, str(folder)])
    reset_settings()


# -- grounding -----------------------------------------------------------------------------------
def ground_metrics(items: list[dict], method: str) -> dict:
    from vltools.tools.video.ground import ground_features, iou

    r5 = r7 = n = 0
    ap = []
    for it in items:
        for e in it["events"]:
            moments, _ = ground_features(it["ff"], e["q"], method, 10)
            gt = (e["start"], e["end"])
            ious = [iou((m[0], m[1]), gt) for m in moments]
            r5 += bool(ious) and ious[0] >= 0.5
            r7 += bool(ious) and ious[0] >= 0.7
            per_thr = []
            for thr in THRESHOLDS:  # one ground-truth moment: AP = 1 / rank of the first hit
                first = next((i for i, x in enumerate(ious) if x >= thr), None)
                per_thr.append(0.0 if first is None else 1.0 / (first + 1))
            ap.append(float(np.mean(per_thr)))
            n += 1
    return {"queries": n, "R1@0.5": round(r5 / n, 4), "R1@0.7": round(r7 / n, 4), "mAP": round(float(np.mean(ap)), 4)}


def bench_ground(args) -> None:
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        test = world_queries(GROUND_TEST, args.videos, Path(tmp) / "test", args.clip)
        held = world_queries(GROUND_TEST + 50_000, args.videos // 2, Path(tmp) / "held", args.clip, split="heldout")
    rows = {}
    for name, items in (("test (train concepts)", test), ("held-out concepts", held)):
        rows[name] = {m: ground_metrics(items, m) for m in ("head", "similarity")}
    result = {"clip": args.clip, "videos": {"test": len(test), "heldout": len(held)}, "fps": 4.0,
              "seeds": {"test": GROUND_TEST, "heldout": GROUND_TEST + 50_000}, "results": rows,
              "wall_s": round(time.time() - t0, 1)}
    md = ["| split | method | queries | R1@0.5 | R1@0.7 | mAP@[.5:.95] |", "|---|---|---|---|---|---|"]
    for split, by in rows.items():
        for m, r in by.items():
            label = "trained head" if m == "head" else "similarity baseline (training-free)"
            md.append(f"| {split} | {label} | {r['queries']} | {r['R1@0.5']:.3f} | {r['R1@0.7']:.3f} "
                      f"| {r['mAP']:.3f} |")
    _write("video_ground", result, "\n".join(md) + "\n")


# -- search modes --------------------------------------------------------------------------------
def bench_search(args) -> None:
    import vltools
    from vltools.world import generate_object_video, write_video

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "gallery"
        folder.mkdir()
        _allow(Path(tmp))
        os.environ["VLTOOLS_HOME"] = str(Path(tmp) / "home")
        from vltools.core.settings import reset_settings

        reset_settings()
        queries = []
        for k in range(args.videos):
            v = generate_object_video(GROUND_TEST + 100_000 + k)
            p = write_video(v.frames, folder / f"v{k:04d}.mp4", v.fps)
            queries.append((str(p), v.caption))
        t = time.time()
        vltools.call("video.index", {"collection": "bench", "paths": [str(folder)], "create": True,
                                     "clip": args.clip, "frames": 8})
        index_s = time.time() - t
        rows = {}
        for mode in ("mean", "tempme", "ucofia", "glscl", "prompt_switch"):
            ranks, ms, per_video, encodes = [], [], [], []
            for path, q in queries:
                t = time.perf_counter()
                out = vltools.call("video.search", {"collection": "bench", "query": q, "k": 5, "mode": mode,
                                                    "pool": args.pool})
                ms.append((time.perf_counter() - t) * 1000)
                got = [h.path for h in out.hits]
                ranks.append(got.index(path) + 1 if path in got else 99)
                per_video.append(out.cost.features_per_video)
                encodes.append(out.cost.video_encodes)
            rows[mode] = {"R@1": round(float(np.mean([r <= 1 for r in ranks])), 4),
                          "R@5": round(float(np.mean([r <= 5 for r in ranks])), 4),
                          "ms_per_query": round(float(np.median(ms)), 1),
                          "features_per_video": round(float(np.mean(per_video)), 2),
                          "frames_encoded_per_query": round(float(np.mean(encodes)), 1)}
            print(mode, rows[mode], file=sys.stderr)
    result = {"clip": args.clip, "videos": args.videos, "frames_indexed": 8, "pool": args.pool,
              "index_s": round(index_s, 1), "results": rows}
    md = [f"Gallery: {args.videos} world videos (8 frames each, indexed once in {index_s:.0f} s); query = each clip's "
          f"caption; non-mean modes rescore the mean-pooled top {args.pool}.", "",
          "| mode | R@1 | R@5 | ms/query (median) | features/video | frames encoded per query |",
          "|---|---|---|---|---|---|"]
    for mode, r in rows.items():
        md.append(f"| {mode} | {r['R@1']:.3f} | {r['R@5']:.3f} | {r['ms_per_query']:.0f} "
                  f"| {r['features_per_video']:.2f} | {r['frames_encoded_per_query']:.0f} |")
    _write("video_search", result, "\n".join(md) + "\n")


# -- classification ------------------------------------------------------------------------------
def bench_classify(args) -> None:
    import vltools
    from vltools.world import generate_object_video, write_video

    with tempfile.TemporaryDirectory() as tmp:
        _allow(Path(tmp))
        items = []
        for k in range(args.videos):
            v = generate_object_video(GROUND_TEST + 200_000 + k, n_objects=1, n_events=2,
                                      event_types=("move", "change_tint"))
            p = write_video(v.frames, Path(tmp) / f"c{k:04d}.mp4", v.fps)
            items.append((str(p), v.labels["objects"][0]["concept"]))
        labels = sorted({c for _, c in items})
        rows = {}
        for name, extra in (("mean pooling (8 frames)", {"frames": 8, "pooling": "mean"}),
                            ("max pooling (8 frames)", {"frames": 8, "pooling": "max"}),
                            ("middle frame only", {"frames": 1, "pooling": "mean"})):
            out = vltools.call("video.classify", {"videos": [p for p, _ in items], "labels": labels,
                                                  "clip": args.clip, **extra})
            acc = float(np.mean([r.label == c for r, (_, c) in zip(out.results, items, strict=True)]))
            rows[name] = round(acc, 4)
    result = {"clip": args.clip, "videos": args.videos, "labels": len(labels), "accuracy": rows}
    md = [f"{args.videos} single-object world clips, {len(labels)} candidate labels (the clips' objects).", "",
          "| variant | accuracy |", "|---|---|"] + [f"| {k} | {v:.3f} |" for k, v in rows.items()]
    _write("video_classify", result, "\n".join(md) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=["ground", "search", "classify"])
    ap.add_argument("--videos", type=int, default=0)
    ap.add_argument("--clip", default="demo")
    ap.add_argument("--pool", type=int, default=20)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    args.videos = args.videos or {"ground": 150, "search": 120, "classify": 100}[args.part]
    {"ground": bench_ground, "search": bench_search, "classify": bench_classify}[args.part](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
