"""The OpenAI-compatible test double serves any `LLM` through its public API alone: a scripted
backend (only `complete`, no model, tokenizer or lock) answers chat and raw next-token requests
that vltools' own openai: client sends."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
import pytest

from vltools.models.llm import LLM, Completion, TokenLogprob, Usage


class ScriptedLLM(LLM):
    """Continues a raw prompt with " Paris"; answers chat with "Bonjour". Records what it was asked."""

    spec = "scripted"
    capabilities = frozenset({"generate"})

    def __init__(self) -> None:
        self.calls: list[tuple[object, int, int]] = []

    def complete(self, messages, *, max_tokens=256, temperature=0.0, stop=None, top_logprobs=0) -> Completion:
        self.calls.append((messages, max_tokens, top_logprobs))
        top = [(" Paris", -0.1), (" Lyon", -2.5), (" London", -4.0)][: max(top_logprobs, 1)]
        text = " Paris" if isinstance(messages, str) else "Bonjour"
        lps = [TokenLogprob(text, top[0][1], top)] if top_logprobs else None
        return Completion(text=text, usage=Usage(1, 7, 1), finish_reason="length", logprobs=lps)


@pytest.fixture
def served():
    from vltools.testing.openai_server import serve_in_thread

    llm = ScriptedLLM()
    server = serve_in_thread(llm, name="scripted")
    yield llm, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_raw_next_token_and_chat_go_through_complete(served):
    from vltools.core.endpoints import Endpoint
    from vltools.models._llm_openai import OpenAILLM

    llm, url = served
    client = OpenAILLM(Endpoint("scripted", url), "scripted", spec="openai:scripted#scripted")
    lp = client.next_token_logits("The capital of France is", [" Paris", " London", " Rome"])
    assert lp[" Paris"] == pytest.approx(-0.1) and lp[" London"] == pytest.approx(-4.0)
    assert lp[" Rome"] < lp[" London"]  # outside the top list: below the smallest returned logprob
    assert llm.calls[-1][0] == "The capital of France is" and llm.calls[-1][1] == 1  # raw prompt, one token
    c = client.complete([{"role": "user", "content": "Say hello in French"}], max_tokens=5, top_logprobs=2)
    assert c.text == "Bonjour" and c.usage.prompt_tokens == 7 and c.logprobs[0].top[1] == (" Lyon", -2.5)
    r = httpx.post(f"{url}/completions", json={"prompt": "x", "max_tokens": 4})
    assert r.status_code == 400 and "max_tokens=1" in r.json()["error"]["message"]


def test_nothing_in_the_library_imports_the_test_double():
    root = Path(__file__).resolve().parents[2] / "vltools"
    assert not (root / "llm_server.py").exists()
    for py in root.rglob("*.py"):
        if "testing" in py.relative_to(root).parts:
            continue
        for node in ast.walk(ast.parse(py.read_text(encoding="utf-8"))):
            mod = node.module if isinstance(node, ast.ImportFrom) else None
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [mod or ""]
            assert not any(n.startswith("vltools.testing") for n in names), py
