"""DEV-only choices behind ETVA's colour-change and order answers (fourth pass), on two-event world videos.

``python benchmarks/bench_etva_dev_signals.py [--videos 60] [--seed-base 29960000]``

Videos as in `bench_etva_world.py` (one object, a ``move`` and a ``change_tint`` in either order), from
the DEV seed range only. For every video and every world colour, the per-frame colour distribution of
"there is a {colour} {noun}" (`demo` CLIP, 6 frames) from three feature sources: the dense-region
aggregate of the whole frame (the earlier `_temporal`), the whole frame alone, and the entity's own
object proposal (the `_objects` proposal whose mask crop is closest to the noun). Then:
- "turn {colour}" answered by the earlier first-third/last-third rule or by the best step fit
  (`_vqa_engine.step_change`), the per-frame value being the colour's presence among the colours
  (`presence`) or its share against the strongest other colour (`assert_ratio`); reported as the share
  of (true colour, other colour) pairs the binary answer ranks right (ties 1/2);
- the order of the two events from the soft profiles (`change_profile` of the true colour's
  step fit on the entity crop; `motion_profile` of the entity's proposal centre) for a grid of the two
  temperatures: P(move before turn) > 1/2 against the true order.
Writes results/etva_dev_signals.json / .md.
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
WHERE = {"left": "to the left", "right": "to the right", "up": "up", "down": "down"}


def collect(n: int, seed_base: int) -> list[dict]:
    from vltools.core.context import Context
    from vltools.models.video import sample_frames
    from vltools.tools import _vl_language as lang
    from vltools.tools import _vqa_engine as eng
    from vltools.tools import vqa
    from vltools.world import generate_object_video, write_video

    tmp = Path(tempfile.mkdtemp(prefix="etva_dev_"))
    ctx = Context()
    clip = ctx.clip("demo")
    world = eng.declared_world("demo")
    cols = list(world.attributes["colour"])
    out, seed = [], seed_base
    while len(out) < n and seed < seed_base + 2000:
        seed += 1
        v = generate_object_video(seed, n_objects=1, n_events=2, event_types=("move", "change_tint"))
        kinds = [e["type"] for e in v.events]
        if sorted(kinds) != ["change_tint", "move"] or v.events[kinds.index("move")].get("direction") not in WHERE:
            continue
        mv, tn = v.events[kinds.index("move")], v.events[kinds.index("change_tint")]
        concept = v.labels["objects"][0]["concept"]
        q = lang.parse_question(f"Does the {concept} turn red?")
        if q.target is None:
            continue
        path = write_video(v.frames, tmp / f"v{seed}.mp4", fps=v.fps)
        frames, times, _ = sample_frames(str(path), ctx.settings, n=6, timestamps=None, max_frames=64)
        feats = [eng.region_features(clip, im, None) for im in frames]
        a = vqa._Answerer(vqa.VqaInput(video=str(path), question="x", clip="demo", frames=6), clip, feats, world,
                          None, frames)
        ent = lang.Entity(noun=q.target.noun, attributes=[x for x in q.target.attributes if x != "red"])
        groups = [a.variants(lang.Entity(noun=ent.noun, attributes=[*ent.attributes, c]), position=False)
                  for c in cols]
        own = vqa._entity_objects(a, ent)
        rec = {"seed": seed, "concept": concept, "colour": tn["to"], "direction": mv["direction"],
               "move_first": kinds[0] == "move", "cols": cols, "times": times, "region": [], "whole": [],
               "crop": [], "loc": []}
        for f, o in zip(feats, own, strict=True):
            rec["region"].append(a.score(f, groups).probs.tolist())
            rec["whole"].append(a.score(f[:1], groups).probs.tolist())
            rec["crop"].append(a.score(o[1], groups).probs.tolist() if o else rec["whole"][-1])
            rec["loc"].append(list(o[0]) if o else None)
        out.append(rec)
        print(f"video {len(out)}", file=sys.stderr)
    return out


def analyse(data: list[dict]) -> tuple[dict, list[str]]:
    from vltools.tools import _vqa_engine as eng

    def old_rule(v: list[float]) -> float:
        first, last = eng.ends(v)
        return min(1 - first, last)

    def value(p: np.ndarray, j: int, kind: str) -> float:
        x = np.r_[p[j], np.delete(p, j)]
        return eng.presence(x) if kind == "presence" else eng.assert_ratio(x)

    res: dict = {"turn": {}, "order": {}}
    lines = ["| source | per-frame value | change rule | true colour 'yes' | other colour 'yes' | binary pairwise |",
             "|---|---|---|---|---|---|"]
    for src in ("region", "whole", "crop"):
        for kind in ("presence", "assert"):
            for rule_name, rule in (("first/last third", old_rule), ("step fit", eng.step_change)):
                good = tot = yes = other_yes = 0.0
                for r in data:
                    P = np.asarray(r[src])
                    c = r["cols"].index(r["colour"])
                    pt = rule([value(p, c, kind) for p in P]) >= 0.5
                    yes += pt
                    for j in range(len(r["cols"])):
                        if j != c:
                            po = rule([value(p, j, kind) for p in P]) >= 0.5
                            other_yes += po
                            good += 1.0 if pt > po else 0.5 if pt == po else 0.0
                            tot += 1
                key = f"{src}/{kind}/{rule_name}"
                res["turn"][key] = {"pairwise": good / tot, "true_yes": yes / len(data), "other_yes": other_yes / tot}
                lines.append(f"| {src} | {kind} | {rule_name} | {int(yes)}/{len(data)} | {other_yes / tot:.3f} | "
                             f"{good / tot:.3f} |")
    lines += ["", "order from the profiles (entity crop, assert ratio, step fit), accuracy:", "",
              "| turn temperature \\ move temperature | 0.01 | 0.03 | 0.05 | 0.1 | 0.2 |", "|---" * 6 + "|"]
    for tt in (0.02, 0.05, 0.1, 0.2):
        row = []
        for tm in (0.01, 0.03, 0.05, 0.1, 0.2):
            acc = 0.0
            for r in data:
                P = np.asarray(r["crop"])
                c = r["cols"].index(r["colour"])
                turn = eng.change_profile([value(p, c, "assert") for p in P], tt)
                axis = 0 if r["direction"] in ("left", "right") else 1
                sign = -1.0 if r["direction"] in ("left", "up") else 1.0
                xs = [loc[axis] if loc else np.nan for loc in r["loc"]]
                xs = list(np.where(np.isnan(xs), np.nanmean(xs), xs))
                b = eng.p_before(eng.motion_profile(xs, sign, tm), turn)
                acc += 0.5 if b == 0.5 else float((b > 0.5) == r["move_first"])
            res["order"][f"{tt}/{tm}"] = acc / len(data)
            row.append(f"{acc / len(data):.3f}")
        lines.append(f"| {tt} | " + " | ".join(row) + " |")
    return res, lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=60)
    ap.add_argument("--seed-base", type=int, default=29_960_000, help="DEV seeds only")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    t0 = time.time()
    os.environ.setdefault("VLTOOLS_ALLOWED_ROOTS", json.dumps([tempfile.gettempdir()]))
    data = collect(args.videos, args.seed_base)
    res, lines = analyse(data)
    lines.insert(0, f"{len(data)} dev videos (seeds after {args.seed_base}), {time.time() - t0:.0f} s\n")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "etva_dev_signals.json").write_text(json.dumps({"args": vars(args), **res}, indent=1) + "\n")
    (out / "etva_dev_signals.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
