"""Request forgery: openai: endpoints come from the operator's named list, refusal happens before any
connection (a loopback listener records every connection), keys go only to their own endpoint, and
error messages never quote a response body. Only 127.0.0.1 is ever contacted."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import vltools
from vltools.core.endpoints import resolve_endpoint
from vltools.core.errors import BackendUnavailable, InvalidInput
from vltools.core.settings import LLMEndpoint, Settings, reset_settings

SECRET_PAGE = "internal-admin-page token=s3cr3t-body-content"


class _Recorder(BaseHTTPRequestHandler):
    """Answers every POST with ``status`` and a body that must never reach an error message."""

    status = 500
    body = SECRET_PAGE

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        self.server.requests.append({"path": self.path, "auth": self.headers.get("Authorization")})  # type: ignore[attr-defined]
        data = self.body.encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


class _CountingServer(ThreadingHTTPServer):
    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        super().__init__(("127.0.0.1", 0), handler)
        self.connections = 0
        self.requests: list[dict] = []

    def verify_request(self, request, client_address) -> bool:
        self.connections += 1
        return True


@contextmanager
def listener(status: int = 500, body: str = SECRET_PAGE) -> Iterator[_CountingServer]:
    handler = type("H", (_Recorder,), {"status": status, "body": body})
    server = _CountingServer(handler)
    th = threading.Thread(target=server.serve_forever, daemon=True)
    th.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def endpoints(monkeypatch):
    """Configure VLTOOLS_LLM_ENDPOINTS for one test (settings re-read)."""

    def configure(mapping: dict | None, *, allow_any: bool = False) -> None:
        if mapping is None:
            monkeypatch.delenv("VLTOOLS_LLM_ENDPOINTS", raising=False)
        else:
            monkeypatch.setenv("VLTOOLS_LLM_ENDPOINTS", json.dumps(mapping))
        monkeypatch.setenv("VLTOOLS_ALLOW_ANY_ENDPOINT", "true" if allow_any else "false")
        reset_settings()

    yield configure
    monkeypatch.delenv("VLTOOLS_LLM_ENDPOINTS", raising=False)
    monkeypatch.delenv("VLTOOLS_ALLOW_ANY_ENDPOINT", raising=False)
    reset_settings()


def _url(server: _CountingServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/v1"


LLM_TOOLS_INPUT = [
    ("llm.generate", {"prompt": "x"}),
    ("rerank.first", {"query": "q", "passages": [{"id": "a", "text": "t"}, {"id": "b", "text": "u"}]}),
    ("rerank.listwise", {"query": "q", "passages": [{"id": "a", "text": "t"}, {"id": "b", "text": "u"}]}),
]


@pytest.mark.parametrize(("tool", "inp"), LLM_TOOLS_INPUT)
def test_unlisted_url_is_refused_before_any_connection(endpoints, tool, inp, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak")
    endpoints({"other": {"base_url": "http://127.0.0.1:1/v1", "api_key_env": "OPENAI_API_KEY"}})
    with listener() as server:
        spec = f"openai:{_url(server)}#m"
        with pytest.raises(InvalidInput) as exc:
            vltools.call(tool, {**inp, "llm": spec})
        assert server.connections == 0 and server.requests == []
    assert "configured" in exc.value.message and "VLTOOLS_LLM_ENDPOINTS" in exc.value.hint
    assert "sk-must-not-leak" not in exc.value.render()


def test_unknown_endpoint_name_is_refused(endpoints):
    endpoints({"local": {"base_url": "http://127.0.0.1:1/v1"}})
    with pytest.raises(InvalidInput, match="no LLM endpoint named 'metadata'") as exc:
        vltools.call("llm.generate", {"prompt": "x", "llm": "openai:metadata#m"})
    assert "local" in exc.value.hint


def test_named_endpoint_gets_its_own_key_and_errors_do_not_echo_the_body(endpoints, monkeypatch):
    monkeypatch.setenv("LOCAL_KEY", "sk-local")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-global")
    with listener(status=500) as server:
        endpoints({"local": {"base_url": _url(server), "api_key_env": "LOCAL_KEY"}})
        with pytest.raises(BackendUnavailable) as exc:
            vltools.call("llm.generate", {"prompt": "x", "llm": "openai:local#m"})
        assert server.requests and server.requests[0]["auth"] == "Bearer sk-local"
        assert server.requests[0]["path"] == "/v1/chat/completions"
    text = exc.value.render()
    assert "500" in text and "Internal Server Error" in text
    assert "s3cr3t" not in text and "internal-admin" not in text


@pytest.mark.parametrize("status", [200, 302, 404])
def test_non_json_redirect_and_errors_never_quote_the_body(endpoints, status):
    with listener(status=status) as server:
        endpoints({"local": {"base_url": _url(server)}})
        with pytest.raises(BackendUnavailable) as exc:
            vltools.call("llm.generate", {"prompt": "x", "llm": "openai:local#m"})
        assert len(server.requests) == 1  # a 302 is not followed
    assert "s3cr3t" not in exc.value.render()


def test_configured_url_spelled_out_is_the_named_endpoint(endpoints, monkeypatch):
    monkeypatch.setenv("LOCAL_KEY", "sk-local")
    with listener() as server:
        endpoints({"local": {"base_url": _url(server) + "/", "api_key_env": "LOCAL_KEY"}})
        with pytest.raises(BackendUnavailable):
            vltools.call("llm.generate", {"prompt": "x", "llm": f"openai:{_url(server)}#m"})
        assert server.requests[0]["auth"] == "Bearer sk-local"


def test_opt_in_allows_any_url_but_never_sends_a_key(endpoints, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-global")
    monkeypatch.setenv("LOCAL_KEY", "sk-local")
    with listener() as server:
        endpoints({"local": {"base_url": "http://127.0.0.1:1/v1", "api_key_env": "LOCAL_KEY"}}, allow_any=True)
        with pytest.raises(BackendUnavailable):
            vltools.call("llm.generate", {"prompt": "x", "llm": f"openai:{_url(server)}#m"})
        assert server.requests and server.requests[0]["auth"] is None


@pytest.mark.parametrize(
    "target", ["http://user:pw@127.0.0.1:1/v1", "http://127.0.0.1:1/v1 x", "ftp://127.0.0.1/x", "http://"]
)
def test_opt_in_still_refuses_malformed_urls(target):
    s = Settings(allow_any_endpoint=True)
    with pytest.raises(InvalidInput):
        resolve_endpoint(target, s)


def test_endpoint_repr_hides_the_key(monkeypatch):
    monkeypatch.setenv("K", "sk-hidden")
    s = Settings(llm_endpoints={"a": LLMEndpoint(base_url="http://127.0.0.1:1/v1", api_key_env="K")})
    ep = resolve_endpoint("a", s)
    assert ep.api_key == "sk-hidden" and "sk-hidden" not in repr(ep)


def test_agent_chat_model_spec_is_refused_before_connecting(endpoints):
    from vltools.agents.loop import chat_model_from_spec

    endpoints(None)
    with pytest.raises(InvalidInput, match="configured"):
        chat_model_from_spec("openai:http://127.0.0.1:9/v1#m")


def test_cli_repro_exits_2_before_connecting(tmp_path):
    """The issue's repro, in a subprocess: port 9 on loopback is never contacted."""
    # Hold port 9's stand-in: a listener we own, and name it in the spec; nothing must connect.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    sock.setblocking(False)
    port = sock.getsockname()[1]
    env = {"PATH": "/usr/bin:/bin", "VLTOOLS_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1",
           "OPENAI_API_KEY": "sk-must-not-leak", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    try:
        for p in (9, port):
            spec = f"openai:http://127.0.0.1:{p}/x#m"
            proc = subprocess.run(
                [sys.executable, "-m", "vltools.cli", "call", "llm.generate", "--json",
                 json.dumps({"prompt": "x", "llm": spec})],
                capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
            )
            assert proc.returncode == 2, proc.stderr
            assert proc.stdout == "" and "invalid_input" in proc.stderr and "configured" in proc.stderr
            assert "sk-must-not-leak" not in proc.stderr
        with pytest.raises(BlockingIOError):
            sock.accept()  # no connection was ever made
    finally:
        sock.close()
