"""Helpers shared by the demo CLIP training scripts (``train_demo_clip.py``, ``train_demo_clip_v2.py``).

Importable as ``_train_common`` from those scripts: Python puts ``scripts/`` first on ``sys.path``
when it runs a script from it.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np


def log(msg: str, fh=None) -> None:
    """A timestamped line on stderr, also appended to the open log file ``fh`` if given."""
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    print(line, file=sys.stderr, flush=True)
    if fh is not None:
        fh.write(line + "\n")
        fh.flush()


def to_array(img, size: int) -> np.ndarray:
    """``img`` as an RGB uint8 array of ``size`` x ``size`` (bicubic resize when needed)."""
    from PIL import Image

    img = img.convert("RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.BICUBIC)
    return np.asarray(img, dtype=np.uint8)


def encode_texts(model, tokenizer, texts: list[str], batch: int = 512):
    """Normalised locked-tower embeddings of ``texts`` (torch float32)."""
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    feats = torch.zeros(len(texts), model.text.output_dim if hasattr(model.text, "output_dim") else 384)
    pad = model.text.config.pad_token_id
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            sel = order[i : i + batch]
            ids = tokenizer([texts[j] for j in sel])
            used = int((ids != pad).sum(1).max())  # trim padding columns: mean pooling is masked anyway
            f = model.encode_text(ids[:, :used])
            feats[sel] = torch.nn.functional.normalize(f.float(), dim=-1)
    return feats


def cached_text_features(model, tokenizer, texts: list[str], cache: str | None):
    """Embeddings of ``texts``, reusing a {caption: vector} cache file (the tower is locked and fixed)."""
    import torch

    store: dict[str, np.ndarray] = {}
    if cache and Path(cache).is_file():
        z = np.load(cache, allow_pickle=False)
        store = dict(zip(z["texts"].tolist(), z["vecs"], strict=True))
    missing = [t for t in texts if t not in store]
    if missing:
        new = encode_texts(model, tokenizer, missing).numpy()
        store.update(zip(missing, new, strict=True))
        if cache:
            Path(cache).parent.mkdir(parents=True, exist_ok=True)
            keys = sorted(store)
            tmp = str(cache) + ".tmp.npz"
            np.savez(tmp, texts=np.array(keys), vecs=np.stack([store[k] for k in keys]).astype(np.float32))
            os.replace(tmp, cache)
    feats = torch.from_numpy(np.stack([store[t] for t in texts]).astype(np.float32))
    return feats, len(texts) - len(missing)
