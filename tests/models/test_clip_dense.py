"""`ClipBackend.encode_dense` on tiny random open_clip towers: shapes, normalisation, and agreement
with the towers' own computations (ViT patch tokens through ln_post + proj; ModifiedResNet's
attention-pool value path, whose mean is the pooled output when attention is uniform)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


def _backend(model, size):
    import open_clip

    from vltools.models.clip import ClipBackend

    pre = open_clip.image_transform(size, is_train=False)
    return ClipBackend("tiny", model, pre, open_clip.get_tokenizer("ViT-B-32"), "cpu")


def _images(n, size):
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


def test_vit_dense_is_projected_patch_tokens():
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.CLIP(
        embed_dim=32,
        vision_cfg={"image_size": 64, "layers": 2, "width": 48, "patch_size": 16, "head_width": 16},
        text_cfg={"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    ).eval()
    b = _backend(model, 64)
    ims = _images(3, 64)
    dense = b.encode_dense(ims, batch_size=2)
    assert dense.shape == (3, 4, 4, 32) and dense.dtype == np.float32
    assert np.allclose(np.linalg.norm(dense, axis=-1), 1.0, atol=1e-5)
    visual = model.visual
    visual.output_tokens = True
    with torch.no_grad():
        x = torch.stack([b.preprocess(im) for im in ims])
        _, tokens = visual(x)  # ln_post-ed patch tokens, before the projection
        ref = torch.nn.functional.normalize(tokens @ visual.proj, dim=-1).reshape(3, 4, 4, 32).numpy()
    assert np.allclose(dense, ref, atol=1e-4)


def test_modified_resnet_dense_is_the_attention_pool_value_path():
    import open_clip
    import torch

    from vltools.models.clip._encode import _dense_features

    torch.manual_seed(0)
    model = open_clip.CLIP(
        embed_dim=24,
        vision_cfg={"image_size": 64, "layers": [1, 1, 1, 1], "width": 8, "head_width": 16},
        text_cfg={"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    ).eval()
    b = _backend(model, 64)
    ims = _images(2, 64)
    dense = b.encode_dense(ims)
    assert dense.shape == (2, 2, 2, 24)
    assert np.allclose(np.linalg.norm(dense, axis=-1), 1.0, atol=1e-5)
    # with uniform attention (q, k = 0) and no positional terms, the pooled output is exactly the
    # mean of the per-position value-path outputs: they live in the same space as the embedding
    pool = model.visual.attnpool
    with torch.no_grad():
        for lin in (pool.q_proj, pool.k_proj):
            lin.weight.zero_()
            lin.bias.zero_()
        pool.positional_embedding.zero_()
        x = torch.stack([b.preprocess(im) for im in ims])
        raw = _dense_features(model.visual, x, "tiny")
        pooled = model.visual(x)
    assert torch.allclose(raw.reshape(2, -1, 24).mean(1), pooled, atol=1e-4)


def test_dense_refuses_towers_without_spatial_features():
    import torch

    from vltools.core.errors import InvalidInput
    from vltools.models.clip._encode import _dense_features

    with pytest.raises(InvalidInput):
        _dense_features(torch.nn.Linear(3, 3), torch.zeros(1, 3, 8, 8), "odd")
