"""A private two-tool registry (demo.outer calls demo.inner through ctx.call) through every face:
Python, MCP, LangChain and the CLI; plus error details and cancellation on those faces."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import anyio
import mcp.types as types
import pytest
from mcp.shared.memory import create_connected_server_and_client_session

from tests.core import sample_tools
from tests.core.registries import private_registry
from vltools.cli import main
from vltools.langchain_tools import as_langchain_tools
from vltools.server import build_server

ROOT = Path(__file__).resolve().parents[2]


def _mcp(reg, calls):
    """Run ``calls(client)`` against an in-memory MCP server built on ``reg``; returns its result."""

    async def go():
        async with create_connected_server_and_client_session(build_server(reg)) as client:
            return await calls(client)

    return anyio.run(go)


def test_python_face():
    assert private_registry("py").call("demo.outer", {"text": "a"}).model_dump() == {"text": "[[a]]", "registry": "py"}


def test_mcp_face_lists_and_runs_the_nested_call():
    async def calls(client):
        names = {t.name for t in (await client.list_tools()).tools}
        return names, await client.call_tool("demo_outer", {"text": "b"})

    names, r = _mcp(private_registry("mcp"), calls)
    assert {"demo_inner", "demo_outer"} <= names
    assert not r.isError, r.content
    assert r.structuredContent == {"text": "[[b]]", "registry": "mcp"}


def test_langchain_face_runs_the_nested_call():
    tools = {t.name: t for t in as_langchain_tools(registry=private_registry("lc"))}
    assert tools["demo_outer"].invoke({"text": "c"}) == {"text": "[[c]]", "registry": "lc"}


def _cli(*argv: str, registry) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv), registry=registry)
    return code, out.getvalue(), err.getvalue()


def test_cli_face_runs_the_nested_call():
    reg = private_registry("cli")
    code, out, err = _cli("call", "demo.outer", "--json", '{"text": "d"}', registry=reg)
    assert code == 0, err
    assert json.loads(out) == {"text": "[[d]]", "registry": "cli"}
    code, out, _ = _cli("list", "--json", registry=reg)
    assert code == 0 and "demo.outer" in {e["name"] for e in json.loads(out)}


# -- error details and bugs on each face ------------------------------------------------------------
def test_error_details_reach_every_face():
    reg = private_registry()
    inp = {"text": "run-42"}

    async def calls(client):
        return await client.call_tool("sample_fail_with_details", inp)

    r = _mcp(reg, calls)
    assert r.isError and r.content[0].text.startswith("not_found: no run 'run-42'")
    assert r.meta["vltools/error"] == {
        "code": "not_found", "message": "no run 'run-42'", "hint": "list the runs",
        "details": {"run_id": "run-42", "n": 3},
    }
    code, out, err = _cli("--error-json", "call", "sample.fail_with_details", "--json", json.dumps(inp), registry=reg)
    assert code == 2 and out == ""
    assert json.loads(err)["error"]["details"] == {"run_id": "run-42", "n": 3}
    code, _, err = _cli("call", "sample.fail_with_details", "--json", json.dumps(inp), registry=reg)
    assert code == 2 and err.strip() == "not_found: no run 'run-42' (hint: list the runs)"
    lc = {t.name: t for t in as_langchain_tools(registry=reg)}["sample_fail_with_details"]
    msg = lc.invoke(inp)  # handle_tool_error: the error text is the result
    assert msg.startswith("not_found:") and '"run_id": "run-42"' in msg


def test_a_bug_in_a_tool_is_an_internal_error_on_every_face():
    reg = private_registry()

    async def calls(client):
        return await client.call_tool("sample_crash", {"text": "boom"})

    r = _mcp(reg, calls)
    assert r.isError and r.content[0].text.startswith("internal: sample.crash failed unexpectedly: KeyError")
    assert r.meta["vltools/error"]["details"] == {"tool": "sample.crash", "exception": "KeyError"}
    code, out, err = _cli("call", "sample.crash", "--json", '{"text": "boom"}', registry=reg)
    assert code == 1 and out == "" and err.startswith("internal: sample.crash failed unexpectedly")
    lc = {t.name: t for t in as_langchain_tools(registry=reg)}["sample_crash"]
    assert lc.invoke({"text": "boom"}).startswith("internal:")


# -- cancellation -------------------------------------------------------------------------------------
def test_an_mcp_cancel_frees_the_backend_lock(tmp_path):
    """notifications/cancelled -> the spinning tool sees its stop signal and releases the lock, so
    the next call that needs the same backend runs."""
    marker = tmp_path / "started"

    async def calls(client):
        request_id = client._request_id  # the id of the next request

        async def long_call():
            try:
                await client.call_tool("sample_spin", {"marker": str(marker), "seconds": 300})
            except Exception:  # the cancelled request may answer with an error
                pass

        async with anyio.create_task_group() as tg:
            tg.start_soon(long_call)
            with anyio.fail_after(60):
                while not marker.exists():
                    await anyio.sleep(0.02)
            assert sample_tools.BACKEND_LOCK.locked()
            await client.send_notification(types.ClientNotification(types.CancelledNotification(
                params=types.CancelledNotificationParams(requestId=request_id, reason="test"))))
            with anyio.fail_after(60):
                while sample_tools.BACKEND_LOCK.locked():
                    await anyio.sleep(0.02)
            return await client.call_tool("sample_spin", {"seconds": 0})

    nxt = _mcp(private_registry(), calls)
    assert not nxt.isError and nxt.structuredContent == {"text": "spun"}


_SCRIPT = (
    "import sys\n"
    "from tests.core.registries import private_registry\n"
    "from vltools.cli import _leave, main\n"
    "_leave(main(sys.argv[1:], registry=private_registry()))\n"
)


def _spawn(*argv: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # not inherited as ignored
    )


def test_cli_timeout_exits_2_with_a_timeout_line():
    p = _spawn("call", "sample.spin", "--json", '{"seconds": 300}', "--timeout", "1")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 2, err
    assert out == "" and err.strip().splitlines()[-1].startswith("timeout: sample.spin ran past its time limit")


def _interrupt_when_started(p: subprocess.Popen, marker: Path) -> tuple[str, str]:
    deadline = time.monotonic() + 120
    while not marker.exists() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), p.communicate(timeout=10)
    p.send_signal(signal.SIGINT)
    return p.communicate(timeout=60)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_cli_ctrl_c_with_a_worker_stuck_in_torch_does_not_abort(tmp_path):
    """Root cause of the old exit 134: interpreter shutdown while a daemon worker thread is inside
    torch ("terminate called without an active exception"). A worker that never checks its stop
    signal is left behind after the grace period, and the CLI leaves with os._exit after flushing."""
    pytest.importorskip("torch")
    marker = tmp_path / "computing"
    p = _spawn("call", "sample.torch_busy", "--json", json.dumps({"seconds": 300, "marker": str(marker)}))
    out, err = _interrupt_when_started(p, marker)
    assert "terminate called" not in err
    assert p.returncode == 130, err
    assert out == "" and err.strip().splitlines()[-1] == "interrupted"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_cli_ctrl_c_exits_130(tmp_path):
    marker = tmp_path / "started"
    p = _spawn("call", "sample.spin", "--json", json.dumps({"marker": str(marker), "seconds": 300}))
    out, err = _interrupt_when_started(p, marker)
    assert p.returncode == 130, err
    assert out == "" and err.strip().splitlines()[-1] == "interrupted"
