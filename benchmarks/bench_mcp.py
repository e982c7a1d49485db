"""Cost of one MCP tool call vs the same direct Python call, measured side by side in one run.

Same tool (``retrieve.bm25``), same collection, same inputs, interleaved so that machine load
hits every path alike:

- ``direct``: ``vltools.call("retrieve.bm25", {...})`` in this process (validation, worker
  thread with deadline, output validation, ``model_dump``),
- ``mcp-memory``: an MCP client session to `vltools.server` over in-process memory streams
  (protocol, JSON-RPC (de)serialisation, server thread hop; no transport),
- ``mcp-stdio``: an MCP client talking to ``python -m vltools.cli serve`` over stdio (a real
  subprocess: adds pipe I/O, JSON encoding on both sides, two processes scheduling),
- ``mcp-http``: the same over streamable HTTP on 127.0.0.1 (``--transport http``).

Also measured: cold start of the stdio server (spawn -> ``initialize`` answered -> first
``tools/list`` answered).

    .venv/bin/python benchmarks/bench_mcp.py [--calls 300] [--docs 1400] [--k 10]

Writes benchmarks/results/mcp.json and mcp.md. Uses the Cranfield corpus in ../shared/data if
present (else a synthetic corpus) in a throwaway VLTOOLS_HOME.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "cranfield"
RESULTS = ROOT / "benchmarks" / "results"
COLLECTION = "bench_mcp"


def _corpus(n_docs: int) -> tuple[list[dict], list[str], str]:
    if (DATA / "corpus.jsonl").exists():
        docs = [json.loads(line) for line in (DATA / "corpus.jsonl").open(encoding="utf-8")][:n_docs]
        docs = [d for d in docs if d.get("text", "").strip()]
        queries = [json.loads(line)["text"] for line in (DATA / "queries.jsonl").open(encoding="utf-8")]
        return docs, queries, f"Cranfield ({len(docs)} docs, {len(queries)} queries)"
    words = "jet wing lift drag flow shock heat boundary layer pressure supersonic panel flutter".split()
    docs = [{"id": str(i), "text": " ".join(words[(i * j) % len(words)] for j in range(1, 40))} for i in range(n_docs)]
    queries = [" ".join(words[(i + j) % len(words)] for j in range(4)) for i in range(50)]
    return docs, queries, f"synthetic ({len(docs)} docs)"


def _summary(ms: list[float]) -> dict[str, float]:
    ms_sorted = sorted(ms)
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "p10_ms": round(ms_sorted[int(0.10 * (len(ms) - 1))], 3),
        "p90_ms": round(ms_sorted[int(0.90 * (len(ms) - 1))], 3),
        "min_ms": round(ms_sorted[0], 3),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cached_validation_session_class():
    """A ClientSession that validates results with one compiled validator per tool.

    mcp 1.30's client calls one-shot ``jsonschema.validate`` on every result, which re-checks
    the schema against the 2020-12 metaschema each time (python-sdk issue #3133). This variant
    separates that client-side cost from the protocol and transport.
    """
    import jsonschema
    from mcp import ClientSession
    from referencing import Registry

    class CachedValidationSession(ClientSession):
        _validators: dict = {}

        async def _validate_tool_result(self, name, result):  # same checks, compiled once
            if name not in self._tool_output_schemas:
                await self.list_tools()
            schema = self._tool_output_schemas.get(name)
            if schema is None:
                return
            v = self._validators.get(name)
            if v is None:
                cls = jsonschema.validators.validator_for(schema)
                cls.check_schema(schema)
                v = self._validators[name] = cls(schema, registry=Registry())
            if result.structuredContent is None:
                raise RuntimeError(f"Tool {name} has an output schema but did not return structured content")
            v.validate(result.structuredContent)

    return CachedValidationSession


async def _wait_http(url: str) -> None:
    import httpx

    for _ in range(1200):
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"HTTP server at {url} did not come up")


async def _run(args: argparse.Namespace, env: dict[str, str], inputs: list[dict]) -> dict:
    from contextlib import AsyncExitStack

    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamablehttp_client
    from mcp.shared.memory import create_connected_server_and_client_session

    import vltools
    from vltools.server import build_server

    timeout = timedelta(seconds=120)
    params = StdioServerParameters(command=sys.executable, args=["-m", "vltools.cli", "serve"], env=env, cwd=str(ROOT))
    http_proc = None
    port = _free_port()
    if args.http:
        http_proc = subprocess.Popen(
            [sys.executable, "-m", "vltools.cli", "serve", "--transport", "http", "--port", str(port)],
            env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    startup: dict[str, float] = {}
    sessions: dict[str, ClientSession] = {}
    try:
        async with AsyncExitStack() as stack:
            errlog = stack.enter_context(open(os.devnull, "w"))  # noqa: SIM115
            t0 = time.perf_counter()
            r, w = await stack.enter_async_context(stdio_client(params, errlog=errlog))
            stdio = await stack.enter_async_context(ClientSession(r, w))
            await stdio.initialize()
            startup["initialize_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            listed = await stdio.list_tools()
            startup["first_tools_list_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            startup["tools_listed"] = len(listed.tools)
            sessions["mcp-stdio"] = stdio

            r2, w2 = await stack.enter_async_context(stdio_client(params, errlog=errlog))
            cached = await stack.enter_async_context(_cached_validation_session_class()(r2, w2))
            await cached.initialize()
            sessions["mcp-stdio, cached client validator"] = cached

            sessions["mcp-memory"] = await stack.enter_async_context(
                create_connected_server_and_client_session(build_server())
            )
            if http_proc is not None:
                url = f"http://127.0.0.1:{port}/mcp"
                await _wait_http(url)
                hr, hw, _ = await stack.enter_async_context(streamablehttp_client(url))
                http_session = await stack.enter_async_context(ClientSession(hr, hw))
                await http_session.initialize()
                sessions["mcp-http"] = http_session

            times: dict[str, list[float]] = {"direct": [], **{name: [] for name in sessions}}
            sizes: list[int] = []

            async def mcp_call(session: ClientSession, inp: dict) -> dict:
                res = await session.call_tool("retrieve_bm25", inp, read_timeout_seconds=timeout)
                if res.isError:
                    raise RuntimeError(res.content[0].text)
                return res.structuredContent

            # warm-up: every path a few times (imports, BM25 index load, schema caches)
            for inp in inputs[:3]:
                vltools.call("retrieve.bm25", inp)
                for sess in sessions.values():
                    await mcp_call(sess, inp)

            for i, inp in enumerate(inputs):
                order = ["direct", *sessions]
                order = order[i % len(order):] + order[: i % len(order)]  # rotate who goes first
                results = {}
                for path in order:
                    t = time.perf_counter()
                    if path == "direct":
                        results[path] = vltools.call("retrieve.bm25", inp).model_dump(mode="json")
                    else:
                        results[path] = await mcp_call(sessions[path], inp)
                    times[path].append((time.perf_counter() - t) * 1000)
                ids = {p: [h["id"] for h in res["hits"]] for p, res in results.items()}
                assert all(v == ids["direct"] for v in ids.values()), f"paths disagree on {inp}"
                sizes.append(len(json.dumps(results["direct"])))
    finally:
        if http_proc is not None:
            http_proc.terminate()
            http_proc.wait(20)
    return {"times": times, "startup": startup, "result_json_bytes_median": int(statistics.median(sizes)),
            "client_validation": _validation_cost(inputs[0])}


def _validation_cost(inp: dict, reps: int = 100) -> dict[str, float]:
    """What the SDK client's per-result check costs: one-shot validate vs a compiled validator."""
    import jsonschema
    from referencing import Registry

    import vltools

    schema = vltools.registry().get("retrieve.bm25").output_model.model_json_schema(mode="serialization")
    result = vltools.call("retrieve.bm25", inp).model_dump(mode="json")
    out: dict[str, float] = {}
    compiled = jsonschema.validators.validator_for(schema)(schema, registry=Registry())
    for label, fn in (
        ("one_shot_validate_ms", lambda: jsonschema.validate(result, schema, registry=Registry())),
        ("compiled_validator_ms", lambda: compiled.validate(result)),
        ("check_schema_only_ms", lambda: jsonschema.Draft202012Validator.check_schema(schema)),
    ):
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        out[label] = round((time.perf_counter() - t) / reps * 1000, 3)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=300, help="measured calls per path")
    p.add_argument("--docs", type=int, default=1400, help="documents in the collection")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--no-http", dest="http", action="store_false", help="skip the streamable-HTTP path")
    args = p.parse_args()

    home = tempfile.mkdtemp(prefix="vltools-bench-mcp-")
    os.environ["VLTOOLS_HOME"] = home
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    env = {k: v for k, v in os.environ.items() if k != "VLTOOLS_HTTP_TOKEN"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")

    import vltools
    from vltools.core.settings import reset_settings

    reset_settings()
    docs, queries, corpus = _corpus(args.docs)
    vltools.call("collection.create", {"name": COLLECTION, "kind": "text", "text_model": "none"})
    vltools.call("collection.add", {"collection": COLLECTION, "documents": docs})
    inputs = [{"collection": COLLECTION, "query": queries[i % len(queries)], "k": args.k} for i in range(args.calls)]

    t0 = time.perf_counter()
    run = asyncio.run(_run(args, env, inputs))
    stats = {path: _summary(ms) for path, ms in run["times"].items()}
    direct = stats["direct"]["median_ms"]
    ratios = {path: round(s["median_ms"] / direct, 2) for path, s in stats.items() if path != "direct"}
    direct_p10 = stats["direct"]["p10_ms"]
    ratios_p10 = {path: round(s["p10_ms"] / direct_p10, 2) for path, s in stats.items() if path != "direct"}
    overhead = {path: round(s["median_ms"] - direct, 3) for path, s in stats.items() if path != "direct"}
    result = {
        "benchmark": "mcp",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_average": os.getloadavg(),
        "tool": "retrieve.bm25",
        "corpus": corpus,
        "k": args.k,
        "calls_per_path": args.calls,
        "result_json_bytes_median": run["result_json_bytes_median"],
        "per_call": stats,
        "median_ratio_vs_direct": ratios,
        "p10_ratio_vs_direct": ratios_p10,
        "median_overhead_ms_vs_direct": overhead,
        "stdio_server_startup": run["startup"],
        "client_output_validation": run["client_validation"],
        "seconds": round(time.perf_counter() - t0, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "mcp.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# MCP call vs direct Python call (retrieve.bm25)",
        "",
        f"{result['date']} — {result['machine']}, load average {', '.join(f'{x:.1f}' for x in result['load_average'])}",
        f"corpus: {corpus}; k={args.k}; {args.calls} calls per path, interleaved; "
        f"result JSON ~{result['result_json_bytes_median']} bytes",
        "",
        "| path | median ms | p10 ms | p90 ms | median ratio vs direct | p10 ratio vs direct | median overhead ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for path, s in stats.items():
        ratio = "1.00" if path == "direct" else f"{ratios[path]:.2f}"
        ratio10 = "1.00" if path == "direct" else f"{ratios_p10[path]:.2f}"
        extra = "0" if path == "direct" else f"{overhead[path]:.2f}"
        lines.append(f"| {path} | {s['median_ms']:.2f} | {s['p10_ms']:.2f} | {s['p90_ms']:.2f} "
                     f"| {ratio} | {ratio10} | {extra} |")
    st = run["startup"]
    lines += ["", f"stdio server cold start: initialize answered after {st['initialize_ms']:.0f} ms, "
                  f"first tools/list ({st['tools_listed']} tools) after {st['first_tools_list_ms']:.0f} ms.", ""]
    cv = run["client_validation"]
    lines += [f"SDK client's check of one result against the output schema: one-shot jsonschema.validate "
              f"{cv['one_shot_validate_ms']:.2f} ms (of which check_schema {cv['check_schema_only_ms']:.2f} ms), "
              f"compiled validator {cv['compiled_validator_ms']:.2f} ms.", ""]
    (RESULTS / "mcp.md").write_text("\n".join(lines))
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
