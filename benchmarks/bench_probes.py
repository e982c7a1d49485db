"""The `probe.*` reports and `image.set_difference` on the demo CLIP, world sources, through the registry.

Runs each probe with its world defaults (seed 0; seeds of its own, disjoint from the demo CLIP's
training seeds) and VisDiff on two sets with a planted difference (set A = an object + a top hat,
set B = the same object + another one, 20 pairs, a vocabulary of 60 train concepts + "top hat").
Nothing is tuned: every figure is one run of the tools as a user would call them.

    nice -n 19 .venv/bin/python benchmarks/bench_probes.py [--clip demo]

Writes benchmarks/results/bench_probes.json and .md (and the probes' own reports under
benchmarks/results/probes/).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default="demo")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from vltools.core.context import Context
    from vltools.core.registry import get_registry
    from vltools.core.settings import Settings
    from vltools.world import generate_object_scene
    from vltools.world.concept_table import concept_names

    reports = RESULTS / "probes"
    reports.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench_probes_"))
    settings = Settings(allowed_roots=[ROOT, tmp], home=tmp / "home", device="cpu")
    reg = get_registry()
    out: dict[str, dict] = {}
    for name in ("probe.robustness", "probe.spurious_background", "probe.concept_association", "probe.fine_grained"):
        t = time.time()
        res = reg.call(name, {"clip": args.clip, "report_dir": str(reports)}, ctx=Context(settings=settings))
        out[name] = {**res.model_dump(exclude={"report_path", "figure_path"}), "seconds": round(time.time() - t, 1)}
        sys.stderr.write(f"{name} done\n")
    rng = np.random.default_rng(0)
    names = [n for n in concept_names("train") if "hat" not in n and "cap" not in n]
    a, b = [], []
    for i in range(20):
        x, y = (names[int(j)] for j in rng.choice(len(names), 2, replace=False))
        pa, pb = tmp / f"a{i}.png", tmp / f"b{i}.png"
        generate_object_scene(8_160_000 + i, concept_names=[x, "top hat"], image_size=112).image.save(pa)
        generate_object_scene(8_160_000 + i, concept_names=[x, y], image_size=112).image.save(pb)
        a.append(str(pa))
        b.append(str(pb))
    vocab = [str(v) for v in rng.choice(names, 60, replace=False)] + ["top hat"]
    t = time.time()
    sd = reg.call("image.set_difference", {"set_a": a, "set_b": b, "vocabulary": vocab, "clip": args.clip},
                  ctx=Context(settings=settings)).model_dump()
    rank_of_hat = next((i + 1 for i, d in enumerate(sd["differences"]) if d["description"] == "top hat"), None)
    out["image.set_difference"] = {**sd, "planted": "top hat", "planted_rank": rank_of_hat,
                                   "seconds": round(time.time() - t, 1)}
    (RESULTS / "bench_probes.json").write_text(json.dumps({"clip": args.clip, "results": out}, indent=2))
    r, s, c, f = (out[k] for k in ("probe.robustness", "probe.spurious_background", "probe.concept_association",
                                   "probe.fine_grained"))
    worst = sorted(r["conditions"], key=lambda x: x["accuracy"])[:3]
    groups = {g["name"]: g for g in s["groups"]}
    figs = {x["setting"]: x for x in c["figures"]}
    lines = [
        f"# Probes on `{args.clip}` (world sources, defaults)", "",
        f"- robustness (P29): clean accuracy {r['clean']['accuracy']:.3f} (ECE {r['clean']['ece']:.3f}); worst: "
        + "; ".join(f"{w['shift']}@{w['level']} {w['accuracy']:.3f} (ECE {w['ece']:.3f})" for w in worst),
        f"- spurious background (P49): common {groups['common']['accuracy']:.3f}, counter "
        f"{groups['counter']['accuracy']:.3f}, neutral {groups['neutral']['accuracy']:.3f}; drop {s['drop']:+.3f}",
        f"- concept association (P53): tinted accuracy {figs['tinted']['accuracy']:.3f}, pull ratio "
        f"{c['pull_ratio']:.2f}; pair pull {figs['pair']['pull']:.3f} vs alone {figs['alone']['pull']:.3f} "
        f"(association pull {c['association_pull']:+.3f})",
        "- fine grained (P25, MMVP-VLM pair accuracy, chance 0.25): "
        + ", ".join(f"{x['factor']} {x['pair_accuracy']:.2f} (cos {x['image_cosine']:.2f})" for x in f["factors"]),
        f"- set difference (P32): planted 'top hat' ranked {rank_of_hat} of {len(sd['differences'])}; top 3: "
        + ", ".join(f"{d['description']} ({d['auroc']:.2f})" for d in sd["differences"][:3]),
    ]
    (RESULTS / "bench_probes.md").write_text("\n".join(lines) + "\n")
    sys.stderr.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
