"""The embedded demo CLIP v2 (spec ``demo``): knows the world's everyday objects as well as its shapes.

Same recipe as v1 (`vltools.models.clip_demo`, now spec ``demo-shapes``): an open_clip
``CustomTextCLIP`` whose text tower is the bundled all-MiniLM-L6-v2 (mean pooling, no projection,
**locked**) and whose image tower is trained. v2's image tower is an open_clip ``ModifiedResNet``
at 96 x 96 px with an attention-pool head, so besides the pooled embedding it gives a 3 x 3 grid
of dense features in the same space (`vltools.models.clip.ClipBackend.encode_dense`).

Trained by ``scripts/train_demo_clip_v2.py`` on world v2 scenes of the **train** concepts, the
shapes world and the easy-VQA train split. Only trained parameters (image tower, ``logit_scale``)
are stored, in ``vltools/models/weights/demo_v2_clip.safetensors``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from importlib import resources
from pathlib import Path
from typing import Any

MODEL_NAME = "vltools-demo-clip-v2"
WEIGHTS_FILE = "demo_v2_clip.safetensors"
IMAGE_SIZE = 96
EMBED_DIM = 384
WIDTH = 16

_lock = threading.Lock()
_registered: str | None = None


def weights_path() -> Path:
    """Path of the committed v2 weights (may not exist in a fresh checkout before training)."""
    return Path(str(resources.files("vltools.models") / "weights" / WEIGHTS_FILE))


def model_config() -> dict[str, Any]:
    """The open_clip model config of the demo CLIP v2 (``model_cfg`` of an open_clip_config.json)."""
    from vltools.models.clip_demo import minilm_dir

    mp = str(minilm_dir())
    return {
        "embed_dim": EMBED_DIM,
        "vision_cfg": {"image_size": IMAGE_SIZE, "layers": [1, 1, 1, 1], "width": WIDTH, "head_width": 64},
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

            text = json.dumps(model_config(), sort_keys=True)
            tag = hashlib.sha256(text.encode()).hexdigest()[:12]
            uid = os.getuid() if hasattr(os, "getuid") else 0
            folder = Path(tempfile.gettempdir()) / f"vltools-demo-clip-v2-{uid}-{tag}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{MODEL_NAME}.json"
            if not path.is_file() or path.read_text() != text:
                tmp = folder / f".{MODEL_NAME}.{os.getpid()}.tmp"
                tmp.write_text(text)
                os.replace(tmp, path)
            open_clip.add_model_config(path)
            _registered = MODEL_NAME
        return _registered


def build_model() -> Any:
    """A fresh v2 model: MiniLM text tower loaded and locked, image tower randomly initialised.

    Built as open_clip's ``CustomTextCLIP`` from the model config, as `clip_demo.build_demo_model`.
    """
    import open_clip

    from vltools.models.clip_demo import _quiet_transformers

    register_config()  # the tokenizer is looked up by this name
    cfg = model_config()
    cfg.pop("custom_text")
    cfg["text_cfg"]["hf_model_pretrained"] = True  # MiniLM's weights, read from its local folder
    with _quiet_transformers():
        model = open_clip.CustomTextCLIP(**cfg)
    model.lock_text_tower(unlocked_layers=0, freeze_layer_norm=True)
    return model


def load(device: str = "cpu", path: str | Path | None = None) -> tuple[Any, Any, Any]:
    """(model, preprocess, tokenizer) of the trained v2 model on ``device``, in eval mode.

    Raises FileNotFoundError when the weights file is missing.
    """
    import open_clip
    from safetensors.torch import load_file

    path = Path(path) if path else weights_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path} (train it with `python scripts/train_demo_clip_v2.py`)")
    model = build_model()
    state = load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad_missing = [k for k in missing if not k.startswith("text.")]
    if bad_missing or unexpected:
        raise ValueError(
            f"demo CLIP v2 weights do not match the model: missing {bad_missing[:5]}, unexpected {unexpected[:5]}"
        )
    model = model.float().to(device).eval()
    preprocess = open_clip.image_transform(
        model.visual.image_size, is_train=False, mean=open_clip.OPENAI_DATASET_MEAN, std=open_clip.OPENAI_DATASET_STD
    )
    tokenizer = open_clip.get_tokenizer(register_config())
    return model, preprocess, tokenizer
