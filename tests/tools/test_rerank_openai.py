"""rerank.first through an ``openai:`` server that returns only its top 20 logprobs (the local test
double in front of the scripted judge): identifiers outside the top list are asked about again and
merged below the ones read, so every passage is ranked; servers without logprobs, or refusing the
request fields, fail with `Unsupported` naming the missing feature."""

from __future__ import annotations

import json

import httpx
import pytest

import vltools
from vltools.core.errors import Unsupported
from vltools.testing.scripted_llm import ScriptedLLM, installed

QUERY = "which passage is the best one"
# Tokens that compete with the identifiers for the server's 20 top-logprob places (as "[", "The", "Sure" do).
DISTRACTORS = {"[": 30.0, "Based": 29.0, "The": 28.0, "Sure": 27.0, "Here": 26.0}


def passages(n: int) -> list[dict[str, str]]:
    """Passage i has grade i; input order worst first, so neither "input order" nor "reversed" is right."""
    return [{"id": f"p{i}", "text": f"a passage about topic{i} only"} for i in range(n)]


def relevance(n: int) -> dict[str, float]:
    return {f"topic{i}": float(i) for i in range(n)}


@pytest.fixture
def serve(monkeypatch):
    """serve(llm) -> the openai: spec of a loopback server in front of ``llm``."""
    from vltools.core.settings import reset_settings
    from vltools.testing.openai_server import serve_in_thread

    servers = []

    def start(llm: ScriptedLLM) -> str:
        server = serve_in_thread(llm, name="judge")
        servers.append(server)
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        monkeypatch.setenv("VLTOOLS_LLM_ENDPOINTS", json.dumps({"stub": {"base_url": url}}))
        reset_settings()
        return "openai:stub#judge"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
    monkeypatch.delenv("VLTOOLS_LLM_ENDPOINTS")
    reset_settings()


def first(spec: str, items: list[dict], **extra):
    return vltools.call("rerank.first", {"query": QUERY, "passages": items, "llm": spec, **extra})


def test_first_ranks_more_identifiers_than_the_server_returns(serve):
    n = 26  # one window of 26 identifiers (A..Z); the server returns 20 logprobs, 5 of them distractors
    judge = ScriptedLLM(relevance(n), distractors=DISTRACTORS)
    out = first(serve(judge), passages(n), window=n)
    assert [h.id for h in out.hits] == [f"p{i}" for i in reversed(range(n))]  # every passage, best first
    scores = [h.score for h in out.hits]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == n  # merged scores stay monotone
    asked = [m for kind, m, _ in judge.calls if kind == "complete"]
    assert len(asked) == 2  # 15 identifiers read in the first call, the 11 others in a second prompt
    second = asked[1][-1]["content"]
    assert "topic10 " in second and "topic11 " not in second and "[K]" in second and "[L]" not in second
    assert any("top 20 logprobs" in note for note in out.notes)
    assert out.stats.forward_passes == 2


def test_first_over_a_server_equals_first_on_the_full_distribution(serve):
    n = 30  # sliding windows 20 / stride 10: the merged server result must equal the local one
    judge = ScriptedLLM(relevance(n), distractors=DISTRACTORS, spec="judge-local")
    remote = first(serve(judge), passages(n))
    with installed(judge):
        local = vltools.call("rerank.first", {"query": QUERY, "passages": passages(n), "llm": "judge-local"})
    assert remote.windows == local.windows == 2
    assert [h.id for h in remote.hits] == [h.id for h in local.hits]
    assert [h.id for h in remote.hits][:3] == ["p29", "p28", "p27"]


def test_a_server_without_logprobs_is_unsupported_and_names_the_feature(serve):
    spec = serve(ScriptedLLM(relevance(3), logprobs=False))
    with pytest.raises(Unsupported) as exc:
        first(spec, passages(3))
    assert "top_logprobs" in exc.value.message and "without top logprobs" in exc.value.message
    assert "vLLM" in exc.value.hint


def test_a_server_refusing_logprobs_is_unsupported_and_names_the_feature():
    from vltools.core.endpoints import Endpoint
    from vltools.models._llm_openai import OpenAILLM

    def refuse(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body.get("logprobs"):
            return httpx.Response(400, json={"error": {"message": "logprobs are not supported"}})
        return httpx.Response(200, json={"choices": [{"message": {"content": "A"}}]})

    llm = OpenAILLM(Endpoint("refuser", "http://127.0.0.1:9/v1"), "m", spec="openai:refuser#m")
    llm._client = httpx.Client(base_url="http://127.0.0.1:9/v1", transport=httpx.MockTransport(refuse))
    with pytest.raises(Unsupported) as exc:
        llm.next_token([{"role": "user", "content": "rank"}], ["A", "B"])
    assert "'logprobs' with 'top_logprobs'" in exc.value.message and "HTTP 400" in exc.value.message
    assert llm.generate([{"role": "user", "content": "rank"}]) == "A"  # plain generation still works
