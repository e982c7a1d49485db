"""metrics.diversity on a tiny random open_clip model (plumbing, errors) and the Schur-complement
entropy on constructed features (behaviour that cannot depend on a model)."""

from __future__ import annotations

import numpy as np
import pytest

from vltools.core.context import Context
from vltools.core.errors import InvalidInput
from vltools.core.registry import get_registry
from vltools.tools._image_math import l2n, matrix_entropy, schur_decomposition

from .test_image_understanding import make_images


def call(name, inp, settings):
    return get_registry().call(name, inp, ctx=Context(settings=settings))


def test_diversity_plumbing_and_errors(root, settings, spec):
    paths = make_images(root, 4)
    out = call("metrics.diversity", {"images": paths, "clip": spec}, settings)
    assert out.n == 4 and out.vendi == pytest.approx(np.exp(out.entropy)) and 1.0 <= out.vendi <= 4.0
    assert out.intrinsic_entropy is None
    both = call("metrics.diversity", {"images": paths, "prompts": ["a cat", "a dog", "a cat", "a car"], "clip": spec},
                settings)
    assert both.entropy == pytest.approx(out.entropy) and 0 <= both.prompt_share <= 1
    one = call("metrics.diversity", {"images": paths, "prompts": ["a cat"], "clip": spec}, settings)
    assert one.intrinsic_entropy is not None
    with pytest.raises(InvalidInput, match="3 prompts for 4 images") as e:
        call("metrics.diversity", {"images": paths, "prompts": ["a", "b", "c"], "clip": spec}, settings)
    assert e.value.details == {"prompts": 3, "images": 4}
    with pytest.raises(InvalidInput):
        call("metrics.diversity", {"images": paths[:1], "clip": spec}, settings)


def test_entropy_counts_distinct_directions():
    eye = np.eye(8)
    assert matrix_entropy(eye.T @ eye / 8) == pytest.approx(np.log(8))
    same = np.tile(eye[:1], (8, 1))
    assert matrix_entropy(same.T @ same / 8) == pytest.approx(0.0, abs=1e-9)


def test_schur_complement_removes_what_the_prompts_explain():
    rng = np.random.default_rng(0)
    t = l2n(rng.normal(size=(200, 16)))
    # images = their prompt's direction plus (a) nothing or (b) independent variation
    x_text_only = t.copy()
    x_intrinsic = l2n(t + 0.8 * l2n(rng.normal(size=(200, 16))))
    low = matrix_entropy(schur_decomposition(x_text_only, t)["schur"], normalise=False)
    high = matrix_entropy(schur_decomposition(x_intrinsic, t)["schur"], normalise=False)
    assert np.trace(schur_decomposition(x_text_only, t)["schur"]) < 0.05
    assert np.trace(schur_decomposition(x_intrinsic, t)["schur"]) > 0.1 and high > low
