"""A scripted OpenAI-compatible chat server on 127.0.0.1 (for the tool-calling loop's tests).

Each POST to ``/v1/chat/completions`` gets the next scripted reply: a list of tool calls
``[(name, args), ...]`` or a final text. Every request body is recorded, so a test can check
what the loop sent back to the model (e.g. the guard's refusal).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StubChatServer:
    def __init__(self, script: list[list[tuple[str, dict[str, Any]]] | str]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                stub.requests.append(body)
                if not self.path.endswith("/chat/completions"):
                    self.send_error(404)
                    return
                reply = stub.script.pop(0) if stub.script else "done"
                n = len(stub.requests)
                if isinstance(reply, str):
                    message: dict[str, Any] = {"role": "assistant", "content": reply}
                    finish = "stop"
                else:
                    message = {"role": "assistant", "content": None, "tool_calls": [
                        {"id": f"call_{n}_{i}", "type": "function",
                         "function": {"name": name, "arguments": json.dumps(args)}}
                        for i, (name, args) in enumerate(reply)]}
                    finish = "tool_calls"
                data = json.dumps({"id": f"chatcmpl-{n}", "object": "chat.completion", "created": 0,
                                   "model": body.get("model", "stub"),
                                   "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                                   "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> StubChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def tool_messages(self, k: int) -> list[dict[str, Any]]:
        """The tool-result messages in the ``k``-th request the loop sent."""
        return [m for m in self.requests[k]["messages"] if m.get("role") == "tool"]
