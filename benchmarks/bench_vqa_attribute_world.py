"""'Is the {concept} {colour}?' on world v2 scenes, with and without the copular re-read of the language layer.

``python benchmarks/bench_vqa_attribute_world.py [--scenes N] [--tag SUFFIX]``

One-object scenes of train concepts (seeds 34,000,000 + k, used by nothing else), each object tinted
with a seeded colour of the world's tints; two questions per scene through `vqa.zero_shot` (`demo`):
the true tint ("yes") and another seeded tint ("no"). Each question is answered twice in the same run:
with the language layer as it is and with `_vl_language._copula_reread` switched off (the parse before
that rule: 'Is the dog brown?' read as the noun phrase 'the dog brown'); a question the tool refuses
(a misparse read as an event on a still image) counts as wrong. Nothing is tuned here.
Writes results/vqa_attribute_world{tag}.json / .md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from _bench_stats import wilson  # benchmarks/ (the script's folder) is on sys.path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SEED_BASE = 34_000_000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=60)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    import numpy as np

    import vltools
    from vltools.core.errors import ToolError
    from vltools.tools import _vl_language as lang
    from vltools.world import generate_object_scene
    from vltools.world.objects import TINTS

    reread = lang._copula_reread
    tints = list(TINTS)
    rows, t0 = [], time.time()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["VLTOOLS_ALLOWED_ROOTS"] = json.dumps([tmp])
        for k in range(args.scenes):
            seed = SEED_BASE + k
            rng = np.random.default_rng(seed)
            true, other = (tints[int(i)] for i in rng.choice(len(tints), 2, replace=False))
            sc = generate_object_scene(seed, n_objects=1, split="train", tint=true)
            concept = sc.labels["objects"][0]["concept"]
            path = Path(tmp) / f"s{seed}.png"
            sc.image.save(path)
            for colour, gold in ((true, "yes"), (other, "no")):
                q = f"Is the {concept} {colour}?"
                row = {"seed": seed, "concept": concept, "question": q, "gold": gold}
                for name, fn in (("reread", reread), ("no_reread", lambda doc: None)):
                    lang._copula_reread = fn
                    try:
                        parsed = lang.parse_question(q)
                        answer, error = vltools.call("vqa.zero_shot", {"image": str(path), "question": q,
                                                                       "clip": "demo"}).answer, None
                    except ToolError as err:  # a misparse the tool refuses (e.g. read as an event): wrong
                        answer, error = None, str(err)
                    finally:
                        lang._copula_reread = reread
                    row[name] = {"answer": answer, "subtype": parsed.subtype, "correct": answer == gold, "error": error}
                rows.append(row)
            print(f"{k + 1}/{args.scenes} scenes", file=sys.stderr)
    summary = {}
    for name in ("reread", "no_reread"):
        for gold in ("yes", "no", "all"):
            sel = [r for r in rows if gold == "all" or r["gold"] == gold]
            k = sum(r[name]["correct"] for r in sel)
            summary[f"{name}_{gold}"] = {"n": len(sel), "accuracy": round(k / max(1, len(sel)), 3),
                                         "wilson": tuple(round(x, 3) for x in wilson(k, len(sel)))}
        summary[f"{name}_parsed_attribute"] = sum(r[name]["subtype"] == "attribute" for r in rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"vqa_attribute_world{args.tag}.json").write_text(json.dumps(
        {"summary": summary, "rows": rows, "seconds": round(time.time() - t0, 1)}, indent=1))
    lines = [f"'Is the {{concept}} {{colour}}?' on {args.scenes} tinted one-object train-concept scenes "
             f"(seeds {SEED_BASE}+), `demo` CLIP", "",
             "| language layer | parsed as attribute | true colour ('yes') | other colour ('no') | all |",
             "|---|---|---|---|---|"]
    for name, label in (("reread", "with the copular re-read"), ("no_reread", "without it (previous parse)")):
        cells = [f"{summary[f'{name}_{g}']['accuracy']:.3f} {summary[f'{name}_{g}']['wilson']}"
                 for g in ("yes", "no", "all")]
        lines.append(f"| {label} | {summary[f'{name}_parsed_attribute']}/{len(rows)} | " + " | ".join(cells) + " |")
    (out / f"vqa_attribute_world{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
