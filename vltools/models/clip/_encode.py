"""`ClipBackend`: one loaded CLIP encoding images and texts in batches into a shared, L2-normalised space.

Batch loops report progress and, between batches, ask ``should_stop`` whether the call was
cancelled or ran out of time: a stopped encode raises `Timeout` instead of finishing the work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from vltools.core.cancel import current_should_stop
from vltools.core.errors import BackendUnavailable, InvalidInput, Timeout
from vltools.models.clip import _longtext as lt
from vltools.models.clip._longtext import LongText

Progress = Callable[[float, float | None, str], None] | None
ShouldStop = Callable[[], bool] | None


def _check_stop(should_stop: ShouldStop, spec: str, done: int, total: int) -> None:
    should_stop = current_should_stop(should_stop)  # none given: the running tool call's
    if should_stop is not None and should_stop():
        raise Timeout(
            f"CLIP encoding with {spec} stopped after {done} of {total} items: the call was cancelled "
            "or ran past its time limit",
            hint="raise the time limit or pass fewer items",
        )


class ClipBackend:
    """One loaded CLIP: batch image and text encoding into a shared, L2-normalised space.

    Attributes:
        spec: the spec it was loaded from. dim: embedding size. image_size: input side in pixels.
        context_length: the text tower's training context in tokens. logit_scale: exp of the
        learned temperature (multiply cosine similarities by it before a softmax).
        logit_bias: SigLIP-style bias, or None.
    """

    def __init__(self, spec: str, model: Any, preprocess: Any, tokenizer: Any, device: str) -> None:
        import torch

        self.spec = spec
        self.model = _reparameterize(model.eval())
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.device = device
        params = list(model.parameters())
        self.dtype = params[0].dtype if params else torch.float32
        self.logit_scale = float(model.logit_scale.detach().float().exp().item())
        bias = getattr(model, "logit_bias", None)
        self.logit_bias = None if bias is None else float(bias.detach().float().item())
        self.context_length = int(getattr(tokenizer, "context_length", None) or model.context_length)
        size = getattr(getattr(model, "visual", None), "image_size", None)
        if size is None:
            size = getattr(getattr(preprocess, "transforms", [None])[0], "size", 224)
        self.image_size = int(size[0] if isinstance(size, list | tuple) else size)
        self._tower_kind, self._tower = lt.text_tower(model)
        self._stretched: tuple[Any, int] | None = None
        self._stretch_lock = threading.Lock()
        self._n_special = self._count_special()
        with torch.inference_mode():
            self.dim = int(self._encode_token_batch(self.tokenizer(["a"])).shape[1])

    def __repr__(self) -> str:
        return f"ClipBackend({self.spec!r}, dim={self.dim}, device={self.device!r})"

    # -- images ---------------------------------------------------------------------------
    def encode_images(
        self,
        images: list[Any],
        *,
        batch_size: int = 32,
        progress: Progress = None,
        should_stop: ShouldStop = None,
    ) -> np.ndarray:
        """Embed PIL images in batches; returns float32 (n, dim), L2-normalised.

        Raises:
            Timeout: ``should_stop()`` returned True between two batches.
        """
        import torch

        out = np.zeros((len(images), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                _check_stop(should_stop, self.spec, start, len(images))
                chunk = images[start : start + batch_size]
                x = torch.stack([self.preprocess(im) for im in chunk]).to(self.device, self.dtype)
                out[start : start + len(chunk)] = _normalise(self.model.encode_image(x))
                if progress:
                    progress(start + len(chunk), len(images), "images embedded")
        return out

    def encode_image_regions(self, image: Any, grid: int, *, should_stop: ShouldStop = None) -> np.ndarray:
        """Embed the whole image then its ``grid`` x ``grid`` tiles (row-major); float32 (1 + grid², dim)."""
        if grid < 1:
            raise InvalidInput("grid must be >= 1")
        w, h = image.size
        tiles = [image]
        for r in range(grid):
            for c in range(grid):
                box = (c * w // grid, r * h // grid, (c + 1) * w // grid, (r + 1) * h // grid)
                tiles.append(image.crop(box))
        return self.encode_images(tiles, should_stop=should_stop)

    # -- dense features (issue 10) ---------------------------------------------------------
    def encode_dense(self, images: list[Any], *, batch_size: int = 16, should_stop: ShouldStop = None) -> np.ndarray:
        """Dense patch/region features in the joint space: float32 (n, gh, gw, dim), each L2-normalised.

        ViT towers: the last block's patch tokens through ``ln_post`` and the final projection.
        ResNet towers with attention pooling (CLIP's ModifiedResNet): the attention pool's value
        path (value then output projection) at every position of the last feature map, the
        MaskCLIP reading. Cell (r, c) covers the preprocessed (resized, centre-cropped) image's
        row r, column c of a gh x gw grid. Other towers raise InvalidInput.
        """
        import torch

        should_stop = should_stop or current_should_stop()
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                _check_stop(should_stop, self.spec, start, len(images))
                chunk = images[start : start + batch_size]
                x = torch.stack([self.preprocess(im) for im in chunk]).to(self.device, self.dtype)
                feats = _dense_features(self.model.visual, x, self.spec)
                chunks.append(torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy())
        if not chunks:
            return np.zeros((0, 0, 0, self.dim), dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32)

    # -- texts ----------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        """Tokens the text tower sees for ``text``, special tokens included (no truncation)."""
        return self._count_body(text) + self._n_special

    def _count_body(self, text: str) -> int:
        tok = self.tokenizer
        if hasattr(tok, "encode") and hasattr(tok, "sot_token_id"):  # open_clip SimpleTokenizer
            return len(tok.encode(text))
        inner = getattr(tok, "tokenizer", None)
        if inner is not None and callable(inner):  # open_clip HFTokenizer
            return len(inner(text, add_special_tokens=False)["input_ids"])
        raise BackendUnavailable(f"cannot count tokens with {type(tok).__name__}")

    def _count_special(self) -> int:
        inner = getattr(self.tokenizer, "tokenizer", None)
        if inner is not None and callable(inner):
            return len(inner("", add_special_tokens=True)["input_ids"])
        return max(0, int((self.tokenizer([""], context_length=16)[0] != 0).sum()))

    def encode_texts(
        self,
        texts: list[str],
        *,
        batch_size: int = 64,
        long_text: LongText = "stretch",
        progress: Progress = None,
        should_stop: ShouldStop = None,
    ) -> tuple[np.ndarray, list[bool]]:
        """Embed texts; float32 (n, dim) L2-normalised, plus per text whether it exceeded the context.

        See `encode_texts_detailed` for how long texts are handled; the bool is True whenever a
        text did not fit the text tower's context (and so was stretched, extended, chunked or cut).
        """
        emb, notes = self.encode_texts_detailed(
            texts, batch_size=batch_size, long_text=long_text, progress=progress, should_stop=should_stop
        )
        return emb, [n is not None for n in notes]

    def encode_texts_detailed(
        self,
        texts: list[str],
        *,
        batch_size: int = 64,
        long_text: LongText = "stretch",
        progress: Progress = None,
        should_stop: ShouldStop = None,
    ) -> tuple[np.ndarray, list[str | None]]:
        """Embed texts, never cutting a long one silently (P08, Long-CLIP).

        Args:
            long_text: for texts longer than `context_length`:
                ``stretch`` (default): towers with learned positions use the Long-CLIP stretch (first
                20 positions kept, the rest interpolated 4x); HF towers use their extra learned
                positions; texts longer still are chunked. ``chunk``: split into context-sized
                chunks at word boundaries and average their embeddings. ``truncate``: cut (flagged).
                ``error``: raise InvalidInput.
            should_stop: asked between batches; True stops the work with `Timeout`.

        Returns:
            (embeddings, notes) where notes[i] is None when text i fitted, else one of
            "stretched", "extended", "chunked", "truncated".
        """
        import torch

        n = len(texts)
        counts = [self.count_tokens(t) for t in texts]
        groups, notes = lt.plan(
            counts,
            context_length=self.context_length,
            limit=self._extended_limit(),
            kind=self._tower_kind,
            mode=long_text,
            spec=self.spec,
        )
        out = np.zeros((n, self.dim), dtype=np.float32)
        done = 0
        with torch.inference_mode():
            for key, ids in groups.items():
                for start in range(0, len(ids), batch_size):
                    _check_stop(should_stop, self.spec, done, n)
                    part = ids[start : start + batch_size]
                    batch = [texts[i] for i in part]
                    if key == "plain":
                        feats = _normalise(self._encode_token_batch(self.tokenizer(batch)))
                    elif key == "stretched":
                        feats = _normalise(self._encode_stretched(batch))
                    elif key == "extended":
                        length = _round_up(max(counts[i] for i in part), 8)
                        feats = _normalise(self._encode_token_batch(self.tokenizer(batch, context_length=length)))
                    else:
                        feats = np.stack([self._encode_chunked(t) for t in batch])
                    out[part] = feats
                    done += len(part)
                    if progress:
                        progress(done, n, "texts embedded")
        return out, notes

    def fit_notices(self, texts: list[str], notes: list[str | None], what: str = "text") -> list[str]:
        """One human-readable line per text that did not fit the context (tools report these; never silent)."""
        out = []
        for text, note in zip(texts, notes, strict=True):
            if note is not None:
                short = text if len(text) <= 60 else text[:57] + "..."
                out.append(
                    f"{what} {short!r} has {self.count_tokens(text)} tokens > context {self.context_length} "
                    f"of {self.spec}: {note}"
                )
        return out

    def _encode_token_batch(self, tokens: Any) -> Any:
        return self.model.encode_text(tokens.to(self.device))

    def _extended_limit(self) -> int:
        """Longest text (tokens) that `stretch` encodes without chunking."""
        return lt.extended_limit(self._tower_kind, self._tower, self.context_length)

    def stretched_encoder(self) -> tuple[Any, int]:
        """(module whose forward/encode_text takes token ids, its context length) with stretched positions.

        Built once per backend (see `_longtext.stretched_copy`); the original model is untouched.
        """
        with self._stretch_lock:
            if self._stretched is None:
                if self._tower_kind not in ("clip", "tt"):
                    raise InvalidInput(f"{self.spec}'s text tower has no learned positions to stretch")
                self._stretched = lt.stretched_copy(self._tower)
            return self._stretched

    def _encode_stretched(self, batch: list[str]) -> Any:
        dup, length = self.stretched_encoder()
        tokens = self.tokenizer(batch, context_length=length).to(self.device)
        return dup.encode_text(tokens) if self._tower_kind == "clip" else dup(tokens)

    def _encode_chunked(self, text: str) -> np.ndarray:
        """Chunk-and-pool: word-boundary chunks that fit the context, token-weighted mean, renormalised."""
        try:
            chunks, weights = lt.chunk_words(text, self.context_length - self._n_special, self._count_body)
        except InvalidInput as err:
            raise InvalidInput(f"a text of {self.count_tokens(text)} tokens: {err.message}", hint=err.hint) from None
        feats = _normalise(self._encode_token_batch(self.tokenizer(chunks)))
        w = np.asarray(weights, dtype=np.float32)[:, None]
        pooled = (feats * w).sum(0)
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)


def _dense_features(visual: Any, x: Any, spec: str) -> Any:
    """(B, gh, gw, dim) unnormalised dense features of an open_clip image tower (see encode_dense)."""
    import torch.nn.functional as F

    attnpool = getattr(visual, "attnpool", None)
    if attnpool is not None and hasattr(attnpool, "v_proj") and hasattr(visual, "layer4"):
        fmap = visual.forward_intermediates(x, indices=1, intermediates_only=True)["image_intermediates"][-1]
        b, c, gh, gw = fmap.shape
        tokens = fmap.reshape(b, c, gh * gw).permute(0, 2, 1)
        pos = attnpool.positional_embedding[1:].to(tokens.dtype)
        if pos.shape[0] != gh * gw:
            raise InvalidInput(f"{spec}: feature map {gh}x{gw} does not match the attention pool's positions")
        v = F.linear(tokens + pos, attnpool.v_proj.weight, attnpool.v_proj.bias)
        return attnpool.c_proj(v).reshape(b, gh, gw, -1)
    if hasattr(visual, "class_embedding") and hasattr(visual, "forward_intermediates") and hasattr(visual, "proj"):
        if getattr(visual, "attn_pool", None) is not None:
            raise InvalidInput(f"{spec}: dense features of attention-pooled (CoCa-style) ViTs are not supported")
        out = visual.forward_intermediates(
            x, indices=1, normalize_intermediates=True, intermediates_only=True, output_fmt="NLC"
        )["image_intermediates"][-1]
        b, n, _ = out.shape
        if visual.proj is not None:
            out = out @ visual.proj
        gh = x.shape[2] // visual.patch_size[0]
        gw = x.shape[3] // visual.patch_size[1]
        if gh * gw != n:
            raise InvalidInput(f"{spec}: {n} patch tokens do not form a {gh}x{gw} grid")
        return out.reshape(b, gh, gw, -1)
    raise InvalidInput(
        f"{spec}: dense features need a ViT or an attention-pooled ResNet image tower "
        f"(got {type(visual).__name__})",
        hint="use demo or an open_clip ViT/RN model",
    )


def _reparameterize(model: Any) -> Any:
    """Fold train-time branches (MobileOne/FastViT blocks of MobileCLIP, P43) for inference; exact."""
    visual = getattr(model, "visual", None)
    if visual is not None and any(hasattr(m, "reparameterize") for m in visual.modules()):
        from timm.utils.model import reparameterize_model

        model.visual = reparameterize_model(visual, inplace=True)
    return model


def _normalise(feats: Any) -> np.ndarray:
    x = feats.detach().float().cpu().numpy()
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m
