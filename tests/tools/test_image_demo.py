"""Real behaviour with the embedded demo CLIP on held-out world scenes (seeds never used in training):
zero-shot classification, text→image and image→image search, CLIPScore, offline loading."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from vltools.core.context import Context
from vltools.core.registry import get_registry
from vltools.core.settings import Settings

pytestmark = pytest.mark.heavy
SEEDS = 9_200_000  # disjoint from training (1_000_000 + k) and from the benchmark seeds


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """24 single-object held-out scenes on disk: [(path, colour, shape)]."""
    from vltools.world.scene import generate_scene

    folder = tmp_path_factory.mktemp("world")
    out = []
    for i in range(24):
        sc = generate_scene(SEEDS + i, single=True)
        p = folder / f"s{i:02d}.png"
        sc.image.save(p)
        ob = sc.labels["objects"][0]
        out.append((str(p), ob["colour"], ob["shape"]))
    return out


@pytest.fixture(scope="module")
def settings(world, tmp_path_factory):
    from pathlib import Path

    return Settings(allowed_roots=[Path(world[0][0]).parent], home=tmp_path_factory.mktemp("home"), device="cpu")


def call(name, inp, settings):
    return get_registry().call(name, inp, ctx=Context(settings=settings))


def test_zero_shot_classification_of_held_out_scenes(world, settings):
    from vltools.world import vocab

    labels = [f"{c} {s}" for c in vocab.COLOUR_NAMES for s in vocab.SHAPES]  # 88 classes, chance 1.1%
    inp = {"images": [p for p, _, _ in world], "labels": labels, "clip": "demo-shapes"}  # v1: the shapes model
    out = call("image.classify", inp, settings)
    right = [r.label == f"{c} {s}" for r, (_, c, s) in zip(out.results, world, strict=True)]
    assert np.mean(right) >= 0.75, [(r.label, c, s) for r, (_, c, s) in zip(out.results, world, strict=True)]
    for r in out.results:
        assert sum(r.scores.values()) == pytest.approx(1.0, abs=1e-4)


def test_text_to_image_and_image_to_image_search(world, settings):
    from pathlib import Path

    call("image.index", {"collection": "w", "paths": [str(Path(world[0][0]).parent)], "create": True,
                         "clip": "demo-shapes"}, settings)
    hits_right = 0
    for _path, colour, shape in world:
        hits = call("image.search", {"collection": "w", "query": f"a {colour} {shape}", "k": 1}, settings).hits
        top = next(w for w in world if str(Path(w[0]).resolve()) == hits[0].path)
        hits_right += (top[1], top[2]) == (colour, shape)
    assert hits_right / len(world) >= 0.75
    same = 0
    for path, colour, shape in world:
        hits = call("image.search", {"collection": "w", "image": path, "k": 1}, settings).hits
        top = next(w for w in world if str(Path(w[0]).resolve()) == hits[0].path)
        same += top[1] == colour or top[2] == shape  # nearest other image shares colour or shape
    assert same / len(world) >= 0.5


def test_clip_score_prefers_the_right_caption(world, settings):
    pairs, wrong = [], []
    for path, colour, shape in world:
        other = next(s for s in ("circle", "square", "triangle", "star") if s != shape)
        pairs.append({"image": path, "text": f"a {colour} {shape}"})
        wrong.append({"image": path, "text": f"a {colour} {other}"})
    out = call("clip.score", {"pairs": pairs + wrong, "clip": "demo-shapes"}, settings)
    n = len(world)
    better = sum(out.scores[i] > out.scores[n + i] for i in range(n))
    assert better / n >= 0.8


def test_demo_loads_offline_and_encodes_100_images_in_a_fresh_process(tmp_path):
    code = (
        "import numpy as np\nfrom PIL import Image\n"
        "from vltools.core.settings import Settings\nfrom vltools.models.clip import get_clip\n"
        "b = get_clip('demo', Settings(device='cpu'))\n"
        "rng = np.random.default_rng(0)\n"
        "ims = [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in range(100)]\n"
        "e = b.encode_images(ims)\nt, _ = b.encode_texts(['a red circle'])\n"
        "import json; print(json.dumps([list(e.shape), float(np.linalg.norm(e, axis=1).min()), b.spec]))"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLTOOLS_HOME": str(tmp_path),
           "HF_HOME": str(tmp_path / "no_hf_cache")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shape, min_norm, spec = json.loads(proc.stdout.strip().splitlines()[-1])
    assert shape == [100, 384] and min_norm == pytest.approx(1.0, abs=1e-4) and spec == "demo"
