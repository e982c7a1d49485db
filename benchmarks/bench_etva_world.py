"""ETVA (`t2v.etva`, open vocabulary) vs CLIPScore on world v2 object videos, with five kinds of wrong prompt.

``python benchmarks/bench_etva_world.py [--videos N] [--frames F]``

Videos: `vltools.world.generate_object_video`, seeds 29,950,000 + k (never used in training), one
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
Pairwise accuracy: how often the true prompt scores strictly above the wrong one (ties count 1/2).
Writes results/etva_world_v2.json / .md.
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SEED_BASE = 29_950_000
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
    for metric in ("etva", "etva_soft", "clipscore"):
        acc[metric] = {}
        for kind in KINDS:
            wins = []
            for s in sorted({r["seed"] for r in rows}):
                t = next(r for r in rows if r["seed"] == s and r["kind"] == "true")[metric]
                w = next(r for r in rows if r["seed"] == s and r["kind"] == kind)[metric]
                if t is None or w is None:  # no answerable question: ETVA cannot rank, a tie
                    wins.append(0.5)
                    continue
                wins.append(1.0 if t > w else 0.5 if t == w else 0.0)
            acc[metric][kind] = float(np.mean(wins))
        acc[metric]["mean"] = float(np.mean([acc[metric][k] for k in KINDS]))
    true_scores = [r["etva"] for r in rows if r["kind"] == "true" and r["etva"] is not None]
    nulls = sum(r["etva"] is None for r in rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"args": vars(args), "seconds": round(time.time() - t0, 1), "pairwise": acc,
              "mean_true_etva": float(np.mean(true_scores)), "rows": rows}
    (out / f"etva_world_v2{args.tag}.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["| metric | " + " | ".join(KINDS) + " | mean |", "|---" * (len(KINDS) + 2) + "|"]
    for metric, a in acc.items():
        lines.append(f"| {metric} | " + " | ".join(f"{a[k]:.3f}" for k in KINDS) + f" | {a['mean']:.3f} |")
    lines.append(f"\nvideos: {len({r['seed'] for r in rows})}; mean ETVA score of the true prompts: "
                 f"{np.mean(true_scores):.3f}; prompts with score null (counted as ties): {nulls}")
    (out / f"etva_world_v2{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=12)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--seed-base", type=int, default=SEED_BASE, help="first seed (dev: another range)")
    ap.add_argument("--tag", default="", help="suffix of the result files")
    args = ap.parse_args(argv)
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
            rows.append({"seed": seed, "kind": kind, "prompt": text, "etva": e.score, "etva_soft": e.soft_score,
                         "clipscore": clipscore, "answers": [(q.question, q.answer, q.score) for q in e.questions]})
        print(f"video {len({r['seed'] for r in rows})}: {time.time() - t0:.0f} s", file=sys.stderr)
        _report(rows, args, t0)
    _report(rows, args, t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
