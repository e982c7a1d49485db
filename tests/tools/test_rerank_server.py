"""The OpenAI-compatible test double (`vltools.testing.openai_server`), started on loopback: the
openai: backend generates and reads top logprobs through it, rerank.first / rerank.listwise run
against it, and rerank.icr on an openai: spec fails with `unsupported`. Also its ``python -m`` entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

import vltools
from vltools.core.errors import Unsupported

from ..models.test_llm import FRANCE, use_persistent_model_cache

pytestmark = pytest.mark.heavy

PASSAGES = [
    {"id": "jet", "text": "Jet engines compress air, burn fuel and expel hot gas to produce thrust."},
    {"id": "bread", "text": "Bread dough rises because yeast ferments sugar into carbon dioxide."},
    {"id": "wing", "text": "A wing produces lift from the pressure difference between its surfaces."},
]


@pytest.fixture(scope="module")
def served():
    import torch

    use_persistent_model_cache()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    from vltools.core.settings import reset_settings
    from vltools.models.llm import get_llm
    from vltools.testing.openai_server import serve_in_thread

    local = get_llm("smollm2")
    server = serve_in_thread(local, name="smollm2")
    port = server.server_address[1]
    url = f"http://127.0.0.1:{port}/v1"
    # The operator names the endpoint; calls pick it by name (a raw URL in a call is refused).
    old = os.environ.get("VLTOOLS_LLM_ENDPOINTS")
    os.environ["VLTOOLS_LLM_ENDPOINTS"] = json.dumps({"local": {"base_url": url}})
    reset_settings()
    yield local, "openai:local#smollm2", url
    if old is None:
        os.environ.pop("VLTOOLS_LLM_ENDPOINTS", None)
    else:
        os.environ["VLTOOLS_LLM_ENDPOINTS"] = old
    reset_settings()
    server.shutdown()
    server.server_close()
    torch.set_num_threads(threads)


def test_server_generates_like_the_local_model_and_returns_logprobs(served):
    local, spec, url = served
    from vltools.models.llm import get_llm

    remote = get_llm(spec)
    assert httpx.get(f"{url}/models").json()["data"][0]["id"] == "smollm2"
    c = remote.complete(FRANCE, max_tokens=12, top_logprobs=5)
    assert c.text == local.generate(FRANCE, max_tokens=12) and "Paris" in c.text
    assert c.usage.prompt_tokens > 10 and c.usage.generated_tokens == len(c.logprobs)
    assert all(len(t.top) == 5 and t.top[0][1] >= t.top[-1][1] for t in c.logprobs)
    # next-token log-probabilities through top_logprobs (raw prompt: /v1/completions)
    lp = remote.next_token_logits("The capital of France is", [" Paris", " London"])
    assert lp[" Paris"] > lp[" London"]
    local_logits = local.next_token_logits("The capital of France is", [" Paris", " London"])
    assert max(lp, key=lp.get) == max(local_logits, key=local_logits.get)
    bad = httpx.post(f"{url}/chat/completions", json={"model": "other", "messages": FRANCE})
    assert bad.status_code == 404 and "not served" in bad.json()["error"]["message"]


def test_rerankers_run_against_the_server(served):
    local, spec, _ = served
    query = "how do jet engines make thrust"
    first = vltools.call("rerank.first", {"query": query, "passages": PASSAGES, "llm": spec})
    assert sorted(h.id for h in first.hits) == ["bread", "jet", "wing"] and first.llm == spec
    assert first.stats.forward_passes == 1 and first.stats.generated_tokens <= 1
    first_local = vltools.call("rerank.first", {"query": query, "passages": PASSAGES})
    assert first.hits[0].id == first_local.hits[0].id  # same model, same top identifier
    lw = vltools.call("rerank.listwise", {"query": query, "passages": PASSAGES, "llm": spec, "max_new_tokens": 12})
    assert sorted(h.id for h in lw.hits) == ["bread", "jet", "wing"] and lw.stats.generated_tokens > 0
    with pytest.raises(Unsupported) as exc:
        vltools.call("rerank.icr", {"query": query, "passages": PASSAGES, "llm": spec})
    assert exc.value.code == "unsupported" and "attentions" in exc.value.message and "smollm2" in exc.value.hint


def test_module_entry_point_serves_an_hf_folder(served):
    from vltools.core.settings import get_settings
    from vltools.models._llm_hf import smollm2_dir

    folder = smollm2_dir(get_settings())
    proc = subprocess.Popen(
        [sys.executable, "-m", "vltools.testing.openai_server", "--model", f"hf:{folder}", "--name", "tiny",
         "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},  # one thread: much faster on a busy 2-core machine
    )
    try:
        deadline, line = time.monotonic() + 300, ""
        while "serving" not in line and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stderr.readline()
        assert "serving tiny on http://127.0.0.1:" in line, line
        url = line.split(" on ")[1].split()[0]
        assert httpx.get(f"{url}/models").json()["data"][0]["id"] == "tiny"
        r = httpx.post(
            f"{url}/chat/completions", json={"model": "tiny", "messages": FRANCE, "max_tokens": 8}, timeout=120
        )
        assert "Paris" in r.json()["choices"][0]["message"]["content"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.stdout.read() == ""  # nothing on stdout
