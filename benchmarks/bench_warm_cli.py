"""Time per ``vltools call image.search`` from a shell: cold (a fresh process loads torch and the
CLIP model) vs warm (``--server`` sends it to a running ``vltools serve --transport http``).

Both are measured as a user sees them: the wall time of a ``vltools call`` subprocess, same
collection, same queries, cold and warm runs interleaved in one run. The server is warmed by one
call first (its model load is a one-off, reported separately).

    .venv/bin/python benchmarks/bench_warm_cli.py [--runs 5] [--images 24]

Writes benchmarks/results/warm_cli.json and warm_cli.md (throwaway VLTOOLS_HOME, the demo CLIP).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
QUERIES = ["a red circle", "two blue squares", "a green triangle at the top", "a small yellow star", "a purple heart"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(env: dict[str, str], query: str, server: str | None) -> float:
    args = [sys.executable, "-m", "vltools.cli", "call", "image.search",
            "--json", json.dumps({"collection": "bench_warm", "query": query, "k": 5})]
    if server:
        args += ["--server", server]
    t0 = time.perf_counter()
    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    dt = time.perf_counter() - t0
    if r.returncode != 0 or len(json.loads(r.stdout)["hits"]) != 5:
        raise RuntimeError(f"call failed: {r.stderr[-500:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--images", type=int, default=24)
    a = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="vltools-warm-"))
    env = dict(os.environ, VLTOOLS_HOME=str(home / "home"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("VLTOOLS_SERVER", None)
    env.pop("VLTOOLS_HTTP_TOKEN", None)
    setup = ("import sys, vltools; "
             "w = vltools.call('world.generate', {'out_dir': sys.argv[1], 'images': int(sys.argv[2])}); "
             "vltools.call('image.index', {'collection': 'bench_warm', 'paths': w.image_files, 'create': True})")
    # the world lies under VLTOOLS_HOME: the only default allowed root of the Python API
    subprocess.run([sys.executable, "-c", setup, str(home / "home" / "world"), str(a.images)], env=env, check=True,
                   capture_output=True)
    port = _port()
    server = subprocess.Popen([sys.executable, "-m", "vltools.cli", "serve", "--transport", "http", "--port",
                               str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(url + "/mcp", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        first_warm = _call(env, QUERIES[0], url)  # the server loads torch + CLIP here, once
        cold, warm = [], []
        for i in range(a.runs):  # interleaved: machine load hits both paths alike
            q = QUERIES[i % len(QUERIES)]
            cold.append(_call(env, q, None))
            warm.append(_call(env, q, url))
    finally:
        server.terminate()
        server.wait(30)
    med_cold, med_warm = statistics.median(cold), statistics.median(warm)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}, "
                   f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}",
        "tool": "image.search (demo CLIP, k=5)", "images": a.images, "runs": a.runs,
        "cold_s": cold, "warm_s": warm, "server_first_call_s": first_warm,
        "median_cold_s": med_cold, "median_warm_s": med_warm, "ratio_cold_over_warm": med_cold / med_warm,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "warm_cli.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# Warm CLI: `vltools call image.search` cold vs `--server`", "",
        f"{result['date']} — {result['machine']}",
        f"{a.images} world images indexed with the demo CLIP; {a.runs} calls per path, interleaved; wall time of the "
        "`vltools call` subprocess as a shell sees it.", "",
        "| path | median s | min s | max s |", "|---|---|---|---|",
        f"| cold (fresh process loads torch + CLIP) | {med_cold:.2f} | {min(cold):.2f} | {max(cold):.2f} |",
        f"| warm (`--server`, model already loaded) | {med_warm:.2f} | {min(warm):.2f} | {max(warm):.2f} |", "",
        f"Cold / warm (medians): **{med_cold / med_warm:.1f}x**. The server's first call (its one-off model load) "
        f"took {first_warm:.2f} s.",
    ]
    (RESULTS / "warm_cli.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
