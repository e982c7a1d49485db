"""Object-proposal counts (`vltools.tools._objects`) on the DEV scenes of `bench_vqa_world.py`, by variant.

``python benchmarks/bench_objects_dev.py [--scenes 40]``

Scenes k < N (seeds 29,600,000 + k, train concepts, and + 500,000 held-out concepts; 1 + k % 3 objects):
the dev split of `bench_vqa_world.py`, never its test split. For each variant, the share of scenes
where the number of proposals equals the number of objects, and the under/over counts. No model.
Writes results/objects_dev{tag}.json / .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SEED_BASE = 29_600_000
VARIANTS = {"link 0 (no linking)": {"link": 0}, "link 1 px": {"link": 1}, "link 2 px": {"link": 2}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=40)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    from vltools.tools import _objects
    from vltools.world import generate_object_scene

    t0 = time.time()
    scenes = []
    for k in range(args.scenes):
        for split in ("train", "heldout"):
            sc = generate_object_scene(SEED_BASE + k + (0 if split == "train" else 500_000), n_objects=1 + k % 3,
                                       split=split)
            scenes.append((sc.image, len(sc.labels["objects"])))
    result: dict[str, dict] = {}
    for name, kw in VARIANTS.items():
        r = {"ok": 0, "under": 0, "over": 0, "by_count": {}}
        for image, n in scenes:
            k = len(_objects.object_regions(image, **kw))
            r["ok" if k == n else "under" if k < n else "over"] += 1
            b = r["by_count"].setdefault(str(n), [0, 0])
            b[0] += k == n
            b[1] += 1
        r["accuracy"] = r["ok"] / len(scenes)
        result[name] = r
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"objects_dev{args.tag}.json").write_text(json.dumps(
        {"scenes": len(scenes), "seconds": round(time.time() - t0, 1), "variants": result}, indent=1) + "\n")
    lines = ["| variant | count right | under | over | 1 object | 2 objects | 3 objects |",
             "|---|---|---|---|---|---|---|"]
    for name, r in result.items():
        bc = [f"{r['by_count'][c][0]}/{r['by_count'][c][1]}" for c in sorted(r["by_count"])]
        lines.append(f"| {name} | {r['accuracy']:.4f} | {r['under']} | {r['over']} | " + " | ".join(bc) + " |")
    (out / f"objects_dev{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
