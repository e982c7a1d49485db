"""embed.defocus on a tiny random open_clip model (plumbing, errors) and on constructed features."""

from __future__ import annotations

import numpy as np
import pytest

from vltools.core.context import Context
from vltools.core.errors import InvalidInput
from vltools.core.registry import get_registry

from .test_image_understanding import make_images


def call(name, inp, settings):
    return get_registry().call(name, inp, ctx=Context(settings=settings))


def test_project_removes_the_concept_direction(root, settings, spec):
    paths = make_images(root, 3)
    out = call("embed.defocus", {"images": paths, "concept": "a red circle", "method": "project", "clip": spec},
               settings)
    for r in out.results:
        assert abs(r.similarity_after) < 1e-5 and np.linalg.norm(r.vector) == pytest.approx(1.0, abs=1e-5)
    half = call("embed.defocus", {"images": paths, "concept": "a red circle", "method": "project", "strength": 0.5,
                                  "clip": spec}, settings)
    for a, b in zip(half.results, out.results, strict=True):
        assert abs(a.similarity_after) > abs(b.similarity_after) or abs(a.similarity_before) < 1e-6


def test_schur_needs_enough_pairs(root, settings, spec):
    paths = make_images(root, 8)
    with pytest.raises(InvalidInput, match="at least 8 image-caption pairs") as e:
        call("embed.defocus", {"images": paths[:3], "concept": "x", "captions": ["a", "b", "c"], "clip": spec},
             settings)
    assert e.value.hint and e.value.details["min_pairs"] == 8
    with pytest.raises(InvalidInput, match="9 captions for 8 images"):
        call("embed.defocus", {"images": paths, "concept": "x", "captions": ["a"] * 9, "clip": spec}, settings)
    caps = [f"a photo of thing {i}" for i in range(8)]
    out = call("embed.defocus", {"images": paths, "concept": "thing", "captions": caps, "clip": spec}, settings)
    assert out.method == "schur" and len(out.results) == 8


def test_schur_defocus_on_constructed_features():
    """Images = sum of a concept part (explained by their captions) and a background part: defocusing the
    concept through the cross-covariance map removes the concept and keeps the background."""
    from vltools.tools._image_math import l2n, schur_decomposition

    rng = np.random.default_rng(1)
    d = 12
    concepts = l2n(rng.normal(size=(4, d)))
    backgrounds = l2n(rng.normal(size=(3, d)))
    ci = rng.integers(0, 4, 300)
    bi = rng.integers(0, 3, 300)
    x = l2n(concepts[ci] + backgrounds[bi])
    t = concepts[ci]  # the captions name the concept only
    m = schur_decomposition(x, t, 1e-3)["map"]
    out = l2n(x - (m @ concepts[0])[None, :])
    sel = ci == 0
    assert np.mean(out[sel] @ concepts[0]) < np.mean(x[sel] @ concepts[0]) - 0.2
    kept = np.mean([out[i] @ backgrounds[bi[i]] for i in np.flatnonzero(sel)])
    assert kept > np.mean([x[i] @ backgrounds[bi[i]] for i in np.flatnonzero(sel)])
