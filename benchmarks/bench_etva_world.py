"""ETVA (`t2v.etva`, open vocabulary) vs CLIPScore on world v2 object videos, with five kinds of wrong prompt.

``python benchmarks/bench_etva_world.py [--split dev|test] [--videos N] [--frames F] [--previous DIR]``

Videos: `vltools.world.generate_object_video`, seeds after ``--seed-base`` (default by split: dev
29,960,000, test 29,980,000; the earlier 24-video runs used 29,950,000; never used in training), one
object of a **train** concept, two events: one ``move`` (left/right/up/down) and one ``change_tint``
(turns COLOUR), in either order. True prompt, from the labels: "a {concept} moves {dir}, then the
{concept} turns {colour}" (events in their true order). Wrong prompts, one fact changed each:
- object: another train concept (seeded choice) in place of the concept;
- attribute: another world colour in "turns {colour}";
- direction: the opposite direction;
- count: "two {plural} move {dir}, then the {plural} turn {colour}";
- order: the two events swapped ("... turns {colour}, then ... moves {dir}").
Each (video, prompt) is scored by `t2v.etva` (`demo` CLIP, F frames) and by CLIPScore (mean over
the same number of uniformly sampled frames of the cosine between frame and prompt, `clip.score`).
Pairwise accuracy: how often the true prompt scores strictly above the wrong one (ties count 1/2),
with a 95% Wilson interval over the videos (ties counted as half a success).
``--previous DIR``: also score every (video, prompt) with the code of another checkout (e.g. main
before a change: ``git -C REPO archive COMMIT | tar -x -C DIR``), in a subprocess on the same videos,
as the metric ``etva_previous`` beside ``etva`` in the same table.
Writes results/etva_world_v2{tag}.json / .md.
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
from _bench_stats import wilson  # benchmarks/ (the script's folder) is on sys.path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("ETVA_BENCH_CODE") or str(REPO))  # --previous: the other checkout's vltools
SEED_BASE = {"dev": 29_960_000, "test": 29_980_000}
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}
WHERE = {"left": "to the left", "right": "to the right", "up": "up", "down": "down"}
KINDS = ("object", "attribute", "direction", "count", "order")


def prompts(concept: str, other: str, plural: str, direction: str, colour: str, other_colour: str,
            move_first: bool) -> dict[str, str]:
    def make(name: str, d: str, c: str, first: bool, two: bool = False) -> str:
        subj = f"two {plural}" if two else f"a {name}"
        the = f"the {plural}" if two else f"the {name}"
        mv = f"{'move' if two else 'moves'} {WHERE[d]}"
        tn = f"{'turn' if two else 'turns'} {c}"
        return f"{subj} {mv}, then {the} {tn}" if first else f"{subj} {tn}, then {the} {mv}"

    return {"true": make(concept, direction, colour, move_first),
            "object": make(other, direction, colour, move_first),
            "attribute": make(concept, direction, other_colour, move_first),
            "direction": make(concept, OPPOSITE[direction], colour, move_first),
            "count": make(concept, direction, colour, move_first, two=True),
            "order": make(concept, direction, colour, not move_first)}


def _report(rows: list[dict], args, t0: float) -> None:
    """Write the JSON and the table for the videos done so far (called after every video)."""
    acc: dict[str, dict[str, float]] = {}
    counts: dict[str, dict[str, list[int]]] = {}
    metrics = [m for m in ("etva", "etva_soft", "etva_previous", "etva_previous_soft", "clipscore")
               if all(m in r for r in rows)]
    seeds = sorted({r["seed"] for r in rows})
    for metric in metrics:
        acc[metric], counts[metric] = {}, {}
        for kind in KINDS:
            wins = []
            for s in seeds:
                t = next(r for r in rows if r["seed"] == s and r["kind"] == "true")[metric]
                w = next(r for r in rows if r["seed"] == s and r["kind"] == kind)[metric]
                if t is None or w is None:  # no answerable question: ETVA cannot rank, a tie
                    wins.append(0.5)
                    continue
                wins.append(1.0 if t > w else 0.5 if t == w else 0.0)
            acc[metric][kind] = float(np.mean(wins))
            counts[metric][kind] = [wins.count(1.0), wins.count(0.5), wins.count(0.0)]
        acc[metric]["mean"] = float(np.mean([acc[metric][k] for k in KINDS]))
    true_scores = [r["etva"] for r in rows if r["kind"] == "true" and r["etva"] is not None]
    nulls = sum(r["etva"] is None for r in rows)
    n = len(seeds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"args": vars(args), "seconds": round(time.time() - t0, 1), "videos": n, "pairwise": acc,
              "wins_ties_losses": counts, "mean_true_etva": float(np.mean(true_scores)) if true_scores else None,
              "rows": rows}
    (out / f"etva_world_v2{args.tag}.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"pairwise accuracy (ties 1/2) [95% Wilson interval], {n} videos", "",
             "| metric | " + " | ".join(KINDS) + " | mean |", "|---" * (len(KINDS) + 2) + "|"]
    for metric, a in acc.items():
        cells = [f"{a[k]:.3f} [{wilson(a[k] * n, n)[0]:.2f}, {wilson(a[k] * n, n)[1]:.2f}]" for k in KINDS]
        lines.append(f"| {metric} | " + " | ".join(cells) + f" | {a['mean']:.3f} |")
    lines += ["", "strict wins / ties / losses of the true prompt:", "",
              "| metric | " + " | ".join(KINDS) + " |", "|---" * (len(KINDS) + 1) + "|"]
    for metric, c in counts.items():
        lines.append(f"| {metric} | " + " | ".join("/".join(map(str, c[k])) for k in KINDS) + " |")
    lines.append(f"\nvideos: {n}; mean ETVA score of the true prompts: "
                 f"{np.mean(true_scores) if true_scores else float('nan'):.3f}; prompts with score null "
                 f"(counted as ties): {nulls}")
    (out / f"etva_world_v2{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _score_jobs(jobs_file: str, out_file: str, frames: int) -> None:
    """Score (video, prompt) pairs with `t2v.etva` of whichever vltools is on sys.path (--previous)."""
    import vltools

    jobs = json.loads(Path(jobs_file).read_text())
    scores = []
    for video, prompt in jobs:
        e = vltools.call("t2v.etva", {"video": video, "prompt": prompt, "clip": "demo", "frames": frames})
        scores.append([e.score, e.soft_score, [(q.question, q.answer, q.score) for q in e.questions]])
    Path(out_file).write_text(json.dumps(scores))


def _previous(rows: list[dict], tmp: Path, args) -> None:
    """Add etva_previous / etva_previous_soft to every row, scored by the checkout in args.previous."""
    import subprocess

    jobs = tmp / "jobs.json"
    jobs.write_text(json.dumps([[r["video"], r["prompt"]] for r in rows]))
    env = {**os.environ, "ETVA_BENCH_CODE": str(Path(args.previous).resolve()),
           "PYTHONPATH": str(Path(args.previous).resolve())}
    subprocess.run([sys.executable, __file__, "--score-jobs", str(jobs), "--score-out", str(tmp / "prev.json"),
                    "--frames", str(args.frames)], env=env, check=True)
    for r, (score, soft, answers) in zip(rows, json.loads((tmp / "prev.json").read_text()), strict=True):
        r.update(etva_previous=score, etva_previous_soft=soft, answers_previous=answers)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=12)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--split", choices=("dev", "test"), default="test", help="seed range (dev for choices)")
    ap.add_argument("--seed-base", type=int, default=None, help="first seed (default: the split's)")
    ap.add_argument("--tag", default="", help="suffix of the result files")
    ap.add_argument("--previous", default=None, help="checkout of earlier code to score beside this one")
    ap.add_argument("--score-jobs", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--score-out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.score_jobs:
        _score_jobs(args.score_jobs, args.score_out, args.frames)
        return 0
    if args.seed_base is None:
        args.seed_base = SEED_BASE[args.split]
    tmp = Path(tempfile.mkdtemp(prefix="etva_world_"))
    os.environ["VLTOOLS_ALLOWED_ROOTS"] = json.dumps([str(tmp)])
    import vltools
    from vltools.world import concepts, generate_object_video, vocab, write_video
    from vltools.world.objects import plural_of

    train = [c["name"] for c in concepts() if c["split"] == "train"]
    rng = np.random.default_rng(0)
    rows = []
    t0 = time.time()
    seed = args.seed_base
    while len({r["seed"] for r in rows}) < args.videos and seed < args.seed_base + 2000:
        seed += 1
        v = generate_object_video(seed, n_objects=1, n_events=2, event_types=("move", "change_tint"))
        kinds = [e["type"] for e in v.events]
        if sorted(kinds) != ["change_tint", "move"] or v.events[[*kinds].index("move")].get("direction") not in WHERE:
            continue
        mv = v.events[kinds.index("move")]
        tint = v.events[kinds.index("change_tint")]["to"]
        concept = v.labels["objects"][0]["concept"]
        other = train[int(rng.integers(len(train)))]
        while other == concept:
            other = train[int(rng.integers(len(train)))]
        others = [c for c in vocab.COLOUR_NAMES if c != tint]
        ps = prompts(concept, other, plural_of(concept), mv["direction"], tint,
                     others[int(rng.integers(len(others)))], kinds[0] == "move")
        path = write_video(v.frames, tmp / f"v{seed}.mp4", fps=v.fps)
        n = len(v.frames)
        idx = np.linspace(0, n - 1, args.frames).round().astype(int)
        pngs = []
        for j in idx:
            p = tmp / f"v{seed}_{j}.png"
            from PIL import Image

            Image.fromarray(v.frames[j]).save(p)
            pngs.append(str(p))
        for kind, text in ps.items():
            e = vltools.call("t2v.etva", {"video": str(path), "prompt": text, "clip": "demo", "frames": args.frames})
            cs = vltools.call("clip.score", {"pairs": [{"image": p, "text": text} for p in pngs], "clip": "demo"})
            clipscore = float(np.mean(cs.cosines))
            rows.append({"seed": seed, "video": str(path), "kind": kind, "prompt": text, "etva": e.score,
                         "etva_soft": e.soft_score,
                         "clipscore": clipscore, "answers": [(q.question, q.answer, q.score) for q in e.questions]})
        print(f"video {len({r['seed'] for r in rows})}: {time.time() - t0:.0f} s", file=sys.stderr)
        _report(rows, args, t0)
    if args.previous:
        _previous(rows, tmp, args)
    _report(rows, args, t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
