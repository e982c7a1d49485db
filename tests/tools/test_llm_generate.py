"""llm.generate: input rules, and a real answer from the bundled SmolLM2."""

from __future__ import annotations

import json

import pytest

import vltools
from vltools.core.errors import InvalidInput


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"prompt": "hi", "messages": [{"role": "user", "content": "hi"}]},
        {"prompt": "   "},
        {"prompt": "hi", "max_tokens": 0},
        {"messages": []},
        {"messages": [{"role": "robot", "content": "hi"}]},
    ],
)
def test_bad_input_is_a_clear_error(bad):
    with pytest.raises(InvalidInput):
        vltools.call("llm.generate", bad)


def test_unknown_llm_spec():
    with pytest.raises(InvalidInput) as exc:
        vltools.call("llm.generate", {"prompt": "hi", "llm": "nonsense:model"})
    assert "nonsense" in str(exc.value)


@pytest.mark.heavy
def test_smollm2_answers_and_reports_cost():
    out = vltools.call(
        "llm.generate",
        {"prompt": "What is the capital of France? Answer with one word.", "max_tokens": 8, "system": "Be brief."},
    )
    assert "paris" in out.text.lower()
    assert out.llm == "smollm2" and out.stats.generated_tokens >= 1 and out.stats.prompt_tokens > 5
    assert out.finish_reason in {"stop", "length"}


# -- cancellation: a long generation is cut at the deadline and frees the model ----------------------
LONG = {"prompt": "Write a very long story about a dragon and a knight.", "max_tokens": 4096}


@pytest.mark.heavy
def test_a_timed_out_generation_stops_and_frees_the_model():
    import torch

    from vltools.core.errors import Timeout
    from vltools.core.registry import running_workers
    from vltools.models.llm import get_llm

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        llm = get_llm("smollm2")  # loaded before the clock starts
        with pytest.raises(Timeout) as exc:
            vltools.call("llm.generate", LONG, timeout=3)
        assert exc.value.details.get("stopped") is True  # the generation ended within the grace period
        assert not [t for t in running_workers() if t.name == "vltools:llm.generate"]
        got = llm._lock.acquire(blocking=False)  # nobody is generating any more
        assert got
        llm._lock.release()
        # and the next call is served at once (it would queue behind 4096 tokens otherwise)
        out = vltools.call("llm.generate", {"prompt": "Say hi.", "max_tokens": 4}, timeout=600)
        assert out.stats.generated_tokens >= 1
    finally:
        torch.set_num_threads(threads)


def _cli_process():
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))

    def start(*extra: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "vltools.cli", "call", "llm.generate", "--json", json.dumps(LONG), *extra],
            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    return start


@pytest.mark.heavy
def test_cli_timeout_during_generation_exits_2_without_abort():
    p = _cli_process()("--timeout", "40")
    out, err = p.communicate(timeout=300)
    text = err.decode(errors="replace")
    assert p.returncode == 2, text[-2000:]
    assert out == b"" and "terminate called" not in text
    lines = [part.strip() for line in text.splitlines() for part in line.split("\r")]
    assert any(line.startswith("timeout: llm.generate ran past its time limit") for line in lines), text[-2000:]


@pytest.mark.heavy
def test_cli_ctrl_c_during_generation_exits_130_without_abort():
    import signal
    import threading
    import time

    p = _cli_process()()
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            b = p.stderr.read1(4096) if hasattr(p.stderr, "read1") else p.stderr.read(1)
            if not b:
                return
            chunks.append(b)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 240
    while b"generating" not in b"".join(chunks) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert b"generating" in b"".join(chunks), b"".join(chunks)[-2000:]
    time.sleep(2)  # well inside the generation
    p.send_signal(signal.SIGINT)
    p.wait(timeout=120)
    reader.join(10)
    text = b"".join(chunks).decode(errors="replace")
    assert p.returncode == 130, text[-2000:]
    assert "terminate called" not in text and text.rstrip().endswith("interrupted")


@pytest.mark.heavy
def test_an_mcp_cancel_frees_the_model_for_the_next_request():
    """Over MCP: cancel a long generation; the model's lock is free again soon, and the next
    llm.generate request in the same server is answered."""
    import anyio
    import mcp.types as types
    import torch
    from mcp.shared.memory import create_connected_server_and_client_session

    from vltools.models.llm import get_llm
    from vltools.server import build_server

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    llm = get_llm("smollm2")

    async def go():
        async with create_connected_server_and_client_session(build_server()) as client:
            request_id = client._request_id

            async def long_call():
                try:
                    await client.call_tool("llm_generate", LONG)
                except Exception:
                    pass

            async with anyio.create_task_group() as tg:
                tg.start_soon(long_call)
                with anyio.fail_after(240):  # until the worker generates, holding the model's lock
                    while True:
                        await anyio.sleep(0.05)
                        if not llm._lock.acquire(blocking=False):
                            break
                        llm._lock.release()
                await client.send_notification(types.ClientNotification(types.CancelledNotification(
                    params=types.CancelledNotificationParams(requestId=request_id, reason="test"))))
                with anyio.fail_after(60):  # 4096 tokens would take many minutes
                    while not llm._lock.acquire(blocking=False):
                        await anyio.sleep(0.05)
                    llm._lock.release()
            return await client.call_tool("llm_generate", {"prompt": "Say hi.", "max_tokens": 4})

    try:
        r = anyio.run(go)
    finally:
        torch.set_num_threads(threads)
    assert not r.isError, r.content
    assert r.structuredContent["stats"]["generated_tokens"] >= 1
