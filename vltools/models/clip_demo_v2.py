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
    from vltools.models.clip_demo import minilm_model_config

    return minilm_model_config(IMAGE_SIZE, WIDTH, EMBED_DIM)


def register_config() -> str:
    """Write the config (with this install's MiniLM path) and add it to open_clip's registry; returns the name."""
    global _registered
    with _lock:
        if _registered is None:
            from vltools.models.clip_demo import add_open_clip_config

            add_open_clip_config(MODEL_NAME, model_config(), "vltools-demo-clip-v2")
            _registered = MODEL_NAME
        return _registered


def build_model() -> Any:
    """A fresh v2 model: MiniLM text tower loaded and locked, image tower randomly initialised."""
    from vltools.models.clip_demo import build_from_config

    register_config()  # the tokenizer is looked up by this name
    return build_from_config(model_config())


def load(device: str = "cpu", path: str | Path | None = None) -> tuple[Any, Any, Any]:
    """(model, preprocess, tokenizer) of the trained v2 model on ``device``, in eval mode.

    Raises FileNotFoundError when the weights file is missing.
    """
    from safetensors.torch import load_file

    from vltools.models.clip_demo import load_trained

    path = Path(path) if path else weights_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path} (train it with `python scripts/train_demo_clip_v2.py`)")
    return load_trained(build_model(), load_file(str(path)), device, register_config(), what="demo CLIP v2")
