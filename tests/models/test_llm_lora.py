"""hf:ADAPTER loads a PEFT LoRA adapter over its base model (as Rank-R1's checkpoints are published):
a tiny random Llama and a tiny LoRA, both saved locally."""

from __future__ import annotations

import json

import pytest

import vltools
from vltools.core.errors import BackendUnavailable


@pytest.fixture(scope="module")
def tiny_lora(tmp_path_factory):
    import torch
    from peft import LoraConfig, get_peft_model
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("lora")
    vocab = {t: i for i, t in enumerate(["<unk>", "<s>", "</s>", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ[]>", "jet", "wing"])}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Split(pattern=r"\s+|(?=[\[\]>])|(?<=[\[\]>])", behavior="removed")
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256)
    base = LlamaForCausalLM(cfg)
    base.save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    config = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    lora = get_peft_model(base, config)
    lora.save_pretrained(root / "adapter")
    cfg_path = root / "adapter" / "adapter_config.json"
    cfg_json = json.loads(cfg_path.read_text())
    cfg_json["base_model_name_or_path"] = str(root / "base")
    cfg_path.write_text(json.dumps(cfg_json))
    return root


def test_adapter_folder_loads_base_plus_lora_and_changes_the_model(tiny_lora):
    import torch

    from vltools.models.llm import get_llm

    base = get_llm(f"hf:{tiny_lora / 'base'}")
    tuned = get_llm(f"hf:{tiny_lora / 'adapter'}")
    ids = torch.tensor([[3, 4, 5, 6]])
    with torch.no_grad():
        a, b = base.model(input_ids=ids).logits, tuned.model(input_ids=ids).logits
    assert not torch.allclose(a, b)  # the adapter's (non-zero) LoRA weights were merged in
    assert tuned.tok.convert_tokens_to_ids("jet") == 32  # the tokenizer came with the base
    spec = f"hf:{tiny_lora / 'adapter'}"
    passages = [{"id": "a", "text": "jet"}, {"id": "b", "text": "wing"}]
    out = vltools.call("rerank.icr", {"query": "jet", "passages": passages, "llm": spec})
    assert out.llm == spec and sorted(h.id for h in out.hits) == ["a", "b"] and out.stats.forward_passes == 3


def test_adapter_without_peft_or_base_is_a_clear_error(tiny_lora, tmp_path, monkeypatch):
    import sys

    from vltools.models.llm import get_llm

    bad = tmp_path / "adapter"
    bad.mkdir()
    (bad / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tmp_path / "missing")}))
    with pytest.raises(BackendUnavailable):
        get_llm(f"hf:{bad}")
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(BackendUnavailable, match="peft"):
        from vltools.models._llm_hf import with_lora

        with_lora(object(), tiny_lora / "adapter")
