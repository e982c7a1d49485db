"""Shared fixtures of the faces tests: a small BM25 collection made through the Python API, and
the environment a server subprocess needs to see it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import vltools

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
BM25_COLLECTION = "faces_bm25"

DOCS = [
    {"id": "jet", "title": "Jet engines", "text": "A jet engine burns fuel in a combustor and drives a turbine."},
    {"id": "wing", "title": "Wings", "text": "The wing of an aircraft makes lift from the airflow over its surface."},
    {"id": "boat", "title": "Sailing", "text": "A sailing boat uses the wind on its sails to move across the water."},
    {"id": "bread", "title": "Baking", "text": "Bread dough rises because yeast ferments the sugars in the flour."},
    {"id": "moon", "title": "The Moon", "text": "The Moon orbits the Earth and its phases follow the lunar month."},
    {"id": "bee", "title": "Bees", "text": "Honey bees collect nectar from flowers and make honey in the hive."},
    {"id": "rail", "title": "Railways", "text": "Steam locomotives pulled trains on railways across the country."},
    {"id": "ice", "title": "Glaciers", "text": "A glacier is a slow river of ice that carves valleys in mountains."},
]


def many_docs(n: int, prefix: str) -> list[dict[str, str]]:
    """``n`` distinct small documents (for calls that should report progress)."""
    topics = ["turbines", "rivers", "bread", "orbits", "honey", "trains", "glaciers", "sails"]
    return [
        {"id": f"{prefix}{i}", "text": f"note {i} about {topics[i % len(topics)]} and item number {i * 7 % 31}"}
        for i in range(n)
    ]


@pytest.fixture(scope="session")
def bm25_collection(vltools_home: Path) -> str:
    """A BM25-only text collection holding DOCS, made with vltools.call in this process."""
    vltools.call("collection.create", {"name": BM25_COLLECTION, "kind": "text", "text_model": "none"})
    vltools.call("collection.add", {"collection": BM25_COLLECTION, "documents": DOCS})
    return BM25_COLLECTION


@pytest.fixture(scope="session")
def server_env(vltools_home: Path) -> dict[str, str]:
    """Environment for server subprocesses: this session's VLTOOLS_HOME, offline, no HTTP token."""
    env = dict(os.environ)
    env.pop("VLTOOLS_HTTP_TOKEN", None)
    env.update(VLTOOLS_HOME=str(vltools_home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_http(env: dict[str, str], log_path: Path, *args: str) -> Iterator[str]:
    """Run ``vltools serve --transport http`` on a free loopback port; yields its base URL once
    ``/mcp`` answers (within 120 s), and stops the server on exit. ``args`` are extra serve options."""
    port = free_port()
    log = log_path.open("w")
    proc = subprocess.Popen(
        [PYTHON, "-m", "vltools.cli", "serve", "--transport", "http", *args, "--port", str(port)],
        env=env, cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode} (log: {log_path})")
            try:
                httpx.get(url + "/mcp", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
