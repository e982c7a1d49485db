"""The synthetic world: determinism, labels that agree with captions and pixels, videos whose files
decode with PyAV and whose event times match what the frames show, monotone degradations."""

from __future__ import annotations

import re

import numpy as np
import pytest

from vltools.world import vocab
from vltools.world.degrade import KINDS, degrade
from vltools.world.scene import generate_scene, region_of
from vltools.world.video import generate_video, read_video, write_video


def test_same_seed_same_scene_other_seed_other_scene():
    a, b, c = generate_scene(11), generate_scene(11), generate_scene(12)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.captions == b.captions and a.labels == b.labels
    assert a.image.tobytes() != c.image.tobytes() or a.captions != c.captions


def test_render_seed_keeps_layout_and_captions():
    a, b = generate_scene(5), generate_scene(5, render_seed=1)
    assert a.captions == b.captions
    assert [o["position"] for o in a.labels["objects"]] == [o["position"] for o in b.labels["objects"]]
    assert a.image.tobytes() != b.image.tobytes()


@pytest.mark.parametrize("seed", range(40))
def test_labels_agree_with_captions(seed):
    sc = generate_scene(seed)
    objs = sc.labels["objects"]
    assert 1 <= len(objs) <= 3 and sc.labels["count"] == len(objs)
    full = sc.captions[0]
    for g in sc.labels["groups"]:
        members = [o for o in objs if o["group"] == sc.labels["groups"].index(g)]
        assert len(members) == g["count"]
        noun = g["shape"] if g["count"] == 1 else vocab.PLURALS[g["shape"]]
        assert f"{g['size']} {g['colour']} {noun}" in full
        if g["count"] > 1:
            assert vocab.NUMBER_WORDS[g["count"]] + " " in full
    for o in objs:
        assert o["shape"] in vocab.SHAPES and o["colour"] in vocab.COLOURS and o["size"] in vocab.SIZES
        assert o["position"] == region_of(o["x"], o["y"])
    # every caption names only shapes and colours that are in the scene
    for cap in sc.captions + sc.heldout_captions:
        for s in vocab.SHAPES:
            if re.search(rf"\b{s}(e?s)?\b", cap):
                assert s in {o["shape"] for o in objs}, (cap, objs)
        for c in vocab.COLOURS:
            if re.search(rf"\b{c}\b", cap):
                assert c in {o["colour"] for o in objs}, (cap, objs)
    for cap in sc.captions:  # training phrasings never use held-out words
        assert not any(re.search(rf"\b{w}\b", cap) for w in vocab.HELDOUT_SYNONYMS)


def test_pixels_show_the_labelled_colour_where_the_label_says():
    for seed in range(20):
        sc = generate_scene(seed, single=True, image_size=96, supersample=4, blur=0.0)
        (o,) = sc.labels["objects"]
        arr = np.asarray(sc.image).astype(int)
        x, y = int(o["x"] * 96), int(o["y"] * 96)
        # the centre pixel of every shape is inside it (all shapes are star-convex about the centre)
        centre = arr[y, x]
        assert np.abs(centre - np.array(o["rgb"])).max() <= 2, (o, centre)
        corner = arr[0, 0] if o["x"] > 0.2 or o["y"] > 0.2 else arr[-1, -1]
        assert np.abs(corner - np.array(o["rgb"])).max() > 20


def test_relation_captions_match_coordinates():
    seen = 0
    for seed in range(200):
        sc = generate_scene(seed, n_objects=2)
        for r in sc.labels["relations"]:
            a, b = sc.labels["objects"][r["a"]], sc.labels["objects"][r["b"]]
            if r["relation"] == "above":
                assert a["y"] < b["y"]
            elif r["relation"] == "to the left of":
                assert a["x"] < b["x"]
            seen += 1
    assert seen > 50


def test_video_events_times_and_file_round_trip(tmp_path):
    v = generate_video(3, n_events=3)
    assert len(v.events) == 3
    starts = [e["start"] for e in v.events]
    assert starts == sorted(starts)
    for e, nxt in zip(v.events, v.events[1:], strict=False):
        assert e["end"] < nxt["start"]
    assert v.events[-1]["end"] <= v.duration
    path = write_video(v.frames, tmp_path / "v.mp4", v.fps)
    frames, fps = read_video(path)
    assert len(frames) == len(v.frames) and fps == pytest.approx(v.fps)
    assert frames[0].shape == v.frames[0].shape
    err = np.abs(frames[len(frames) // 2].astype(int) - v.frames[len(frames) // 2].astype(int)).mean()
    assert err < 6  # lossy but faithful


def _changed(frames, i, j):
    return np.abs(frames[i].astype(int) - frames[j].astype(int)).sum() > 0


@pytest.mark.parametrize("kind", ["move", "appear", "disappear", "change_colour"])
def test_frames_change_only_during_events(kind):
    for seed in range(30):
        v = generate_video(seed, n_events=2, event_types=[kind])
        if v.events:
            break
    fps = v.fps
    active = [(e["start"], e["end"]) for e in v.events]
    assert v.events[0]["type"] == kind
    for i in range(len(v.frames) - 1):
        t0, t1 = i / fps, (i + 1) / fps
        inside = any(t1 > s and t0 < e for s, e in active)
        if not inside:
            assert not _changed(v.frames, i, i + 1), (kind, i, active)
    # and each event visibly changes something between its start and end frames
    for e in v.events:
        assert _changed(v.frames, e["start_frame"] - 1, min(e["end_frame"] + 1, len(v.frames) - 1))


def test_video_captions_describe_events():
    v = generate_video(8, n_events=3)
    for e in v.events:
        assert e["caption"] in v.caption
        if e["type"] == "change_colour":
            assert e["to"] in e["caption"]
    assert v.labels["n_frames"] == len(v.frames)


@pytest.mark.parametrize("kind", KINDS)
def test_degradations_are_monotone(kind):
    img = generate_scene(4, image_size=96, background_kind="plain").image
    clean = np.asarray(img).astype(float)
    dists = [np.abs(np.asarray(degrade(img, kind, lv, seed=1)).astype(float) - clean).mean() for lv in range(6)]
    assert dists[0] == 0
    assert all(b > a for a, b in zip(dists, dists[1:], strict=False)), dists


def test_degrade_rejects_bad_args():
    img = generate_scene(1).image
    with pytest.raises(ValueError):
        degrade(img, "sepia", 1)
    with pytest.raises(ValueError):
        degrade(img, "blur", 9)


def test_dataset_seeds_never_reach_training_or_evaluation_scenes():
    from vltools.world.dataset import image_seed, video_seed
    from vltools.world.splits import EVAL_SEED_BASE, TRAIN_SEED_BASE

    for seed in (0, 1, 2, 9, 2**31 - 1):
        for k in (0, 4999):
            for s in (image_seed(seed, k), video_seed(seed, k)):
                assert not TRAIN_SEED_BASE <= s < TRAIN_SEED_BASE + 1_000_000
                assert not EVAL_SEED_BASE <= s < EVAL_SEED_BASE + 1_000_000
