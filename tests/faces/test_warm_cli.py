"""`vltools call --server URL` / VLTOOLS_SERVER: the call runs in a warm HTTP MCP server on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest

from .conftest import PYTHON, ROOT, free_port

TOKEN = "warm-token-0123456789"
CLIENT = (
    "import sys; from vltools.cli import main; rc = main(sys.argv[1:]); "
    "sys.stderr.write('TORCH_LOADED=%s\\n' % ('torch' in sys.modules)); sys.exit(rc)"
)


@pytest.fixture(scope="module")
def warm_server(server_env, bm25_collection, tmp_path_factory):
    port = free_port()
    log = (tmp_path_factory.mktemp("warm") / "server.log").open("w")
    proc = subprocess.Popen(
        [PYTHON, "-m", "vltools.cli", "serve", "--transport", "http", "--port", str(port)],
        env={**server_env, "VLTOOLS_HTTP_TOKEN": TOKEN}, cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
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


def client(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-c", CLIENT, *args], env=env, capture_output=True, text=True, timeout=120)


def test_call_runs_on_the_server_and_matches_a_local_call(warm_server, server_env, bm25_collection, run_cli):
    args = json.dumps({"collection": bm25_collection, "query": "jet engine turbine", "k": 3})
    env = {**server_env, "VLTOOLS_HTTP_TOKEN": TOKEN}
    remote = client(["call", "retrieve.bm25", "--json", args, "--server", warm_server], env)
    assert remote.returncode == 0, remote.stderr
    assert "TORCH_LOADED=False" in remote.stderr  # nothing heavy in the short-lived process
    code, local, _ = run_cli("call", "retrieve.bm25", "--json", args)
    assert code == 0 and json.loads(remote.stdout) == json.loads(local)
    # The same through the environment variable.
    via_env = client(["call", "retrieve.bm25", "--json", args], {**env, "VLTOOLS_SERVER": warm_server + "/mcp"})
    assert via_env.returncode == 0 and json.loads(via_env.stdout) == json.loads(local)


def test_server_side_errors_keep_their_code_message_and_exit_2(warm_server, server_env, bm25_collection):
    env = {**server_env, "VLTOOLS_HTTP_TOKEN": TOKEN}
    bad = client(["call", "retrieve.bm25", "--json", json.dumps({"collection": bm25_collection, "query": "x", "k": 0}),
                  "--server", warm_server], env)
    assert bad.returncode == 2 and bad.stdout == ""
    line = bad.stderr.splitlines()[0]
    assert line.startswith("invalid_input: ") and "k: Input should be greater than or equal to 1" in line
    missing = client(["call", "retrieve.bm25", "--json", '{"collection": "nope", "query": "x"}',
                      "--server", warm_server], env)
    assert missing.returncode == 2 and missing.stderr.startswith("not_found: ")


def test_wrong_token_and_unreachable_server_are_clear_errors(warm_server, server_env):
    args = ["call", "collection.list", "--json", "{}"]
    no_token = client([*args, "--server", warm_server], {**server_env, "VLTOOLS_HTTP_TOKEN": "wrong"})
    assert no_token.returncode == 2 and "wants a bearer token" in no_token.stderr
    gone = client([*args, "--server", f"http://127.0.0.1:{free_port()}"], server_env)
    assert gone.returncode == 2 and gone.stderr.startswith("backend: cannot reach the vltools server")
    assert "Traceback" not in gone.stderr


def test_progress_notifications_reach_the_caller(warm_server):
    import vltools
    from vltools.remote import call_remote

    from .conftest import many_docs

    vltools.call("collection.create", {"name": "warm_progress", "kind": "text", "model": "none"})
    seen: list[tuple[float, float | None, str]] = []
    out = call_remote(warm_server, "collection.add", {"collection": "warm_progress", "documents": many_docs(40, "w")},
                      token=TOKEN, progress=lambda d, t, n: seen.append((d, t, n)))
    assert out["added"] == 40
    assert seen and [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)
