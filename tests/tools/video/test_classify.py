"""video.classify (ViFi-CLIP, P28): zero-shot labels from pooled frame features."""

from __future__ import annotations

import pytest

import vltools
from vltools.core.errors import InvalidInput


@pytest.fixture(scope="module")
def single_object_clips(tmp_path_factory):
    from vltools.world import generate_object_video, write_video

    d = tmp_path_factory.mktemp("single")
    out = []
    for k in range(6):
        v = generate_object_video(4_400_000 + k, n_objects=1, n_events=1, event_types=("move",))
        out.append((str(write_video(v.frames, d / f"s{k}.mp4", v.fps)), v.labels["objects"][0]["concept"]))
    return out


def test_classifies_world_clips_by_their_object(single_object_clips):
    labels = sorted({c for _, c in single_object_clips})
    out = vltools.call("video.classify", {"videos": [p for p, _ in single_object_clips], "labels": labels})
    right = [r.label == c for r, (_, c) in zip(out.results, single_object_clips, strict=True)]
    assert sum(right) >= 4
    r = out.results[0]
    assert abs(sum(r.scores.values()) - 1) < 1e-4 and len(r.frame_labels) == len(r.times) == 8
    assert out.model == "demo"


def test_max_pooling_and_templates(single_object_clips):
    p, c = single_object_clips[0]
    labels = sorted({x for _, x in single_object_clips})
    out = vltools.call("video.classify", {"videos": [p], "labels": labels, "pooling": "max",
                                          "templates": ["a clip of a {}"]})
    assert out.templates == ["a clip of a {}"] and set(out.results[0].scores) == set(labels)


def test_bad_labels_and_templates(single_object_clips):
    p = single_object_clips[0][0]
    with pytest.raises(InvalidInput, match="distinct"):
        vltools.call("video.classify", {"videos": [p], "labels": ["dog", "dog"]})
    with pytest.raises(InvalidInput, match="exactly one"):
        vltools.call("video.classify", {"videos": [p], "labels": ["dog", "cat"], "templates": ["no slot"]})
