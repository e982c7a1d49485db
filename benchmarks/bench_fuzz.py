"""The deeper fuzz run: every registry tool's input schema with many more inputs than CI runs.

Same harness as ``tests/core/test_fuzz.py`` (``tests/core/_fuzz.py``: hypothesis-jsonschema
valid-shaped inputs sprinkled with real files/collections/specs and hostile strings, mutated and
malformed inputs; stub LLM, real demo CLIP and MiniLM). Raw exceptions are recorded, not raised,
so one run reports them all. Writes benchmarks/results/fuzz.json and fuzz.md.

    nice -n 19 .venv/bin/python benchmarks/bench_fuzz.py --examples 150 [--tools a,b] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=150, help="inputs per tool")
    p.add_argument("--timeout", type=float, default=5.0, help="deadline of one call, seconds")
    p.add_argument("--tools", default="", help="comma-separated tool names (default: every registry tool)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = p.parse_args(argv)

    import torch
    from hypothesis import HealthCheck, Phase, given, seed
    from hypothesis import settings as hsettings

    from tests.core._fuzz import Tally, build_world, ensure_collections, input_strategy
    from vltools.core.registry import get_registry

    torch.set_num_threads(1)  # shared machine
    names = [n for n in args.tools.split(",") if n] or get_registry().names()
    tmp = Path(tempfile.mkdtemp(prefix="vltools-fuzz-"))
    os.environ["VLTOOLS_HOME"] = str(tmp / "home")
    settings, strings = build_world(tmp)
    tally = Tally()
    seconds: dict[str, float] = {}
    t_all = time.monotonic()
    def fuzzer(name: str):
        @seed(args.seed)
        @hsettings(max_examples=args.examples, deadline=None, database=None,
                   suppress_health_check=list(HealthCheck), phases=[Phase.generate])
        @given(inp=input_strategy(name, strings))
        def fuzz(inp):
            tally.run(name, inp, settings, timeout=args.timeout, reraise=False)

        return fuzz

    for name in names:
        ensure_collections(settings)
        t0 = time.monotonic()
        fuzzer(name)()
        seconds[name] = round(time.monotonic() - t0, 1)
        c = tally.outcomes[name]
        sys.stderr.write(f"{name}: {tally.tried(name)} inputs, raw={c['RAW']}, timeouts={c['timeout']}, "
                         f"ok={c['ok']} ({seconds[name]} s)\n")
    per_tool = {
        n: {"inputs": tally.tried(n), "raw_exceptions": tally.outcomes[n]["RAW"], "ok": tally.outcomes[n]["ok"],
            "timeouts": tally.outcomes[n]["timeout"],
            "tool_errors": {k: v for k, v in sorted(tally.outcomes[n].items()) if k not in ("ok", "RAW")},
            "seconds": seconds[n], "raw_samples": tally.raw[n][:5]}
        for n in names
    }
    res = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "examples_per_tool": args.examples, "call_timeout_s": args.timeout, "seed": args.seed,
        "total_inputs": sum(v["inputs"] for v in per_tool.values()),
        "total_raw_exceptions": sum(v["raw_exceptions"] for v in per_tool.values()),
        "seconds": round(time.monotonic() - t_all, 1),
        "per_tool": per_tool,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fuzz.json").write_text(json.dumps(res, indent=2, ensure_ascii=False))
    lines = [
        "# Fuzz run over every registry tool's input schema", "",
        f"{res['date']}; {args.examples} hypothesis examples per tool (seed {args.seed}), call deadline "
        f"{args.timeout:g} s; stub LLM, demo CLIP, MiniLM. {res['total_inputs']} inputs in {res['seconds']} s; "
        f"**{res['total_raw_exceptions']} exceptions other than ToolError**.", "",
        "| tool | inputs | ok | ToolErrors (by code) | timeouts | raw exceptions |", "|---|---|---|---|---|---|",
    ]
    for n, v in per_tool.items():
        codes = ", ".join(f"{k} {c}" for k, c in v["tool_errors"].items() if k != "timeout")
        lines.append(f"| {n} | {v['inputs']} | {v['ok']} | {codes} | {v['timeouts']} | {v['raw_exceptions']} |")
    raw = [(n, s) for n, v in per_tool.items() for s in v["raw_samples"]]
    if raw:
        lines += ["", "## Raw exceptions (first 5 per tool)", ""] + [f"- {n}: `{s[:300]}`" for n, s in raw]
    (out / "fuzz.md").write_text("\n".join(lines) + "\n")
    sys.stdout.write(f"{res['total_inputs']} inputs, {res['total_raw_exceptions']} raw exceptions\n")
    return 0 if not res["total_raw_exceptions"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
