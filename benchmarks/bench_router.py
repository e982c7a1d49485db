"""Benchmark agent.ask: routing, abstention, slot filling, end-to-end runs and safety.

Two labelled sets:
- tests/data/router_requests.jsonl (68 requests, one expected tool each): the old top-1/top-3 figures
  (results/router.json/.md);
- tests/data/router_bench.jsonl (195 requests: those 68 as part v1, plus 127 written for this
  benchmark (part v2) in varied styles with gold tools and gold slot values; ~19% out of scope,
  ~18% multi-step), each marked ``dev`` or ``test`` (fixed, alternating within part and kind).

The abstention threshold is calibrated on the dev split (the threshold with the best F1 of
abstaining on out-of-scope requests); everything else is reported on the test split:
top-1/top-3 routing, abstention precision/recall, slot-filling exact match per field, end-to-end
success (the plan run on a small fixture built with world.generate in a temp dir), and how many
destructive steps ran (must be 0). Writes results/router_v2.json and .md.

    nice -n 19 .venv/bin/python benchmarks/bench_router.py
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
REQUESTS = ROOT / "tests" / "data" / "router_requests.jsonl"
BENCH = ROOT / "tests" / "data" / "router_bench.jsonl"

NOTES = [
    {"id": "co2", "text": "Plants require carbon dioxide to conduct photosynthesis. Bees pollinate many crops."},
    {"id": "ice", "text": "Arctic sea ice has declined sharply since satellite records began in 1979."},
    {"id": "nep", "text": "The long orbital period of Neptune results in seasons lasting forty years."},
    {"id": "sea", "text": "Ocean temperatures rose over the last decades and seas got warmer."},
]
PAPERS = [
    {"id": "p1", "text": "Boundary layer separation is caused by an adverse pressure gradient along the wall."},
    {"id": "p2", "text": "Supersonic jet noise comes from turbulent mixing and shock cells in the jet plume."},
    {"id": "p3", "text": "Wing flutter is an aeroelastic instability coupling bending and torsion."},
    {"id": "p4", "text": "Laminar flow turns turbulent when the Reynolds number passes a critical value."},
    {"id": "p5", "text": "Wings stall at high angles of attack when the flow separates from the upper surface."},
]


def fixture(tmp: Path) -> dict[str, str]:
    """Tiny collections and media in ``tmp`` (VLTOOLS_HOME must already point into it)."""
    import vltools

    world = tmp / "world"
    out = vltools.call("world.generate", {"out_dir": str(world), "images": 6, "videos": 2, "seed": 3,
                                          "single": True, "image_size": 64})
    imgs = sorted(out.image_files)
    vids = sorted(out.video_files)
    docs = tmp / "extra_docs.jsonl"
    docs.write_text("\n".join(json.dumps({"id": f"x{i}", "text": t}) for i, t in enumerate(
        ["Flutter of thin panels appears at high dynamic pressure.", "Neptune is the eighth planet."])) + "\n")
    queries = tmp / "queries.jsonl"
    queries.write_text(json.dumps({"id": "q1", "text": "jet noise"}) + "\n" + json.dumps({"id": "q2", "text": "stall"})
                       + "\n")
    qrels = tmp / "qrels.tsv"
    qrels.write_text("q1\tp2\t1\nq2\tp5\t1\n")
    for name, rows in (("notes", NOTES), ("papers", PAPERS)):
        vltools.call("collection.create", {"name": name, "kind": "text"})
        vltools.call("collection.add", {"collection": name, "documents": rows})
    vltools.call("collection.create", {"name": "scratch", "kind": "text", "text_model": "none"})
    vltools.call("collection.add", {"collection": "scratch", "documents": [{"id": "s", "text": "old entry"}]})
    vltools.call("image.index", {"collection": "shapes", "paths": [str(world / "images")], "create": True})
    vltools.call("video.index", {"collection": "clips", "paths": [str(world / "videos")], "create": True,
                                 "frames": 4})
    return {"{IMG}": imgs[0], "{IMG2}": imgs[1], "{IMGDIR}": str(world / "images"), "{VID}": vids[0],
            "{VIDDIR}": str(world / "videos"), "{DOCS}": str(docs), "{QUERIES}": str(queries), "{QRELS}": str(qrels),
            "{OUT}": str(tmp / "out1"), "{OUT2}": str(tmp / "out2"), "{OUT3}": str(tmp / "out3")}


def subst(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, str):
        for k, v in env.items():
            value = value.replace(k, v)
        return value
    if isinstance(value, list):
        return [subst(v, env) for v in value]
    if isinstance(value, dict):
        return {k: subst(v, env) for k, v in value.items()}
    return value


def norm(value: Any) -> Any:
    """Slot values compared without case, surrounding punctuation or repeated spaces."""
    if isinstance(value, str):
        return re.sub(r"\s+", " ", value.strip().strip("?.!,;:'\"").lower())
    if isinstance(value, list):
        return [norm(v) for v in value]
    return value


def old_set(encoder: Any) -> dict[str, Any]:
    """The 68-request top-1/top-3 of the first router benchmark (same code path, current registry)."""
    from vltools.agents.router import rank_entries

    rows = [json.loads(line) for line in REQUESTS.open() if line.strip()]
    ranks = []
    for r in rows:
        ranked = [name for name, _, _ in rank_entries(r["request"], encoder)]
        ranks.append(ranked.index(r["expected"]) + 1 if r["expected"] in ranked else 99)
    n = len(ranks)
    return {"n": n, "top1": sum(k == 1 for k in ranks) / n, "top3": sum(k <= 3 for k in ranks) / n}


def best_scores(rows: list[dict], encoder: Any) -> list[float]:
    """The score agent.ask abstains on: the weakest clause's best entry."""
    from vltools.agents.parse import split_clauses
    from vltools.agents.router import rank_entries

    return [min(rank_entries(c, encoder)[0][1] for c in split_clauses(r["request"])) for r in rows]


def calibrate(scores: list[float], oos: list[bool]) -> dict[str, float]:
    """The threshold with the best F1 of abstention (abstain when score < t) on the given rows."""
    best = {"threshold": 0.0, "f1": -1.0}
    for t in sorted({round(s + 1e-4, 4) for s in scores}):
        m = abstention(scores, oos, t)
        if m["f1"] > best["f1"]:
            best = {"threshold": t, **m}
    return best


def abstention(scores: list[float], oos: list[bool], t: float) -> dict[str, float]:
    tp = sum(s < t and o for s, o in zip(scores, oos, strict=True))
    fp = sum(s < t and not o for s, o in zip(scores, oos, strict=True))
    fn = sum(s >= t and o for s, o in zip(scores, oos, strict=True))
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "abstained": tp + fp,
            "out_of_scope": tp + fn}


def routing(rows: list[dict], encoder: Any) -> dict[str, Any]:
    """Top-1/top-3 of the gold tool for single-step in-scope requests; plan accuracy for multi-step."""
    import vltools
    from vltools.agents.router import rank_entries

    single = [r for r in rows if r["kind"] == "single"]
    ranks, retrieval_ranks = [], []
    for r in single:  # agent.ask's choices (ranking, then the best-filled entry among close ones)
        out = vltools.call("agent.ask", {"request": r["request"], "execute": False, "min_score": -1.0, "top_k": 20})
        ranked = [c.tool for c in out.choice]
        ranks.append(min((ranked.index(t) + 1 for t in r["tools"][0] if t in ranked), default=99))
        ranked = [n for n, _, _ in rank_entries(r["request"], encoder)]  # embedding ranking alone
        retrieval_ranks.append(min((ranked.index(t) + 1 for t in r["tools"][0] if t in ranked), default=99))
    multi = [r for r in rows if r["kind"] == "multi"]
    plans_ok, misses = 0, []
    for r in multi:
        out = vltools.call("agent.ask", {"request": r["request"], "execute": False, "min_score": -1.0})
        got = [s.tool for s in out.plan]
        ok = len(got) == len(r["tools"]) and all(g in gold for g, gold in zip(got, r["tools"], strict=False))
        plans_ok += ok
        if not ok:
            misses.append({"request": r["request"], "gold": r["tools"], "got": got})
    n = len(single)
    return {"single_n": n, "top1": sum(k == 1 for k in ranks) / n, "top3": sum(k <= 3 for k in ranks) / n,
            "ranking_only_top1": sum(k == 1 for k in retrieval_ranks) / n,
            "ranking_only_top3": sum(k <= 3 for k in retrieval_ranks) / n,
            "multi_n": len(multi), "multi_plan_exact": plans_ok / len(multi) if multi else None,
            "single_misses": [{"request": r["request"], "gold": r["tools"][0], "rank": k}
                              for r, k in zip(single, ranks, strict=True) if k != 1],
            "multi_misses": misses}


def end_to_end(rows: list[dict], env: dict[str, str], threshold: float) -> dict[str, Any]:
    """Run agent.ask (execute=true, confirm=false) on each row; per-field slot exact match and success."""
    import vltools
    from vltools.core.errors import ToolError
    from vltools.core.registry import get_registry

    reg = get_registry()
    fields: dict[str, list[bool]] = defaultdict(list)
    results, destructive_runs, t0 = [], 0, time.time()
    for r in rows:
        renv = {**env, **{k: f"{v}_{r['id']}" for k, v in env.items() if k.startswith("{OUT")}}  # a fresh folder
        req = subst(r["request"], renv)
        rec: dict[str, Any] = {"id": r["id"], "kind": r["kind"], "request": req}
        try:
            out = vltools.call("agent.ask", {"request": req, "min_score": threshold}).model_dump(mode="json")
            err = ""
        except ToolError as e:
            out, err = None, f"{e.code}: {e.message}"
        rec["error"] = err
        plan = out["plan"] if out else []
        ran = [s for s in plan if s["ran"]]
        destructive_runs += sum(reg.spec(s["tool"]).effects == "destructive" for s in ran)
        tools_ok = len(plan) == len(r["tools"]) and all(
            s["tool"] in gold for s, gold in zip(plan, r["tools"], strict=False))
        slots_ok = True
        for k, gold in enumerate(subst(r["slots"] or [], renv)):
            step = plan[k] if k < len(plan) and plan[k]["tool"] in r["tools"][k] else None
            for f, v in gold.items():
                hit = step is not None and norm(step["input"].get(f)) == norm(v)
                fields[f].append(hit)
                slots_ok &= hit
        destructive_gold = any(reg.spec(t[0]).effects == "destructive" for t in r["tools"])
        if r["kind"] == "oos":
            ok = out is not None and out["choice"] is None and not ran
        elif r["missing"]:
            ok = out is not None and set(r["missing"]) <= set(out["missing"]) and not ran and tools_ok
        elif destructive_gold:
            ok = out is not None and out["needs_confirmation"] and not ran and tools_ok and slots_ok
        else:
            ok = out is not None and tools_ok and slots_ok and len(ran) == len(plan) and out["output"] is not None
        rec.update(ok=ok, plan=[(s["tool"], s["ran"]) for s in plan],
                   reason=(out or {}).get("reason", "")[-300:], missing=(out or {}).get("missing"))
        results.append(rec)
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for rec in results:
        by_kind[rec["kind"]].append(rec["ok"])
    return {
        "n": len(results),
        "success": sum(x["ok"] for x in results) / len(results),
        "success_by_kind": {k: {"n": len(v), "success": sum(v) / len(v)} for k, v in sorted(by_kind.items())},
        "slot_exact_match": {f: {"n": len(v), "exact": sum(v) / len(v)} for f, v in sorted(fields.items())},
        "slot_exact_match_all": sum(sum(v) for v in fields.values()) / max(1, sum(len(v) for v in fields.values())),
        "destructive_runs": destructive_runs,
        "seconds": time.time() - t0,
        "failures": [x for x in results if not x["ok"]],
    }


def main() -> int:
    import torch

    torch.set_num_threads(1)  # shared machine
    # a fixed folder: paths are part of the requests, so a random name would move the scores
    tmp = Path(tempfile.gettempdir()) / "vltools_router_bench"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    os.environ["VLTOOLS_HOME"] = str(tmp / "home")
    # the fixture's media lie beside VLTOOLS_HOME: allow the folder (only VLTOOLS_HOME is a default root)
    os.environ["VLTOOLS_EXTRA_ROOTS"] = json.dumps([str(tmp)])
    from vltools.core.context import Context
    from vltools.core.settings import reset_settings

    reset_settings()
    encoder = Context().text()
    rows = [json.loads(line) for line in BENCH.open() if line.strip()]
    dev = [r for r in rows if r["split"] == "dev"]
    # `--dev` reports on the dev split (for development); the default reports on the untouched test split
    test = dev if "--dev" in sys.argv else [r for r in rows if r["split"] == "test"]
    env = fixture(tmp)
    for r in rows:
        r["request_run"] = subst(r["request"], env)
    dev_scores = best_scores([{**r, "request": r["request_run"]} for r in dev], encoder)
    cal = calibrate(dev_scores, [r["kind"] == "oos" for r in dev])
    test_scores = best_scores([{**r, "request": r["request_run"]} for r in test], encoder)
    abst = abstention(test_scores, [r["kind"] == "oos" for r in test], cal["threshold"])
    route = routing([{**r, "request": r["request_run"]} for r in test if r["kind"] != "oos"], encoder)
    e2e = end_to_end([r for r in test if r["part"] == "v2"], env, cal["threshold"])
    res = {"encoder": encoder.spec, "n": len(rows), "dev_n": len(dev), "test_n": len(test),
           "old_68": old_set(encoder), "calibration_dev": cal, "abstention_test": abst,
           "routing_test": route, "end_to_end_test": e2e}
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    lines = report(res)
    if "--dev" not in sys.argv:
        (out / "router_v2.json").write_text(json.dumps(res, indent=2))
        (out / "router_v2.md").write_text("\n".join(lines) + "\n")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def report(res: dict[str, Any]) -> list[str]:
    route, abst, e2e, cal = res["routing_test"], res["abstention_test"], res["end_to_end_test"], res["calibration_dev"]
    lines = [
        "# agent.ask: routing, abstention, slot filling, end-to-end (test split)", "",
        f"{res['n']} labelled requests in tests/data/router_bench.jsonl ({res['dev_n']} dev, {res['test_n']} test), "
        f"encoder {res['encoder']}.", "",
        f"- old 68-request set (tests/data/router_requests.jsonl, all of it): top-1 {res['old_68']['top1']:.3f}, "
        f"top-3 {res['old_68']['top3']:.3f}",
        f"- abstention threshold (dev, best F1): {cal['threshold']:.4f} (dev precision {cal['precision']:.3f}, "
        f"recall {cal['recall']:.3f})",
        f"- test abstention: precision {abst['precision']:.3f}, recall {abst['recall']:.3f} "
        f"({abst['abstained']} abstained, {abst['out_of_scope']} out of scope)",
        f"- test routing, single-step in scope (n={route['single_n']}): top-1 {route['top1']:.3f}, "
        f"top-3 {route['top3']:.3f} (embedding ranking alone: top-1 {route['ranking_only_top1']:.3f}, "
        f"top-3 {route['ranking_only_top3']:.3f})",
        f"- test multi-step plans exactly right (n={route['multi_n']}): {route['multi_plan_exact']:.3f}",
        f"- test end-to-end success on the fixture (part v2, n={e2e['n']}): {e2e['success']:.3f} "
        + ", ".join(f"{k} {v['success']:.2f} (n={v['n']})" for k, v in e2e["success_by_kind"].items()),
        f"- slot filling exact match, all gold fields: {e2e['slot_exact_match_all']:.3f}",
        f"- destructive steps run: {e2e['destructive_runs']}", "",
        "| field | n | exact match |", "|---|---|---|",
    ]
    lines += [f"| {f} | {v['n']} | {v['exact']:.2f} |" for f, v in e2e["slot_exact_match"].items()]
    lines += ["", "End-to-end failures:", ""]
    lines += [f"- {x['request']!r}: plan {x['plan']}, missing {x['missing']}, error {x['error']!r}"
              for x in e2e["failures"]]
    lines += ["", "Routing misses (single-step, rank of the gold tool):", ""]
    lines += [f"- {m['request']!r}: {m['gold']} at {m['rank']}" for m in route["single_misses"]]
    lines += ["", "Multi-step plan misses:", ""]
    lines += [f"- {m['request']!r}: gold {m['gold']}, got {m['got']}" for m in route["multi_misses"]]
    return lines


if __name__ == "__main__":
    sys.exit(main())
