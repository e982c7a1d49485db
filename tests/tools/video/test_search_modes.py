"""video.search modes (TempMe P21, UCoFiA P34, GLSCL P45, Prompt Switch P31) vs mean pooling."""

from __future__ import annotations

import numpy as np
import pytest

import vltools
from vltools.tools.video import _modes


@pytest.fixture(scope="module")
def gallery(world_clips):
    vltools.call("video.index", {"collection": "modes", "paths": [c["path"] for c in world_clips], "create": True,
                                 "clip": "demo", "frames": 8})
    return world_clips


@pytest.mark.parametrize("mode", _modes.MODES)
def test_every_mode_finds_the_captioned_clip(gallery, mode):
    found = []
    for c in gallery:
        out = vltools.call("video.search", {"collection": "modes", "query": c["video"].caption, "k": 3,
                                            "mode": mode})
        assert out.mode == mode and len(out.hits) == 3 and out.cost is not None
        assert [h.rank for h in out.hits] == [1, 2, 3]
        found.append(c["path"] in [h.path for h in out.hits])
    assert np.mean(found) >= 0.6, mode


def test_costs_are_explicit(gallery):
    q = gallery[0]["video"].caption
    cost = {m: vltools.call("video.search", {"collection": "modes", "query": q, "mode": m}).cost for m in _modes.MODES}
    assert cost["mean"].features_per_video == 1 and cost["mean"].video_encodes == 0
    # Prompt Switch: video features computed at index time and reused; queries never encode frames.
    assert cost["prompt_switch"].video_encodes == 0 and cost["prompt_switch"].features_per_video == 8
    # TempMe: merging keeps fewer features than frames.
    assert 1 < cost["tempme"].features_per_video <= 1 + 8
    # UCoFiA's fine level encodes the coarse candidates' frames (dense cells) for this query.
    assert cost["ucofia"].video_encodes == 8 * cost["ucofia"].candidates
    assert cost["glscl"].text_encodes > 1  # the query and its content words


def test_tempme_merges_redundant_neighbours_only():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=16), rng.normal(size=16)
    frames = _modes.normalise(np.stack([a, a, a, a, b, b, b, b]))
    merged = _modes.tempme_merge(frames)
    assert len(merged) == 2
    assert np.allclose(merged[0], frames[0], atol=1e-5) and np.allclose(merged[1], frames[4], atol=1e-5)
    distinct = _modes.normalise(rng.normal(size=(6, 16)))
    assert len(_modes.tempme_merge(distinct)) == 6


def test_sinkhorn_balances_rows_and_columns():
    scores = np.array([[0.9, 0.8, 0.1], [0.85, 0.2, 0.3], [0.8, 0.3, 0.2]])  # item 0 is a hub
    p = np.exp(_modes.sinkhorn(scores, temperature=0.1, iters=50))
    assert np.allclose(p.sum(1), 1, atol=1e-3) and np.allclose(p.sum(0), 1, atol=0.05)
    assert p[0].argmax() == 1  # the hub no longer wins every row


def test_content_words_drop_function_words():
    assert _modes.content_words("the dog moves to the left, then a cat appears") == [
        "dog", "moves", "left", "cat", "appears"]


def test_unknown_mode_is_rejected(gallery):
    from vltools.core.errors import InvalidInput

    with pytest.raises(InvalidInput):
        vltools.call("video.search", {"collection": "modes", "query": "x", "mode": "magic"})
