"""LLM backends: specs, the bundled SmolLM2 (generate, next-token logits, attentions, token
counting), its dequantised cache read back as hf:PATH, and capability errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vltools.core.errors import BackendUnavailable, InvalidInput, NotFound, Unsupported

FRANCE = [{"role": "user", "content": "What is the capital of France? Answer in one short sentence."}]


def use_persistent_model_cache() -> None:
    """Keep the dequantised SmolLM2 across test sessions (VLTOOLS_HOME is a fresh temp dir per session)."""
    os.environ.setdefault("VLTOOLS_MODEL_CACHE", str(Path.home() / ".cache" / "vltools" / "test-models"))


@pytest.fixture(scope="module")
def llm():
    import torch

    use_persistent_model_cache()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a busy 2-core machine one thread is far faster than two
    from vltools.models.llm import get_llm

    yield get_llm("smollm2")
    torch.set_num_threads(threads)


def test_spec_parsing_and_unknown_specs():
    from vltools.models.llm import get_llm, parse_spec

    assert parse_spec("smollm2") == ("smollm2", "", "")
    assert parse_spec("hf:/models/x") == ("hf", "/models/x", "")
    assert parse_spec("openai:http://127.0.0.1:8000/v1/#m") == ("openai", "http://127.0.0.1:8000/v1", "m")
    assert parse_spec("openai:local#m") == ("openai", "local", "m")
    for bad in ("gpt-4", "openai:http://x/v1", "hf:", "openai:a b#m"):
        with pytest.raises(InvalidInput) as exc:
            get_llm(bad)
        assert "openai:ENDPOINT#MODEL" in exc.value.render() or "openai:local" in exc.value.render()
    with pytest.raises(InvalidInput, match="no LLM endpoint named '127.0.0.1'"):
        get_llm("openai:127.0.0.1#m")


def test_openai_backend_lacks_attentions_and_reports_unreachable_server(monkeypatch):
    from vltools.core.settings import reset_settings
    from vltools.models.llm import get_llm

    monkeypatch.setenv("VLTOOLS_LLM_ENDPOINTS", '{"dead": {"base_url": "http://127.0.0.1:9/v1"}}')
    reset_settings()
    try:
        remote = get_llm("openai:dead#nothing")
        assert remote.capabilities == {"generate", "next_token_logits"}
        with pytest.raises(Unsupported) as exc:
            remote.attentions(["a", "b"], source=1)
        assert "smollm2" in exc.value.hint and "hf:" in exc.value.hint
        with pytest.raises(BackendUnavailable):
            remote.generate(FRANCE, max_tokens=4)
    finally:
        monkeypatch.delenv("VLTOOLS_LLM_ENDPOINTS")
        reset_settings()


@pytest.mark.heavy
def test_smollm2_generates_and_counts(llm):
    assert llm.capabilities == {"generate", "next_token_logits", "attentions"}
    c = llm.complete(FRANCE, max_tokens=16)
    assert "Paris" in c.text
    assert c.usage.prompt_tokens > 10 and 1 <= c.usage.generated_tokens <= 16
    assert c.usage.forward_passes == c.usage.generated_tokens
    stopped = llm.generate(FRANCE, max_tokens=16, stop=["Paris"])
    assert "Paris" not in stopped
    text = "the boundary layer on a flat plate in supersonic flow " * 20
    n = llm.count_tokens(text)
    cut, truncated = llm.truncate(text, 10)
    assert n > 100 and truncated and llm.count_tokens(cut) <= 11
    assert llm.truncate("short text", 10) == ("short text", False)


@pytest.mark.heavy
def test_next_token_logits_prefer_the_right_continuation(llm):
    logits = llm.next_token_logits("The capital of France is", [" Paris", " London", " Tokyo"])
    assert max(logits, key=logits.get) == " Paris"
    with pytest.raises(InvalidInput, match="single token"):
        llm.next_token_logits("The capital of France is", [" Parisian capital"])


@pytest.mark.heavy
def test_attention_mass_is_a_distribution_over_earlier_segments(llm):
    segs = ["Paragraphs:\n", "[1] Paris is the capital of France.\n", "[2] Bananas are yellow.\n", "Query: ", "France"]
    res = llm.attentions(segs, source=4)
    layers, heads = llm.model.config.num_hidden_layers, llm.model.config.num_attention_heads
    assert res.mass.shape == (layers, heads, 5)
    # causal softmax: the query's attention over all segments sums to 1 for every layer and head
    assert abs(res.mass.sum(axis=-1) - 1).max() < 1e-3
    assert res.spans[0][0] == 0 and res.spans[-1][1] == res.usage.prompt_tokens
    assert res.usage.forward_passes == 1
    assert llm.model.config._attn_implementation == "sdpa"  # eager only for the attention pass


@pytest.mark.heavy
def test_dequantised_cache_loads_as_hf_path(llm):
    from vltools.core.settings import get_settings
    from vltools.models._llm_hf import smollm2_dir
    from vltools.models.llm import get_llm

    folder = smollm2_dir(get_settings())
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    assert (folder / "model.safetensors").exists()
    assert not list(folder.parent.glob(".tmp-smollm2-*"))  # no temp folder left behind
    other = get_llm(f"hf:{folder}")
    assert other is not llm and other.capabilities == llm.capabilities
    assert other.generate(FRANCE, max_tokens=12) == llm.generate(FRANCE, max_tokens=12)
    with pytest.raises(NotFound):
        get_llm(f"hf:{get_settings().home}/nonexistent-model-folder")
