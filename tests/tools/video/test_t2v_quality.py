"""t2v.score (T2VScore, P55) and t2v.stream (STREAM, P56) against planted defects on world videos."""

from __future__ import annotations

import pytest

import vltools

from .conftest import video_world_helpers


@pytest.fixture(scope="module")
def defects(tmp_path_factory, world_clips):
    """{name: [paths]} for clean clips and each planted defect (3 clips each)."""
    from vltools.world import write_video

    vw = video_world_helpers()
    d = tmp_path_factory.mktemp("defects")
    out: dict[str, list[str]] = {"clean": [c["path"] for c in world_clips[:3]]}
    for name in vw.DEFECTS:
        out[name] = []
        for k, c in enumerate(world_clips[:3]):
            other = world_clips[(k + 4) % len(world_clips)]["video"].frames
            frames = vw.plant_defect(c["video"].frames, name, k, other)
            out[name].append(str(write_video(frames, d / f"{name}{k}.mp4", c["video"].fps)))
    return out


@pytest.fixture(scope="module")
def scores(defects, world_clips):
    return {name: [vltools.call("t2v.score", {"video": p, "prompt": world_clips[k]["video"].caption})
                   for k, p in enumerate(paths)] for name, paths in defects.items()}


def _mean(rows, key):
    return sum(getattr(r.subscores, key) if hasattr(r.subscores, key) else getattr(r, key) for r in rows) / len(rows)


@pytest.mark.heavy
@pytest.mark.parametrize(("defect", "moved"), [("frozen", "motion"), ("jitter", "jitter"), ("flicker", "flicker"),
                                                ("wrong_content", "alignment")])
def test_each_defect_moves_its_own_subscore(scores, defect, moved):
    clean, bad = scores["clean"], scores[defect]
    for c, b in zip(clean, bad, strict=True):  # clip by clip
        assert _mean([b], moved) < _mean([c], moved) - 0.05, (defect, moved)
    if defect == "wrong_content":  # another clip: its own quality differs; alignment is what must drop
        return
    # a pixel-level defect on the same clip: its sub-score is the one that moves most
    keys = ["motion", "flicker", "jitter", "temporal_consistency", "sharpness", "alignment"]
    drops = {k: _mean(clean, k) - _mean(bad, k) for k in keys}
    assert max(drops, key=drops.get) == moved, drops


def test_score_combines_alignment_and_quality(scores):
    r = scores["clean"][0]
    assert r.score == pytest.approx((r.alignment + r.quality) / 2, abs=1e-3)
    assert 0 <= r.quality <= 1 and r.frames > 8 and set(r.raw) >= {"static_fraction", "jitter_pixels"}


@pytest.mark.heavy
def test_stream_temporal_flags_shaky_sets_and_spatial_flags_wrong_content(defects, world_clips):
    real = [c["path"] for c in world_clips[3:]]
    out = {n: vltools.call("t2v.stream", {"videos": paths, "real": real}) for n, paths in defects.items()}
    assert out["flicker"].stream_t < out["clean"].stream_t - 0.2
    assert out["jitter"].stream_t < out["clean"].stream_t - 0.2
    assert out["flicker"].per_video[0].high_frequency > out["clean"].per_video[0].high_frequency
    assert 0 <= out["clean"].stream_f <= 1 and 0 <= out["clean"].stream_d <= 1
    assert set(out["clean"].real_stats) == {"skewness", "high_frequency", "energy"}
