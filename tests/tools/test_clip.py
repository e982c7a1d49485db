"""clip.score through the registry on a tiny random open_clip model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vltools.core.context import Context
from vltools.core.errors import InvalidInput
from vltools.core.registry import get_registry
from vltools.core.settings import Settings

from ..models.tiny_clip import make_tiny_clip
from .test_image_tools import make_images


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return f"open_clip:local-dir:{make_tiny_clip(tmp_path_factory.mktemp('tiny_clip_score'))}"


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    return r


@pytest.fixture
def settings(root, tmp_path, spec):
    model_dir = Path(spec.split("local-dir:", 1)[1])  # model folders are read from VLTOOLS_MODEL_DIRS
    return Settings(allowed_roots=[root], model_dirs=[model_dir], home=tmp_path / "home", device="cpu")


def call(name, inp, settings):
    return get_registry().call(name, inp, ctx=Context(settings=settings))


def test_clip_score_pairs(root, settings, spec):
    from vltools.models.clip import get_clip

    a, b = (str(p) for p in make_images(root, 2))
    long = " ".join(["blue square"] * 20)
    pairs = [{"image": a, "text": "a red circle"}, {"image": a, "image2": a}, {"image": a, "image2": b},
             {"text": "x y", "text2": "x y"}, {"image": b, "text": long}]
    out = call("clip.score", {"pairs": pairs, "clip": spec}, settings)
    assert out.kinds == ["image-text", "image-image", "image-image", "text-text", "image-text"]
    assert out.truncated == [False, False, False, False, True] and "stretched" in out.notices[0]
    backend = get_clip(spec, settings)
    ims = backend.encode_images([Image.open(a).convert("RGB"), Image.open(b).convert("RGB")])
    txt, _ = backend.encode_texts(["a red circle"])
    cos = float(ims[0] @ txt[0])
    assert out.cosines[0] == pytest.approx(cos, abs=1e-5)
    assert out.scores[0] == pytest.approx(2.5 * max(cos, 0.0), abs=1e-5)
    assert out.scores[1] == pytest.approx(2.5, abs=1e-4) and out.scores[3] == pytest.approx(2.5, abs=1e-4)
    assert out.cosines[2] == pytest.approx(float(ims[0] @ ims[1]), abs=1e-5)
    assert out.mean == pytest.approx(np.mean(out.scores))
    w1 = call("clip.score", {"pairs": pairs[:1], "clip": spec, "w": 1.0}, settings)
    assert w1.scores[0] == pytest.approx(max(cos, 0.0), abs=1e-5)


def test_clip_score_rejects_bad_pairs(root, settings, spec):
    (a,) = (str(p) for p in make_images(root, 1))
    for bad in ({"image": a}, {"text": "x", "image2": a}, {"image": a, "text": "x", "text2": "y"}):
        with pytest.raises(InvalidInput, match="a pair is"):
            call("clip.score", {"pairs": [bad], "clip": spec}, settings)
    with pytest.raises(InvalidInput, match="exceed"):
        call("clip.score", {"pairs": [{"image": a, "text": " ".join(["word"] * 60)}], "clip": spec,
                            "long_text": "error"}, settings)


def test_model_is_a_deprecated_alias_of_clip(root, settings, spec):
    (a,) = (str(p) for p in make_images(root, 1))
    with pytest.warns(DeprecationWarning, match="use 'clip'"):
        old = call("clip.score", {"pairs": [{"image": a, "text": "x"}], "model": spec}, settings)
    assert old.scores == call("clip.score", {"pairs": [{"image": a, "text": "x"}], "clip": spec}, settings).scores
