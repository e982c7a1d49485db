"""The CLIP backend: any open_clip model (and the embedded ``demo``) behind one small interface.

Specs (resolved once per process and device, then cached):

- ``demo`` — the small CLIP trained by this project (`vltools.models.clip_demo`), works offline.
- ``open_clip:ARCH/PRETRAINED`` — an open_clip architecture and weight tag, e.g.
  ``open_clip:ViT-B-32/openai`` or ``open_clip:MobileCLIP-S2/datacompdr`` (P43). The weights must
  already be in the local Hugging Face / open_clip cache: nothing is downloaded at run time, and a
  missing cache fails at once with instructions. ``PRETRAINED`` = ``random`` gives random weights
  (for cost benchmarks only).
- ``open_clip:local-dir:PATH`` — a folder with ``open_clip_config.json`` and a weight file
  (open_clip's hf-hub layout).
- ``open_clip:hf-hub:ORG/REPO`` — an open_clip hub repo already in the local cache.
- ``open_clip:ARCH@CHECKPOINT`` — an open_clip architecture and a local checkpoint file.

Long texts (P08, Long-CLIP) are never silently cut: see `ClipBackend.encode_texts`.
"""

from __future__ import annotations

import copy
import difflib
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vltools.core.cancel import StopFn, current_should_stop, stopped_early
from vltools.core.errors import BackendUnavailable, InvalidInput, NotFound
from vltools.core.settings import Settings, check_model_allowed
from vltools.models._offline import hub_offline

LongText = Literal["stretch", "chunk", "truncate", "error"]
LONG_TEXT_MODES = ("stretch", "chunk", "truncate", "error")
# How a text was fitted to the text tower; None = it fitted natively.
#   "stretched": Long-CLIP knowledge-preserving positional stretch; "extended": the tower has more
#   learned positions than its training context (HF towers) and they were used;
#   "chunked": split into context-sized chunks whose embeddings were averaged;
#   "truncated": cut to the context (only when asked for with long_text="truncate").
FIT_NOTES = ("stretched", "extended", "chunked", "truncated")
STRETCH_KEEP = 20  # Long-CLIP keeps the first 20 (well-trained) positions
STRETCH_FACTOR = 4  # and interpolates the rest 4x: 77 -> 20 + 57*4 = 248
MAX_CHUNKS = 256

Progress = Callable[[float, float | None, str], None] | None

_CACHE: dict[tuple[str, str], ClipBackend] = {}
_LOCK = threading.Lock()


def get_clip(spec: str | None, settings: Settings) -> ClipBackend:
    """The cached `ClipBackend` for ``spec`` (default ``settings.clip``) on ``settings.torch_device()``."""
    spec = (spec or settings.clip).strip()
    check_model_allowed(spec, settings, what="CLIP")
    _precheck(spec)  # before anything imports torch: a missing pretrained cache fails in well under a second
    device = settings.torch_device()
    key = (spec, device)
    with _LOCK:
        backend = _CACHE.get(key)
        if backend is None:
            with hub_offline():  # open_clip has no local_files_only: keep huggingface_hub off the network
                backend = _load(spec, device)
            _CACHE[key] = backend
        return backend


def _precheck(spec: str) -> None:
    if spec.startswith("open_clip:") and not spec.startswith(("open_clip:local-dir:", "open_clip:hf-hub:")):
        arch, sep, tag = spec[len("open_clip:") :].partition("/")
        if sep and tag and tag != "random" and "@" not in arch:
            _cached_pretrained(arch, tag)


def clear_cache() -> None:
    """Forget loaded models (tests, memory)."""
    with _LOCK:
        _CACHE.clear()


# -- loading ----------------------------------------------------------------------------------
def _fetch_hint(arch: str, tag: str) -> str:
    return (
        "on a connected machine run "
        f"`python -c \"import open_clip; open_clip.create_model_and_transforms('{arch}', pretrained='{tag}')\"` "
        "and copy its ~/.cache/huggingface/hub (or $HF_HOME) to this machine, or save the model to a folder "
        "(open_clip_config.json + weights) and use open_clip:local-dir:PATH"
    )


def _hf_cache_dir() -> str:
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return os.path.join(home, "hub")


def _hub_cached(repo_id: str, filenames: Sequence[str]) -> str | None:
    """Path of the first of ``filenames`` in the local HF cache of ``repo_id``; never touches the network."""
    from huggingface_hub import try_to_load_from_cache

    for name in filenames:
        got = try_to_load_from_cache(repo_id, name, cache_dir=_hf_cache_dir())
        if isinstance(got, str) and os.path.isfile(got):
            return got
    return None


_HUB_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


class _Catalog:
    """open_clip's catalogue: architecture names and the pretrained-weights table."""

    def __init__(self, names: list[str], get_cfg: Callable[..., Any], tags: Callable[[str], list[str]]) -> None:
        self.names, self.get_cfg, self.tags = names, get_cfg, tags


_LIGHT: _Catalog | None = None


def _light_catalog() -> _Catalog | None:
    """The catalogue read from open_clip's files WITHOUT importing open_clip or torch (seconds on a
    busy machine), so that a missing pretrained cache fails at once. None if that is not possible
    (then the caller imports open_clip). Only builtin architectures are listed."""
    global _LIGHT
    if _LIGHT is not None:
        return _LIGHT
    try:
        import builtins
        import importlib.util
        import types

        spec = importlib.util.find_spec("open_clip")
        pkg = Path(list(spec.submodule_search_locations)[0])

        def run(name: str, import_fn: Any = None) -> dict[str, Any]:
            ns: dict[str, Any] = {"__name__": f"_vltools_open_clip_catalog.{name}"}
            if import_fn is not None:
                ns["__builtins__"] = {**vars(builtins), "__import__": import_fn}
            path = pkg / f"{name}.py"
            exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), ns)  # noqa: S102 - open_clip's own file
            return ns

        side = {n: types.SimpleNamespace(**run(n)) for n in ("constants", "version")}
        real = builtins.__import__

        def guarded(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002 - __import__ signature
            if level == 1 and name in side:
                return side[name]
            if level == 0 and name.startswith("safetensors"):
                raise ImportError("not needed for the catalogue (would import torch)")
            return real(name, globals, locals, fromlist, level)

        ns = run("pretrained", guarded)
        names = sorted(p.stem for p in (pkg / "model_configs").glob("*.json"))
        _LIGHT = _Catalog(names, ns["get_pretrained_cfg"], ns["list_pretrained_tags_by_model"])
    except Exception:  # any layout change in open_clip: fall back to importing it
        return None
    return _LIGHT


def _full_catalog() -> _Catalog:
    import open_clip

    return _Catalog(open_clip.list_models(), open_clip.get_pretrained_cfg, open_clip.list_pretrained_tags_by_model)


def _check_arch(arch: str) -> None:
    names = _full_catalog().names
    if arch not in names:
        close = difflib.get_close_matches(arch, names, n=5, cutoff=0.5)
        raise InvalidInput(
            f"unknown open_clip architecture {arch!r}",
            hint=("close names: " + ", ".join(close)) if close else "see open_clip.list_models() for valid names",
        )


def _cached_pretrained(arch: str, tag: str) -> str:
    """Local path of the weights for ``arch``/``tag``; BackendUnavailable at once if not cached.

    Uses the light catalogue when it knows the pair, so this check needs neither torch nor open_clip.
    """
    cat = _light_catalog()
    if cat is None or arch not in cat.names or not cat.get_cfg(arch, tag):
        _check_arch(arch)
        cat = _full_catalog()
    cfg = cat.get_cfg(arch, tag)
    if not cfg:
        tags = cat.tags(arch)
        raise InvalidInput(
            f"open_clip has no pretrained tag {tag!r} for {arch}",
            hint=f"known tags: {', '.join(tags) or 'none'} (or use random, or ARCH@CHECKPOINT)",
        )
    if cfg.get("file"):
        return cfg["file"]
    where = []
    if cfg.get("hf_hub"):
        hub = cfg["hf_hub"]
        if hub.endswith("/"):  # repo only: open_clip's default weight names
            repo, names = hub.rstrip("/"), _HUB_WEIGHTS
        else:
            repo, filename = os.path.split(hub)
            names = (os.path.splitext(filename)[0] + ".safetensors", filename)
        found = _hub_cached(repo, names)
        if found:
            return found
        where.append(f"HF hub repo {repo} in {_hf_cache_dir()}")
    if cfg.get("url"):
        target = os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(cfg["url"]))
        if os.path.isfile(target):
            return target
        where.append(target)
    raise BackendUnavailable(
        f"pretrained weights for open_clip:{arch}/{tag} are not cached on this machine "
        f"(looked for {'; '.join(where)}) and vltools never downloads at run time",
        hint=_fetch_hint(arch, tag),
    )


def _precision(device: str) -> str:
    return "fp16" if device.startswith("cuda") else "fp32"


def _create(name: str, device: str, spec: str, **kw: Any) -> tuple[Any, Any, Any]:
    import open_clip

    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            name, device=device, precision=_precision(device), **kw
        )
        tokenizer = open_clip.get_tokenizer(name)
    except InvalidInput:
        raise
    except Exception as err:  # config/weights/HF text tower problems: say which spec and why
        raise BackendUnavailable(
            f"cannot load CLIP {spec}: {type(err).__name__}: {err}",
            hint="check the spec, the folder/checkpoint, and that any HF text tower it names is cached locally",
        ) from err
    return model, preprocess, tokenizer


def _load(spec: str, device: str) -> ClipBackend:
    if spec == "demo":
        try:
            from vltools.models import clip_demo
        except ImportError as err:
            raise BackendUnavailable(f"the demo CLIP is not available: {err}", hint="reinstall vltools") from err
        try:
            model, preprocess, tokenizer = clip_demo.load_demo(device)
        except FileNotFoundError as err:
            raise BackendUnavailable(
                f"the demo CLIP weights are missing: {err}",
                hint="reinstall vltools or retrain with the script in vltools/world",
            ) from err
        if device.startswith("cuda"):
            model = model.half()
        return ClipBackend(spec, model, preprocess, tokenizer, device)
    if not spec.startswith("open_clip:"):
        raise InvalidInput(
            f"unknown CLIP spec {spec!r}",
            hint="use demo, open_clip:ARCH/PRETRAINED, open_clip:local-dir:PATH, open_clip:hf-hub:ORG/REPO "
            "or open_clip:ARCH@CHECKPOINT",
        )
    rest = spec[len("open_clip:") :]
    if rest.startswith("local-dir:"):
        folder = Path(rest[len("local-dir:") :]).expanduser()
        if not (folder / "open_clip_config.json").is_file():
            raise NotFound(
                f"{folder} has no open_clip_config.json",
                hint="a local-dir model is a folder with open_clip_config.json and a weight file",
            )
        weights = [p for ext in ("*.safetensors", "*.bin", "*.pth", "*.pt") for p in folder.glob(ext)]
        if not weights:  # open_clip would only warn and return random weights
            raise NotFound(f"{folder} has no weight file (.safetensors/.bin/.pth)", hint="copy the weights next to it")
        model, preprocess, tokenizer = _create(f"local-dir:{folder.resolve()}", device, spec)
    elif rest.startswith("hf-hub:"):
        repo = rest[len("hf-hub:") :]
        if not _hub_cached(repo, ("open_clip_config.json",)) or not _hub_cached(repo, _HUB_WEIGHTS):
            raise BackendUnavailable(
                f"open_clip hub repo {repo} is not cached on this machine and vltools never downloads at run time",
                hint=f"on a connected machine run `python -c \"import open_clip; "
                f"open_clip.create_model_and_transforms('hf-hub:{repo}')\"` and copy the HF cache here",
            )
        model, preprocess, tokenizer = _create(f"hf-hub:{repo}", device, spec)
    elif "@" in rest:
        arch, _, ckpt = rest.partition("@")
        _check_arch(arch)
        path = Path(ckpt).expanduser()
        if not path.is_file():
            raise NotFound(f"checkpoint {ckpt} does not exist", hint="give the path of a local checkpoint file")
        model, preprocess, tokenizer = _create(arch, device, spec, pretrained=str(path.resolve()))
    else:
        arch, sep, tag = rest.partition("/")
        if not sep or not tag:
            raise InvalidInput(
                f"CLIP spec {spec!r} names no pretrained weights",
                hint=f"use open_clip:{arch}/TAG (see open_clip.list_pretrained()) or open_clip:{arch}@CHECKPOINT",
            )
        if tag == "random":
            _check_arch(arch)
            model, preprocess, tokenizer = _create(arch, device, spec, pretrained=None)
        else:
            _cached_pretrained(arch, tag)  # fails fast (no torch import), before open_clip could try the network
            model, preprocess, tokenizer = _create(arch, device, spec, pretrained=tag)
    return ClipBackend(spec, model, preprocess, tokenizer, device)


# -- the backend ------------------------------------------------------------------------------
def _text_tower(model: Any) -> tuple[str, Any]:
    """("clip", model) | ("tt", model.text) for learned positions; ("hf", model.text); ("none", None)."""
    import torch

    if isinstance(getattr(model, "positional_embedding", None), torch.nn.Parameter) and hasattr(
        model, "token_embedding"
    ):
        return "clip", model
    text = getattr(model, "text", None)
    if isinstance(getattr(text, "positional_embedding", None), torch.nn.Parameter):
        return "tt", text
    if text is not None and hasattr(text, "transformer") and hasattr(text.transformer, "config"):
        return "hf", text
    return "none", None


def stretch_positions(pos: Any, *, keep: int = STRETCH_KEEP, factor: int = STRETCH_FACTOR) -> Any:
    """Long-CLIP's knowledge-preserving stretch: keep the first ``keep`` rows, interpolate the rest ``factor``x.

    ``pos`` is a (L, width) tensor; returns (keep + (L - keep) * factor, width).
    """
    import torch.nn.functional as F

    keep = min(keep, pos.shape[0] - 1)
    head, tail = pos[:keep], pos[keep:]
    tail = F.interpolate(
        tail.T.unsqueeze(0).float(), size=tail.shape[0] * factor, mode="linear", align_corners=True
    )[0].T.to(pos.dtype)
    import torch

    return torch.cat([head, tail], dim=0)


def _causal_mask(n: int, like: Any) -> Any:
    import torch

    mask = torch.full((n, n), float("-inf"), dtype=like.dtype, device=like.device)
    return mask.triu_(1)


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
        self._tower_kind, self._tower = _text_tower(model)
        self._stretched: Any = None
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
        should_stop: StopFn | None = None,
    ) -> np.ndarray:
        """Embed PIL images in batches; returns float32 (n, dim), L2-normalised.

        ``should_stop`` (default: the running tool call's) is checked before each batch (`Timeout`).
        """
        import torch

        stop = current_should_stop(should_stop)
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                if stop is not None and stop():
                    raise stopped_early(f"image encoding with {self.spec}", start, len(images))
                chunk = images[start : start + batch_size]
                x = torch.stack([self.preprocess(im) for im in chunk]).to(self.device, self.dtype)
                feats = self.model.encode_image(x)
                out[start : start + len(chunk)] = _normalise(feats)
                if progress:
                    progress(start + len(chunk), len(images), "images embedded")
        return out

    def encode_image_regions(self, image: Any, grid: int) -> np.ndarray:
        """Embed the whole image then its ``grid`` x ``grid`` tiles (row-major); float32 (1 + grid², dim)."""
        if grid < 1:
            raise InvalidInput("grid must be >= 1")
        w, h = image.size
        tiles = [image]
        for r in range(grid):
            for c in range(grid):
                box = (c * w // grid, r * h // grid, (c + 1) * w // grid, (r + 1) * h // grid)
                tiles.append(image.crop(box))
        return self.encode_images(tiles)

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
        should_stop: StopFn | None = None,
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
        should_stop: StopFn | None = None,
    ) -> tuple[np.ndarray, list[str | None]]:
        """Embed texts, never cutting a long one silently (P08, Long-CLIP).

        Args:
            long_text: for texts longer than `context_length`:
                ``stretch`` (default): towers with learned positions use the Long-CLIP stretch (first
                20 positions kept, the rest interpolated 4x); HF towers use their extra learned
                positions; texts longer still are chunked. ``chunk``: split into context-sized
                chunks at word boundaries and average their embeddings. ``truncate``: cut (flagged).
                ``error``: raise InvalidInput.

        Returns:
            (embeddings, notes) where notes[i] is None when text i fitted, else one of
            "stretched", "extended", "chunked", "truncated".

        ``should_stop`` (default: the running tool call's) is checked before each batch (`Timeout`).
        """
        import torch

        stop = current_should_stop(should_stop)
        if long_text not in LONG_TEXT_MODES:
            raise InvalidInput(f"long_text must be one of {', '.join(LONG_TEXT_MODES)}, got {long_text!r}")
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32)
        notes: list[str | None] = [None] * n
        counts = [self.count_tokens(t) for t in texts]
        long_ids = [i for i, c in enumerate(counts) if c > self.context_length]
        if long_ids and long_text == "error":
            raise InvalidInput(
                f"{len(long_ids)} text(s) exceed the {self.context_length}-token context of {self.spec} "
                f"(first: #{long_ids[0]}, {counts[long_ids[0]]} tokens)",
                hint="shorten them or use long_text=stretch/chunk",
            )
        groups: dict[str, list[int]] = {"plain": [], "stretched": [], "extended": [], "chunked": []}
        for i, c in enumerate(counts):
            if c <= self.context_length or long_text == "truncate":
                groups["plain"].append(i)
                if c > self.context_length:
                    notes[i] = "truncated"
            elif long_text == "stretch" and c <= self._extended_limit():
                key = "extended" if self._tower_kind == "hf" else "stretched"
                groups[key].append(i)
                notes[i] = key
            else:
                groups["chunked"].append(i)
                notes[i] = "chunked"
        done = 0
        with torch.inference_mode():
            for key, ids in groups.items():
                for start in range(0, len(ids), batch_size):
                    if stop is not None and stop():
                        raise stopped_early(f"text encoding with {self.spec}", done, n)
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
        if self._tower_kind in ("clip", "tt"):
            return STRETCH_KEEP + max(0, self.context_length - STRETCH_KEEP) * STRETCH_FACTOR
        if self._tower_kind == "hf":
            cfg = self._tower.transformer.config
            limit = int(getattr(cfg, "max_position_embeddings", 0) or 0)
            if getattr(cfg, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
                limit -= 2  # positions offset by padding_idx + 1
            return max(limit, self.context_length)
        return self.context_length

    def stretched_encoder(self) -> tuple[Any, int]:
        """(module whose forward/encode_text takes token ids, its context length) with stretched positions.

        A shallow copy of the text tower that shares every weight but the positional table and
        causal mask, so the original model is untouched (thread-safe).
        """
        import torch

        with self._stretch_lock:
            if self._stretched is None:
                if self._tower_kind not in ("clip", "tt"):
                    raise InvalidInput(f"{self.spec}'s text tower has no learned positions to stretch")
                src = self._tower
                pos = stretch_positions(src.positional_embedding.detach())
                new_len = pos.shape[0]
                dup = copy.copy(src)
                dup._parameters = dict(src._parameters)
                dup._buffers = dict(src._buffers)
                dup._parameters["positional_embedding"] = torch.nn.Parameter(pos, requires_grad=False)
                if getattr(src, "attn_mask", None) is not None:
                    dup._buffers["attn_mask"] = _causal_mask(new_len, src.attn_mask)
                dup.context_length = new_len
                if hasattr(src, "num_pos"):
                    dup.num_pos = new_len
                self._stretched = (dup, new_len)
            return self._stretched

    def _encode_stretched(self, batch: list[str]) -> Any:
        dup, length = self.stretched_encoder()
        tokens = self.tokenizer(batch, context_length=length).to(self.device)
        return dup.encode_text(tokens) if self._tower_kind == "clip" else dup(tokens)

    def _encode_chunked(self, text: str) -> np.ndarray:
        """Chunk-and-pool: word-boundary chunks that fit the context, token-weighted mean, renormalised."""
        budget = self.context_length - self._n_special
        chunks: list[str] = []
        weights: list[int] = []
        cur: list[str] = []
        cur_n = 0
        for word in text.split():
            wn = self._count_body(word) or 1
            if cur and cur_n + wn > budget:
                chunks.append(" ".join(cur))
                weights.append(cur_n)
                cur, cur_n = [], 0
            cur.append(word)
            cur_n += wn
        if cur:
            chunks.append(" ".join(cur))
            weights.append(min(cur_n, budget))
        if len(chunks) > MAX_CHUNKS:
            raise InvalidInput(
                f"a text of {self.count_tokens(text)} tokens needs {len(chunks)} chunks (limit {MAX_CHUNKS})",
                hint="shorten the text",
            )
        feats = _normalise(self._encode_token_batch(self.tokenizer(chunks)))
        w = np.asarray(weights, dtype=np.float32)[:, None]
        pooled = (feats * w).sum(0)
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)


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
