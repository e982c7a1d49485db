"""'Is there a X?' with `vqa.zero_shot` on world v2 scenes: train vs held-out concepts, new vs earlier test.

``python benchmarks/bench_vqa_presence.py --split dev|test [--scenes N] [--resummarise]``

Scenes: `vltools.world.generate_object_scene` with 1-3 distinct concepts (``1 + k % 3``), none ever in a
training image (the demo CLIP trained on seeds 20,000,000+). Train-concept scenes draw from the 598 train
concepts; held-out-concept scenes from one half of the 109 held-out concepts (`heldout_halves` of
`scripts/tune_heldout_transfer.py`): the DEV half for ``--split dev`` (seeds 33,000,000 + k and 33,100,000 + k),
the TEST half for ``--split test`` (33,500,000 + k and 33,600,000 + k), so nothing chosen on dev saw a TEST
concept or scene. Questions per scene, in the world's own phrasing (`exists_question`), each sent through the
registry with no candidates:

- present: every concept in the scene (answer yes);
- absent: a concept of the same pool (split/half) that is neither present nor related to one (answer no);
- similar: an absent concept of the same subcategory as a present one (answer no; the harder negative);
- cross: a concept of the *other* kind (a held-out one on a train scene, a train one on a held-out scene;
  answer no): whether the unseen-noun test says yes to anything.

Each question is answered twice in the same run: ``unseen_presence: "calibrated"`` (new default) and
``"ratio"`` (the earlier test). Reported: accuracy per kind with Wilson 95% intervals, balanced accuracy
(present vs absent) with a normal-approximation interval, and the held-out balanced-accuracy difference
between the two methods on the same questions with a bootstrap interval over scenes.
Writes results/vqa_presence_{split}.json / .md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _bench_stats import wilson  # benchmarks/ (the script's folder) is on sys.path

REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "scripts"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

BASES = {"dev": 33_000_000, "test": 33_500_000}
HELD_OFFSET = 100_000
KINDS = ("present", "absent", "similar", "cross")
METHODS = ("calibrated", "ratio")


def scenes(split: str, n: int):
    """Yield (concepts, seed, scene, questions) for k < n, train and held-out interleaved; questions are
    (kind, concept, truth)."""
    from tune_heldout_transfer import heldout_halves

    from vltools.world import generate_object_scene
    from vltools.world.concept_table import concepts

    table = {c["name"]: c for c in concepts()}
    dev_h, test_h = heldout_halves()
    half = dev_h if split == "dev" else test_h
    train = [c["name"] for c in concepts("train")]
    base = BASES[split]
    rng = np.random.default_rng(base)
    for k in range(n):
        for cs in ("train", "heldout"):
            seed = base + k + (0 if cs == "train" else HELD_OFFSET)
            pool = train if cs == "train" else half
            names = [str(x) for x in rng.choice(pool, 1 + k % 3, replace=False)]
            sc = generate_object_scene(seed, concept_names=names)
            related = set().union(*[set(table[x]["related"]) for x in names])
            absent = next(str(x) for x in rng.permutation(pool) if x not in names and x not in related)
            subs = {table[x]["subcategory"] for x in names}
            sim = [x for x in pool if table[x]["subcategory"] in subs and x not in names and x not in related]
            similar = str(rng.choice(sim)) if sim else None
            other = half if cs == "train" else train
            cross = str(rng.choice([x for x in other if x not in related]))
            qs = [("present", x, "yes") for x in names] + [("absent", absent, "no"), ("cross", cross, "no")]
            if similar:
                qs.append(("similar", similar, "no"))
            yield cs, seed, sc, qs


def summarise(rows: list[dict]) -> dict:
    out: dict = {"paired_heldout": paired_difference(rows)}
    for cs in ("train", "heldout"):
        out[cs] = {}
        for m in METHODS:
            e: dict = {}
            for kind in KINDS:
                v = [r[m] == r["truth"] for r in rows if r["concepts"] == cs and r["kind"] == kind]
                if v:
                    e[kind] = {"n": len(v), "accuracy": sum(v) / len(v), "ci95": wilson(sum(v), len(v))}
            if "present" in e and "absent" in e:
                a, b = e["present"], e["absent"]
                ba = (a["accuracy"] + b["accuracy"]) / 2
                se = 0.5 * math.sqrt(a["accuracy"] * (1 - a["accuracy"]) / a["n"]
                                     + b["accuracy"] * (1 - b["accuracy"]) / b["n"])
                e["balanced"] = {"accuracy": ba, "ci95": (ba - 1.96 * se, ba + 1.96 * se)}
            out[cs][m] = e
    return out


def paired_difference(rows: list[dict], concepts: str = "heldout", draws: int = 2000) -> dict:
    """Balanced accuracy (present, absent) of calibrated minus ratio on the same questions, with a 95% bootstrap
    interval over scenes (seed 0)."""
    rows = [r for r in rows if r["concepts"] == concepts]
    seeds = sorted({r["seed"] for r in rows})
    by = {s: [r for r in rows if r["seed"] == s] for s in seeds}

    def ba(rs: list[dict], m: str) -> float:
        p = [r[m] == "yes" for r in rs if r["kind"] == "present"]
        a = [r[m] == "no" for r in rs if r["kind"] == "absent"]
        return (float(np.mean(p)) + float(np.mean(a))) / 2

    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(draws):
        rs = [r for i in rng.choice(len(seeds), len(seeds)) for r in by[seeds[i]]]
        diffs.append(ba(rs, "calibrated") - ba(rs, "ratio"))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {"difference": ba(rows, "calibrated") - ba(rows, "ratio"), "ci95": (float(lo), float(hi)),
            "scenes": len(seeds)}


def table(summary: dict) -> str:
    def cell(e: dict | None) -> str:
        if not e:
            return "-"
        lo, hi = e["ci95"]
        n = f", n={e['n']}" if "n" in e else ""
        return f"{e['accuracy']:.3f} [{lo:.2f}-{hi:.2f}{n}]"

    lines = ["| concepts | question | calibrated (new default) | ratio (earlier test) |", "|---|---|---|---|"]
    for cs in ("train", "heldout"):
        for kind in (*KINDS, "balanced"):
            row = [cell(summary[cs][m].get(kind)) for m in METHODS]
            label = "balanced (present, absent)" if kind == "balanced" else kind
            lines.append(f"| {cs} | {label} | {row[0]} | {row[1]} |")
    d = summary.get("paired_heldout")
    if d:
        lines.append(f"\nheld-out balanced accuracy, calibrated - ratio on the same questions: {d['difference']:+.3f} "
                     f"[{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] (bootstrap over {d['scenes']} scenes)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", choices=("dev", "test"), default="dev")
    ap.add_argument("--scenes", type=int, default=150, help="scenes per concept kind")
    ap.add_argument("--clip", default="demo")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--resummarise", action="store_true",
                    help="only recompute the summary and table from the split's existing json rows")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.resummarise:
        res = json.loads((out / f"vqa_presence_{args.split}.json").read_text())
        res["summary"] = summarise(res["rows"])
        (out / f"vqa_presence_{args.split}.json").write_text(json.dumps(res, separators=(",", ":")) + "\n")
        (out / f"vqa_presence_{args.split}.md").write_text(table(res["summary"]) + f"\n\nseconds: {res['seconds']}\n")
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="vqa_presence_"))
    os.environ["VLTOOLS_ALLOWED_ROOTS"] = json.dumps([str(tmp)])
    import vltools

    t0 = time.time()
    rows: list[dict] = []
    for i, (cs, seed, sc, qs) in enumerate(scenes(args.split, args.scenes)):
        from vltools.world.objects import exists_question

        path = tmp / f"{seed}.png"
        sc.image.save(path)
        for kind, concept, truth in qs:
            q = exists_question(concept)
            row = {"seed": seed, "concepts": cs, "kind": kind, "concept": concept, "question": q, "truth": truth,
                   "objects": [o["concept"] for o in sc.labels["objects"]]}
            for m in METHODS:
                out = vltools.call("vqa.zero_shot", {"image": str(path), "question": q, "clip": args.clip,
                                                     "unseen_presence": m})
                row[m] = out.answer.lower()
            rows.append(row)
        path.unlink()
        if i % 40 == 39:
            print(f"{(i + 1) // 2} scenes per kind, {len(rows)} questions, {time.time() - t0:.0f} s", file=sys.stderr)
    summary = summarise(rows)
    out.mkdir(parents=True, exist_ok=True)
    res = {"args": vars(args), "seconds": round(time.time() - t0, 1), "summary": summary, "rows": rows}
    (out / f"vqa_presence_{args.split}.json").write_text(json.dumps(res, separators=(",", ":")) + "\n")
    md = table(summary) + f"\n\nseconds: {res['seconds']}\n"
    (out / f"vqa_presence_{args.split}.md").write_text(md)
    print(md, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
