"""A tiny randomly initialised open_clip model saved in open_clip's local-dir layout (plumbing tests only)."""

from __future__ import annotations

import json
from pathlib import Path

TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
TINY_ARCH = "vltools-tiny-test"


def make_tiny_clip(folder: Path, *, seed: int = 0) -> Path:
    """Write open_clip_config.json + open_clip_pytorch_model.bin into ``folder``; returns it."""
    import open_clip
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = open_clip.CLIP(**json.loads(json.dumps(TINY_CFG)))
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CFG, "preprocess_cfg": {}}))
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    return folder


def register_tiny_arch(folder: Path) -> str:
    """Register the tiny config as an open_clip architecture (for the ARCH@CHECKPOINT spec)."""
    import open_clip

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{TINY_ARCH}.json").write_text(json.dumps(TINY_CFG))
    if TINY_ARCH not in open_clip.list_models():
        open_clip.add_model_config(folder)
    return TINY_ARCH
