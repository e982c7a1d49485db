"""Abandoned HTTP MCP sessions (issue 21: 1,000 of them held +58 MiB for 30 minutes): sessions are
capped (503 beyond the cap) and idle ones are closed, after which a new session is admitted."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest

from .conftest import PYTHON, ROOT, free_port

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "probe", "version": "0"}},
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture
def small_server(server_env, tmp_path):
    port = free_port()
    env = {**server_env, "VLTOOLS_MAX_MCP_SESSIONS": "3", "VLTOOLS_MCP_SESSION_IDLE_S": "1"}
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [PYTHON, "-m", "vltools.cli", "serve", "--transport", "http", "--port", str(port)],
        env=env, cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, "server exited"
            try:
                httpx.get(url, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _open(url: str) -> httpx.Response:
    return httpx.post(url, json=INIT, headers=HEADERS, timeout=30)


def test_sessions_are_capped_and_idle_ones_expire(small_server):
    opened = [_open(small_server) for _ in range(3)]
    assert all(r.status_code == 200 and r.headers.get("mcp-session-id") for r in opened)
    assert _open(small_server).status_code == 503  # the cap holds while they are open
    # abandoned sessions are closed after the idle period; then new clients get in again
    deadline = time.monotonic() + 60
    while (r := _open(small_server)).status_code == 503:
        assert time.monotonic() < deadline, "idle sessions were never closed"
        time.sleep(0.5)
    assert r.status_code == 200
    old = opened[0].headers["mcp-session-id"]
    gone = httpx.post(small_server, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                      headers={**HEADERS, "mcp-session-id": old}, timeout=30)
    assert gone.status_code == 404
