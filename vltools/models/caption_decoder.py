"""A small caption decoder trained on text only (P01 MacCap; P40 guidance), for `caption.zero_shot`.

MacCap trains a decoder to reconstruct captions from their CLIP *text* embeddings, with Gaussian
noise injected so that at test time an *image* embedding (which sits a modality gap away from its
caption's text embedding) still decodes. This module holds the model: a one-layer GRU language
model conditioned on a (noisy) embedding through its initial state and at every input step, with
a learned "null" condition (the condition is dropped for a share of the training captions) so
that classifier-free guidance between conditioned and unconditioned logits can steer decoding
towards more specific captions (P40). Word-level vocabulary of the training corpus.

The weights file also carries a **caption memory** (int8 text embeddings of training captions): at
test time an image embedding is first projected onto it (DeCap: the softmax(cos / T) mix of the
memory's embeddings), which lands it among the text embeddings the decoder was trained on instead
of a modality gap away; the training noise is then calibrated to what remains of the gap.

The weights of the `demo` CLIP's decoder are committed (``weights/caption_decoder_demo.safetensors``,
trained by ``scripts/train_caption_decoder.py``); for another CLIP the same script takes the model
spec and a caption corpus and writes a file that `caption.zero_shot` reads with ``decoder: PATH``.
"""

from __future__ import annotations

import json
import re
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIALS = [PAD, BOS, EOS, UNK]
DEFAULT_FILES = {"demo": "caption_decoder_demo.safetensors"}
_TOKEN = re.compile(r"[a-z0-9'\-]+|[,;:.]")

_LOCK = threading.Lock()
_LOADED: dict[str, Any] = {}


def tokenize(text: str) -> list[str]:
    """Lower-cased words and punctuation marks."""
    return _TOKEN.findall(text.lower())


def detokenize(words: list[str]) -> str:
    text = " ".join(words)
    return re.sub(r" ([,;:.])", r"\1", text)


def default_path(clip_spec: str) -> Path | None:
    """The committed decoder for ``clip_spec`` (None when there is none)."""
    name = DEFAULT_FILES.get(clip_spec)
    if name is None:
        return None
    p = Path(str(resources.files("vltools.models") / "weights" / name))
    return p if p.is_file() else None


def project(feat: np.ndarray, memory: np.ndarray, temperature: float) -> np.ndarray:
    """DeCap's projection of an image embedding onto the text-embedding manifold: the softmax(cos / T)
    weighted mix of the caption memory's text embeddings, renormalised. It lands where the decoder
    was trained (text embeddings) instead of a modality gap away from them."""
    v = np.asarray(feat, dtype=np.float32)
    s = memory @ (v / max(float(np.linalg.norm(v)), 1e-9))
    w = np.exp((s - s.max()) / temperature)
    p = (w / w.sum()) @ memory
    return (p / max(float(np.linalg.norm(p)), 1e-9)).astype(np.float32)


def quantize_memory(vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit text embeddings as int8 rows with a per-row scale (a quarter of fp32's size; cosines move
    by < 0.01)."""
    v = np.asarray(vecs, dtype=np.float32)
    scale = np.maximum(np.abs(v).max(1), 1e-9) / 127.0
    return np.round(v / scale[:, None]).astype(np.int8), scale.astype(np.float32)


def build(vocab_size: int, dim_in: int, emb: int = 128, hidden: int = 256) -> Any:
    """The decoder module (torch)."""
    import torch
    from torch import nn

    class CaptionDecoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab_size, emb)
            self.null = nn.Parameter(torch.zeros(dim_in))
            self.init = nn.Sequential(nn.Linear(dim_in, hidden), nn.Tanh())
            self.step_cond = nn.Linear(dim_in, emb)
            self.gru = nn.GRU(2 * emb, hidden, batch_first=True)
            self.out = nn.Linear(hidden, vocab_size)

        def condition(self, cond: Any, drop: Any | None = None) -> Any:
            """Rows of ``cond`` with the dropped ones replaced by the null condition."""
            if drop is None:
                return cond
            return torch.where(drop[:, None], self.null[None].expand_as(cond), cond)

        def start(self, cond: Any) -> Any:
            return self.init(cond)[None].contiguous()

        def step(self, tokens: Any, cond: Any, h: Any) -> tuple[Any, Any]:
            """Logits (B, T, V) for ``tokens`` (B, T) given the condition (B, D) and state h."""
            x = torch.cat([self.embed(tokens), self.step_cond(cond)[:, None].expand(-1, tokens.shape[1], -1)], -1)
            y, h = self.gru(x, h)
            return self.out(y), h

        def forward(self, cond: Any, tokens: Any) -> Any:
            logits, _ = self.step(tokens, cond, self.start(cond))
            return logits

    return CaptionDecoder()


class Decoder:
    """A loaded decoder: vocabulary, module and the metadata it was trained with."""

    def __init__(self, path: Path, module: Any, vocab: list[str], meta: dict[str, Any]) -> None:
        self.path = path
        self.module = module
        self.vocab = vocab
        self.index = {w: i for i, w in enumerate(vocab)}
        self.meta = meta
        self.dim = int(meta["dim_in"])
        self.gap = np.zeros(self.dim, dtype=np.float32)
        self.memory: np.ndarray | None = None  # (N, dim) unit caption embeddings for the projection
        self.temperature = float(meta.get("temperature", 0.01))

    def project(self, feat: np.ndarray, temperature: float | None = None) -> np.ndarray:
        """The image feature projected onto the decoder's caption memory (DeCap)."""
        if self.memory is None:
            raise ValueError("this decoder file carries no caption memory")
        return project(feat, self.memory, self.temperature if temperature is None else temperature)

    def image_condition(self, feat: np.ndarray) -> np.ndarray:
        """An image embedding moved across the modality gap (the training corpus's mean offset)."""
        v = np.asarray(feat, dtype=np.float32) + self.gap
        return v / max(float(np.linalg.norm(v)), 1e-9)

    def decode(
        self, cond: np.ndarray, *, beams: int = 5, max_len: int = 24, guidance: float = 0.0, n_best: int = 5
    ) -> list[tuple[str, float]]:
        """Beam search from one condition vector (dim,): up to ``n_best`` (caption, mean log-prob).

        With ``guidance`` w > 0 the step scores are log p(w|c) + w * (log p(w|c) - log p(w|null)),
        classifier-free guidance towards what the condition makes likelier than the prior (P40).
        """
        import torch

        m = self.module
        bos, eos = self.index[BOS], self.index[EOS]
        banned = [self.index[PAD], self.index[UNK], bos]
        with torch.inference_mode():
            c = torch.from_numpy(np.asarray(cond, dtype=np.float32))[None]
            c = torch.nn.functional.normalize(c, dim=-1)
            null = m.null[None]
            conds = torch.cat([c, null]) if guidance > 0 else c
            h = m.start(conds)  # (1, 1 or 2, H)
            beams_list: list[tuple[list[int], float, Any]] = [([bos], 0.0, h)]
            done: list[tuple[list[int], float]] = []
            for _ in range(max_len):
                cand: list[tuple[list[int], float, Any]] = []
                toks = torch.tensor([[b[0][-1]] for b in beams_list])
                hs = torch.cat([b[2] for b in beams_list], 1)  # (1, B*k, H)
                k = conds.shape[0]
                toks_k = toks.repeat_interleave(k, 0)
                conds_k = conds.repeat(len(beams_list), 1)
                logits, h_new = m.step(toks_k, conds_k, hs)
                logp = torch.log_softmax(logits[:, -1].float(), -1).view(len(beams_list), k, -1)
                base = logp[:, 0]
                score = base + guidance * (base - logp[:, 1]) if guidance > 0 else base
                score[:, banned] = -1e9
                top = torch.topk(score, beams, dim=-1)
                for bi, (seq, s, _) in enumerate(beams_list):
                    hb = h_new[:, bi * k:(bi + 1) * k]
                    for v, t in zip(top.values[bi].tolist(), top.indices[bi].tolist(), strict=True):
                        lp = float(base[bi, t])  # the caption's own log-likelihood
                        step_score = s + (v if guidance > 0 else lp)
                        if t == eos:
                            if len(seq) > 1:
                                done.append((seq[1:], step_score / len(seq)))
                        else:
                            cand.append((seq + [t], step_score, hb))
                cand.sort(key=lambda x: -x[1] / len(x[0]))
                beams_list = cand[:beams]
                if not beams_list or len(done) >= 4 * n_best:
                    break
        if not done:  # no beam ended within max_len: keep the unfinished ones
            done = [(seq[1:], s / len(seq)) for seq, s, _ in beams_list if len(seq) > 1]
        done.sort(key=lambda x: -x[1])
        out: list[tuple[str, float]] = []
        seen: set[str] = set()
        for seq, s in done:
            text = detokenize([self.vocab[t] for t in seq])
            if text not in seen:
                seen.add(text)
                out.append((text, float(s)))
            if len(out) >= n_best:
                break
        return out


def load(path: str | Path) -> Decoder:
    """Load (once per process) a decoder written by ``scripts/train_caption_decoder.py``."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    key = str(Path(path).resolve())
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
        with safe_open(key, "pt") as fh:
            meta = dict(fh.metadata() or {})
        vocab = json.loads(meta["vocab"])
        module = build(len(vocab), int(meta["dim_in"]), int(meta.get("emb", 128)), int(meta.get("hidden", 256)))
        state = {k: v.float() for k, v in load_file(key).items()}
        gap = state.pop("gap", None)
        mem, mem_scale = state.pop("memory", None), state.pop("memory_scale", None)
        module.load_state_dict(state)
        module.eval()
        dec = Decoder(Path(key), module, vocab, meta)
        dec.gap = gap.numpy() if gap is not None else np.zeros(dec.dim, dtype=np.float32)
        if mem is not None and mem_scale is not None:
            m = mem.numpy().astype(np.float32) * mem_scale.numpy()[:, None]
            dec.memory = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-9)
        _LOADED[key] = dec
        return dec
