"""The objects theme: the concepts table and its split, deterministic scenes whose masks, boxes,
occlusion, captions and QA agree with the pixels, and videos whose tracks agree with their events."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageFilter

from vltools.world import concepts
from vltools.world.objects import generate_object_scene, mask_bbox, rle_decode, rle_encode
from vltools.world.objects_video import EVENT_TYPES, generate_object_video


def test_concepts_table_shape_split_and_images():
    rows = concepts()
    assert len(rows) >= 500
    names = [r["name"] for r in rows]
    assert len(set(names)) == len(names)
    for r in rows:
        assert set(r) >= {"name", "aliases", "category", "subcategory", "split", "image"}
        assert isinstance(r["aliases"], list) and all(isinstance(a, str) for a in r["aliases"])
        assert r["category"] and r["subcategory"] and r["split"] in ("train", "heldout")
    held = [r for r in rows if r["split"] == "heldout"]
    assert 0.12 <= len(held) / len(rows) <= 0.18
    by = {r["name"]: r for r in rows}
    for r in rows:  # related concepts ("cat face" ~ "cat") share a split, so nothing leaks through a near-duplicate
        for o in r["related"]:
            assert by[o]["split"] == r["split"], (r["name"], o)
    assert by["dog"]["category"] == "animal" and by["dog"]["subcategory"] == "mammal"
    assert "cat" in by["cat face"]["related"]
    assert {r["name"] for r in concepts("train")} | {r["name"] for r in concepts("heldout")} == set(names)
    for r in rows[::25]:
        with Image.open(r["image"]) as im:
            assert im.mode == "RGBA" and im.size == (64, 64)
            alpha = np.asarray(im)[..., 3]
        assert 0 < (alpha >= 128).mean() < 1  # a real cut-out: some object, some transparency
    with pytest.raises(ValueError):
        concepts("test")


def test_same_seed_same_scene_other_seed_other_scene():
    a, b, c = generate_object_scene(5), generate_object_scene(5), generate_object_scene(6)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.captions == b.captions and a.labels == b.labels and a.qa == b.qa
    assert a.image.tobytes() != c.image.tobytes()


def test_rle_round_trip():
    rng = np.random.default_rng(0)
    for m in (rng.random((7, 9)) > 0.5, np.ones((3, 4), bool), np.zeros((2, 2), bool)):
        assert (rle_decode(rle_encode(m)) == m).all()


def test_training_split_never_draws_held_out_concepts():
    held = {r["name"] for r in concepts("heldout")}
    for seed in range(150):
        sc = generate_object_scene(seed)
        seen = {o["concept"] for o in sc.labels["objects"]}
        assert not seen & held
        assert all(o["split"] == "train" for o in sc.labels["objects"])
        for cap in sc.captions:
            assert not any(f" {h}" in f" {cap}" and h not in " ".join(seen) for h in held if len(h) > 3), cap
    for seed in range(20):
        sc = generate_object_scene(seed, split="heldout")
        assert {o["concept"] for o in sc.labels["objects"]} <= held


@pytest.mark.parametrize("seed", range(12))
def test_masks_and_boxes_agree_with_the_pixels(seed):
    sc = generate_object_scene(seed, background="plain", blur=0.0, overlap_p=0.0)
    arr = np.asarray(sc.image, dtype=np.int16)
    bg = arr[0, 0] if not any(m[0, 0] for m in sc.masks) else arr[-1, -1]
    union = np.zeros(arr.shape[:2], bool)
    for o, m, v in zip(sc.labels["objects"], sc.masks, sc.visible_masks, strict=True):
        assert (rle_decode(o["mask"]) == m).all()
        assert o["bbox"] == mask_bbox(m) and o["area"] == int(m.sum())
        assert o["visible_fraction"] == pytest.approx(v.sum() / m.sum(), abs=1e-3)
        union |= m
    # every opaque sprite pixel is in a mask, so pixels more than 6 px from every mask (beyond soft,
    # alpha < 128 edges and shadows) are untouched background
    far = ~np.asarray(Image.fromarray(union.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(13))).astype(bool)
    assert (np.abs(arr[far] - bg).max(axis=-1) == 0).mean() >= 0.999
    # and masked pixels mostly show the object, not the plain background
    assert (np.abs(arr[union] - bg).max(axis=-1) > 0).mean() > 0.9


def test_occlusion_is_recorded():
    found = 0
    for seed in range(60):
        sc = generate_object_scene(seed, n_objects=4, overlap_p=1.0, scale=(0.4, 0.5))
        objs = sc.labels["objects"]
        for i, o in enumerate(objs):
            later = np.zeros_like(sc.masks[i])
            for j in o["occluded_by"]:
                assert j > i and (sc.masks[i] & sc.masks[j]).any()
                later |= sc.masks[j]
            assert (sc.visible_masks[i] == (sc.masks[i] & ~later)).all()
            if o["occluded_by"]:
                found += 1
                assert o["visible_fraction"] < 1.0
    assert found >= 10


@pytest.mark.parametrize("seed", range(25))
def test_captions_and_questions_agree_with_labels(seed):
    sc = generate_object_scene(seed, tint_p=0.3)
    objs = sc.labels["objects"]
    names = {o["concept"] for o in objs}
    for o in objs:
        assert o["concept"] in sc.captions[0]
    by_type: dict[str, list] = {}
    for q in sc.qa:
        by_type.setdefault(q["type"], []).append(q)
    assert any(q["question"] == "How many objects are there?" and q["answer"] == str(len(objs)) for q in sc.qa)
    for q in by_type.get("exists", []):
        named = [n for n in names if q["question"].endswith(f" {n}?")]
        assert (q["answer"] == "yes") == bool(named), q
    for q in by_type.get("left", []):
        assert q["answer"] == min(objs, key=lambda o: o["x"])["concept"]
    for q in by_type.get("colour", []):
        assert any(o["tint"] == q["answer"] and q["question"] == f"What colour is the {o['concept']}?" for o in objs)
    if sc.labels["place"]:
        assert any(q["type"] == "place" for q in sc.qa)
    json.dumps(sc.labels)  # labels are plain JSON


def test_tint_and_background_on_request():
    sc = generate_object_scene(3, concept_names=["lemon"], tint="purple", background="grass")
    assert sc.labels["objects"][0]["tint"] == "purple" and sc.labels["background"] == "grass"
    assert "a purple lemon" in sc.captions[0] and any("on the grass" in c for c in sc.captions)
    rgb = np.asarray(sc.image, dtype=np.float32)[sc.masks[0]]
    r, g, b = rgb.mean(0)
    assert b > g and r > g  # purple, not a yellow lemon
    plain = generate_object_scene(3, concept_names=["lemon"], background="grass")
    r, g, b = np.asarray(plain.image, dtype=np.float32)[plain.masks[0]].mean(0)
    assert r > b and g > b  # the untinted lemon is yellow


def test_cooccurrence_control():
    boats = [generate_object_scene(s, concept_names=["sailboat"], cooccurrence=1.0).labels["background"]
             for s in range(10)]
    assert set(boats) == {"water"}
    mixed = {generate_object_scene(s, concept_names=["sailboat"], cooccurrence=0.0).labels["background"]
             for s in range(30)}
    assert len(mixed) >= 5


def _centre(box):
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


@pytest.mark.parametrize("seed", range(30))
def test_video_tracks_agree_with_events(seed):
    v = generate_object_video(seed)
    n = len(v.frames)
    assert n == v.labels["n_frames"] and len(v.tracks) == n
    assert v.frames[0].shape == (96, 128, 3)
    ids_concept = {}
    for ft in v.tracks:
        for t in ft:
            assert ids_concept.setdefault(t["id"], t["concept"]) == t["concept"]  # identity is stable
            x0, y0, x1, y1 = t["bbox"]
            assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 96
    prev_end = -1.0
    for e in v.events:
        assert e["type"] in EVENT_TYPES and e["start"] < e["end"] and e["start"] >= prev_end
        prev_end = e["end"]
        before = {t["id"]: t for t in v.tracks[max(0, e["start_frame"] - 1)]}
        after = {t["id"]: t for t in v.tracks[e["end_frame"]]} if e["end"] * v.fps <= n - 1 else None
        k = e["object"]
        assert e["concept"] in e["caption"]
        if e["type"] in ("appear", "enter"):
            assert k not in before
            if after is not None:
                assert k in after
        if e["type"] in ("leave", "disappear"):
            assert k in before
            if after is not None and e["end_frame"] + 1 < n:
                assert k not in {t["id"] for t in v.tracks[e["end_frame"] + 1]}
        if e["type"] == "move" and after is not None:
            (bx, by), (ax, ay) = _centre(before[k]["bbox"]), _centre(after[k]["bbox"])
            dx, dy = ax - bx, ay - by
            direction = e["direction"]
            moved = {"left": -dx, "right": dx, "up": -dy, "down": dy}[direction]
            assert moved >= 0 and moved >= max(abs(dx), abs(dy)) - 1, (e, dx, dy)
        if e["type"] == "change_tint" and after is not None:
            assert after[k]["tint"] == e["to"]
        if e["type"] == "approach" and after is not None and e["other"] in after and e["other"] in before:
            d0 = np.hypot(*np.subtract(_centre(before[k]["bbox"]), _centre(before[e["other"]]["bbox"])))
            d1 = np.hypot(*np.subtract(_centre(after[k]["bbox"]), _centre(after[e["other"]]["bbox"])))
            assert d1 <= d0 + 1


def test_video_is_deterministic_and_covers_every_event_type():
    a, b = generate_object_video(4), generate_object_video(4)
    assert all((x == y).all() for x, y in zip(a.frames, b.frames, strict=True)) and a.labels == b.labels
    seen = set()
    for s in range(40):
        seen |= {e["type"] for e in generate_object_video(s, n_events=4).events}
    assert seen == set(EVENT_TYPES)


def test_world_generate_objects_theme(tmp_path):
    from vltools.core.context import Context
    from vltools.core.errors import InvalidInput
    from vltools.core.registry import get_registry
    from vltools.core.settings import Settings

    settings = Settings(allowed_roots=[tmp_path], home=tmp_path / "home")
    ctx = Context(settings=settings)
    reg = get_registry()
    out = reg.call("world.generate", {"out_dir": str(tmp_path / "o"), "images": 3, "videos": 1, "seed": 2,
                                      "theme": "objects", "split": "heldout"}, ctx=ctx)
    recs = [json.loads(line) for line in open(out.labels)]
    held = {r["name"] for r in concepts("heldout")}
    assert [r["kind"] for r in recs] == ["image"] * 3 + ["video"]
    for r in recs[:3]:
        assert r["theme"] == "objects" and r["qa"]
        objs = r["labels"]["objects"]
        assert {o["concept"] for o in objs} <= held
        with Image.open(tmp_path / "o" / r["file"]) as im:
            assert rle_decode(objs[0]["mask"]).shape == (im.height, im.width)
    assert recs[3]["labels"]["tracks"]
    reg.call("world.generate", {"out_dir": str(tmp_path / "o2"), "images": 3, "seed": 2, "theme": "objects",
                                        "split": "heldout"}, ctx=ctx)
    assert (tmp_path / "o" / "images" / "img_000001.png").read_bytes() == (
        tmp_path / "o2" / "images" / "img_000001.png").read_bytes()
    shapes = reg.call("world.generate", {"out_dir": str(tmp_path / "s"), "images": 2, "seed": 2}, ctx=ctx)
    srec = [json.loads(line) for line in open(shapes.labels)]
    assert srec[0]["theme"] == "shapes" and "qa" not in srec[0] and "shape" in srec[0]["labels"]["objects"][0]
    with pytest.raises(InvalidInput):
        reg.call("world.generate", {"out_dir": str(tmp_path / "x"), "images": 1, "tint": "red"}, ctx=ctx)


def _dominant_hz(samples: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(spec.argmax())])


def test_video_audio_cues_are_muxed_and_decode_to_each_events_category_tone(tmp_path):
    from vltools.core.context import Context
    from vltools.core.registry import get_registry
    from vltools.core.settings import Settings
    from vltools.world.objects_video import CATEGORY_TONES
    from vltools.world.video import read_audio

    ctx = Context(settings=Settings(allowed_roots=[tmp_path], home=tmp_path / "home"))
    out = get_registry().call("world.generate", {"out_dir": str(tmp_path / "a"), "images": 0, "videos": 2, "seed": 5,
                                                 "theme": "objects", "audio": True}, ctx=ctx)
    tones = sorted(CATEGORY_TONES.values())
    checked = 0
    for rec in map(json.loads, open(out.labels)):
        cues = rec["labels"]["audio"]["cues"]
        cats = {o["id"]: o["category"] for o in rec["labels"]["final_objects"]}
        assert [c["event"] for c in cues] == [e["index"] for e in rec["events"]]
        samples, rate = read_audio(tmp_path / "a" / rec["file"])
        assert rate == rec["labels"]["audio"]["sample_rate"]
        assert abs(len(samples) / rate - rec["duration"]) < 0.2
        for cue, ev in zip(cues, rec["events"], strict=True):
            assert cue["category"] == cats[ev["object"]] and cue["frequency_hz"] == CATEGORY_TONES[cue["category"]]
            assert (cue["start"], cue["end"]) == (ev["start"], ev["end"])
            part = samples[int((cue["start"] + 0.05) * rate) : int((cue["end"] - 0.05) * rate)]
            heard = _dominant_hz(part, rate)
            assert min(tones, key=lambda t: abs(t - heard)) == cue["frequency_hz"]  # the category, read off the sound
            assert np.sqrt(np.mean(part**2)) > 0.1
            checked += 1
        quiet = samples[: int((cues[0]["start"] - 0.05) * rate)]  # before the first event: silence
        assert len(quiet) and np.sqrt(np.mean(quiet**2)) < 0.01
    assert checked >= 2
    silent = get_registry().call("world.generate", {"out_dir": str(tmp_path / "s"), "images": 0, "videos": 1,
                                                    "seed": 5, "theme": "objects"}, ctx=ctx)
    rec = json.loads(open(silent.labels).readline())
    assert "audio" not in rec["labels"]
    with pytest.raises(ValueError):
        read_audio(tmp_path / "s" / rec["file"])
