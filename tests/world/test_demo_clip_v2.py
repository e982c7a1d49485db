"""The shipped demo CLIP v2 (spec ``demo``): loads offline, gives 3x3 dense features, and recognises
objects of held-out scenes (seeds never used in training) through image.classify far above chance, and
held-out concepts it never saw (they transfer only through the locked text tower) above chance."""

from __future__ import annotations

import numpy as np
import pytest

from vltools.core.context import Context
from vltools.core.registry import get_registry
from vltools.core.settings import Settings

pytestmark = pytest.mark.heavy
SEEDS = 29_500_000  # the training scenes use 20_000_000 + k; the benchmark 29_000_000 + k


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    folder = tmp_path_factory.mktemp("objects")
    return Settings(allowed_roots=[folder], home=tmp_path_factory.mktemp("home"), device="cpu"), folder


def _scenes(folder, split, n, offset):
    from vltools.world.objects import generate_object_scene

    out = []
    for i in range(n):
        sc = generate_object_scene(SEEDS + offset + i, n_objects=1, split=split)
        p = folder / f"{split}{i:02d}.png"
        sc.image.save(p)
        out.append((str(p), sc.labels["objects"][0]["concept"]))
    return out


def _scenes_of(folder, names, offset):
    from vltools.world.objects import generate_object_scene

    out = []
    for i, name in enumerate(names):
        sc = generate_object_scene(SEEDS + offset + i, concept_names=[name])
        p = folder / f"named{i:03d}.png"
        sc.image.save(p)
        out.append((str(p), name))
    return out


def _top1(scenes, labels, settings):
    res = get_registry().call(
        "image.classify", {"images": [p for p, _ in scenes], "labels": labels, "clip": "demo"},
        ctx=Context(settings=settings),
    )
    return float(np.mean([r.label == c for r, (_, c) in zip(res.results, scenes, strict=True)]))


def test_v2_classifies_train_and_held_out_concepts_above_chance(settings):
    from vltools.world import concepts

    st, folder = settings
    rng = np.random.default_rng(0)
    train = [r["name"] for r in concepts("train")]
    seen = _scenes(folder, "train", 20, 0)
    labels = sorted({c for _, c in seen} | set(rng.choice(train, 30, replace=False).tolist()))
    acc = _top1(seen, labels, st)
    assert acc >= 0.5, acc  # chance is 1/len(labels) ~ 2-3%
    # held-out concepts (never trained; only the locked text tower knows them): one scene each, among the
    # 109 held-out names. Measured: 3.3% on 300 scenes (benchmarks/README.md) -- above chance (0.9%), far
    # from the aim; this checks it stays above chance (chance expects 1 hit here).
    hl = sorted({r["name"] for r in concepts("heldout")})
    held = _scenes_of(folder, hl, 2000)
    hits = _top1(held, hl, st) * len(held)
    assert hits >= 3, hits


def test_v2_dense_features_and_both_demo_specs():
    from PIL import Image

    from vltools.models.clip import get_clip

    st = Settings(device="cpu")
    v2 = get_clip("demo", st)
    v1 = get_clip("demo-shapes", st)
    assert v2.image_size == 96 and v1.image_size == 64 and v2.dim == v1.dim == 384
    d = v2.encode_dense([Image.new("RGB", (100, 100), "white")])
    assert d.shape == (1, 3, 3, 384)
