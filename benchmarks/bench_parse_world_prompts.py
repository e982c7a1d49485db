"""How often the language layer's scene graph of an ETVA-style prompt is right, over every world v2 concept.

``python benchmarks/bench_parse_world_prompts.py [--tag SUFFIX]``

No model, no images: only the spaCy parse (`vltools.tools._vl_language.scene_graph`). For each of the
world's concepts (train and held-out), the prompt forms of `bench_etva_world.py`: "a {concept} moves
{dir}, then the {concept} turns {colour}" and the events swapped, in the singular (the true prompt's
form) and with "two {plural}" (the count perturbation's form); direction and colour cycle with the
concept's index. A prompt is counted wrong for each of: no move event with the right direction, no
turn event with the right colour, not exactly one entity. Writes results/parse_world_prompts{tag}.json / .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
WHERE = {"left": "to the left", "right": "to the right", "up": "up", "down": "down"}
COLOURS = ["red", "blue", "green", "yellow"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    from vltools.tools._vl_language import scene_graph
    from vltools.world import concepts
    from vltools.world.objects import plural_of

    t0 = time.time()
    names = [c["name"] for c in concepts()]
    counts: dict[str, dict[str, int]] = {}
    examples: dict[str, dict[str, list[str]]] = {}
    for form in ("singular", "plural"):
        c = counts.setdefault(form, {"prompts": 0, "no_move": 0, "no_turn": 0, "not_one_entity": 0})
        ex = examples.setdefault(form, {"no_move": [], "no_turn": [], "not_one_entity": []})
        for i, name in enumerate(names):
            d, col = list(WHERE)[i % 4], COLOURS[i % 4]
            two = form == "plural"
            subj, the = (f"two {plural_of(name)}", f"the {plural_of(name)}") if two else (f"a {name}", f"the {name}")
            mv, tn = f"{'move' if two else 'moves'} {WHERE[d]}", f"{'turn' if two else 'turns'} {col}"
            for p in (f"{subj} {mv}, then {the} {tn}", f"{subj} {tn}, then {the} {mv}"):
                g = scene_graph(p)
                c["prompts"] += 1
                bad = {"no_move": not any(e["type"] == "move" and e["direction"] == d for e in g["events"]),
                       "no_turn": not any(e["type"] == "turn" and e["value"] == col for e in g["events"]),
                       "not_one_entity": len(g["entities"]) != 1}
                for k, v in bad.items():
                    if v:
                        c[k] += 1
                        if len(ex[k]) < 5:
                            ex[k].append(p)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"concepts": len(names), "seconds": round(time.time() - t0, 1), "counts": counts, "examples": examples}
    (out / f"parse_world_prompts{args.tag}.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["| form | prompts | no move event (right direction) | no turn event (right colour) | not one entity |",
             "|---|---|---|---|---|"]
    for form, c in counts.items():
        lines.append(f"| {form} | {c['prompts']} | {c['no_move']} | {c['no_turn']} | {c['not_one_entity']} |")
    (out / f"parse_world_prompts{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
