"""A test double: a small OpenAI-compatible HTTP server in front of a local vltools LLM backend.

    python -m vltools.testing.openai_server --model smollm2 --port 8000
    # then: VLTOOLS_LLM_ENDPOINTS='{"local": {"base_url": "http://127.0.0.1:8000/v1"}}' and openai:local#smollm2

It exists to test the ``openai:`` spec (and any OpenAI client) offline; for real serving use vLLM,
llama.cpp's server or Ollama. It uses only the public `vltools.models.llm.LLM` API:
``complete`` (text, usage, per-token top logprobs), so it fronts any backend with the
``generate`` capability.

Endpoints: ``GET /v1/models``, ``POST /v1/chat/completions`` (``max_tokens``, ``temperature``,
``stop``, ``logprobs`` + ``top_logprobs``), ``POST /v1/completions`` (``max_tokens`` = 1 with
``logprobs`` = N gives next-token top logprobs of a raw prompt; longer raw completions are not
served). Chat messages may carry OpenAI content parts: ``text`` parts are joined, and each
``image_url`` part holding a ``data:image/...;base64`` URL is decoded and shown to the (text-only)
backend as one line, ``[image N: W x H px, mean RGB (r, g, b)]``, so a vision client (the ``vlm``
option of `vqa.zero_shot` / `t2v.etva`) can be tested end to end; other image URLs are refused
(this server fetches nothing). The backend serialises its own calls. It binds to loopback by default and has no
authentication: do not expose it. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from vltools.core.errors import ToolError
from vltools.models.llm import LLM, Completion

log = logging.getLogger("vltools.testing.openai_server")
MAX_BODY = 8 * 1024 * 1024


def _handler(llm: LLM, name: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:  # stderr via logging, never stdout
            log.info("%s " + fmt, self.address_string(), *args)

        def _send(self, status: int, obj: dict[str, Any]) -> None:
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
            self._send(status, {"error": {"message": message, "type": kind}})

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._send(200, {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "vltools"}]})
            else:
                self._error(404, f"no route {self.path}")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._error(413, f"request body over {MAX_BODY} bytes")
                return
            try:
                req = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(req, dict):
                    raise ValueError("body must be a JSON object")
            except ValueError as err:
                self._error(400, f"bad JSON: {err}")
                return
            if req.get("model") not in (None, name):
                self._error(404, f"model {req.get('model')!r} not served (this server serves {name!r})")
                return
            route = self.path.rstrip("/").removeprefix("/v1")
            try:
                if route == "/chat/completions":
                    self._send(200, chat(llm, name, req))
                elif route == "/completions":
                    self._send(200, completions(llm, name, req))
                else:
                    self._error(404, f"no route {self.path}")
            except ToolError as err:
                self._error(400, err.render())
            except (KeyError, TypeError, ValueError) as err:
                self._error(400, f"bad request: {err}")

    return Handler


def _clean(x: float) -> float:
    return x if math.isfinite(x) else -1e9


def _content_text(content: Any) -> str:
    """A message's content as text: a string as is; content parts joined, images described."""
    if not isinstance(content, list):
        return str(content or "")
    out, n_img = [], 0
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            out.append(str(part.get("text") or ""))
        elif kind == "image_url":
            n_img += 1
            url = part.get("image_url", {}).get("url", "") if isinstance(part.get("image_url"), dict) else ""
            out.append(_describe_image(str(url), n_img))
        else:
            raise ValueError(f"unsupported content part type {kind!r}")
    return "\n".join(out)


def _describe_image(url: str, n: int) -> str:
    import base64
    import binascii
    import io

    from PIL import Image, UnidentifiedImageError

    head, _, data = url.partition(",")
    if not (head.startswith("data:image/") and head.endswith(";base64")):
        raise ValueError("image_url must be a data:image/...;base64 URL (this server fetches nothing)")
    try:
        im = Image.open(io.BytesIO(base64.b64decode(data, validate=True))).convert("RGB")
    except (binascii.Error, UnidentifiedImageError, OSError) as err:
        raise ValueError(f"image {n} is not a decodable image: {err}") from None
    small = im.resize((1, 1), Image.BOX).getpixel((0, 0))
    return f"[image {n}: {im.width} x {im.height} px, mean RGB ({small[0]}, {small[1]}, {small[2]})]"


def chat(llm: LLM, name: str, req: dict[str, Any]) -> dict[str, Any]:
    """``/v1/chat/completions`` through `LLM.complete`."""
    messages = [{"role": str(m["role"]), "content": _content_text(m.get("content"))} for m in req["messages"]]
    stop = req.get("stop")
    stop = [stop] if isinstance(stop, str) else stop
    k = int(req.get("top_logprobs") or (1 if req.get("logprobs") else 0)) if req.get("logprobs") else 0
    c = llm.complete(
        messages,
        max_tokens=int(req.get("max_tokens") or req.get("max_completion_tokens") or 256),
        temperature=float(req.get("temperature") or 0.0),
        stop=stop,
        top_logprobs=min(max(k, 0), 20),
    )
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": c.text},
        "finish_reason": c.finish_reason,
        "logprobs": None,
    }
    if c.logprobs is not None:
        choice["logprobs"] = {
            "content": [
                {
                    "token": t.token,
                    "logprob": _clean(t.logprob),
                    "top_logprobs": [{"token": s, "logprob": _clean(v)} for s, v in t.top],
                }
                for t in c.logprobs
            ]
        }
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": name,
        "choices": [choice],
        "usage": _usage(c.usage),
    }


def completions(llm: LLM, name: str, req: dict[str, Any]) -> dict[str, Any]:
    """Raw-prompt completion: only one-token requests (what next-token scoring needs).

    `LLM.complete` continues a raw prompt string as is (no chat template); its one generated
    token's top logprobs are the next-token distribution's top ``logprobs`` entries.
    """
    if int(req.get("max_tokens") or 16) != 1:
        raise ValueError("this server serves /v1/completions only with max_tokens=1; use /v1/chat/completions")
    prompt = req["prompt"]
    if not isinstance(prompt, str):
        raise ValueError("prompt must be one string")
    k = min(max(int(req.get("logprobs") or 0), 1), 20)
    c: Completion = llm.complete(prompt, max_tokens=1, temperature=0.0, top_logprobs=k)
    first = c.logprobs[0] if c.logprobs else None
    text = first.token if first is not None else c.text
    lp = None
    if req.get("logprobs") and first is not None:
        top = {tok: _clean(v) for tok, v in first.top}
        lp = {"tokens": [text], "token_logprobs": [_clean(first.logprob)], "top_logprobs": [top], "text_offset": [0]}
    return {
        "id": f"cmpl-{uuid.uuid4().hex[:12]}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": name,
        "choices": [{"index": 0, "text": text, "logprobs": lp, "finish_reason": "length"}],
        "usage": _usage(c.usage),
    }


def _usage(u: Any) -> dict[str, int]:
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.generated_tokens,
        "total_tokens": u.prompt_tokens + u.generated_tokens,
    }


def make_server(llm: LLM, *, name: str, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server (not yet serving) for ``llm`` under model name ``name``; port 0 picks a free port."""
    server = ThreadingHTTPServer((host, port), _handler(llm, name))
    server.daemon_threads = True
    return server


def serve_in_thread(llm: LLM, *, name: str, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Start serving in a daemon thread; returns the server (``server.server_address`` has the port)."""
    server = make_server(llm, name=name, host=host, port=port)
    threading.Thread(target=server.serve_forever, name="vltools-openai-test-server", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vltools.testing.openai_server", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2", help="backend spec: smollm2 or hf:NAME_OR_PATH")
    p.add_argument("--name", default=None, help="model name clients use (default: the spec)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    from vltools.models.llm import get_llm

    if args.model.startswith("openai:"):
        sys.stderr.write("error: serve a local backend (smollm2 or hf:PATH), not another server\n")
        return 2
    try:
        llm = get_llm(args.model)
    except ToolError as err:
        sys.stderr.write(err.render() + "\n")
        return 2
    name = args.name or args.model
    server = make_server(llm, name=name, host=args.host, port=args.port)
    host, port = server.server_address[:2]
    sys.stderr.write(
        f"serving {name} on http://{host}:{port}/v1 (name it in VLTOOLS_LLM_ENDPOINTS, then use openai:NAME#{name})\n"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
