"""vqa.zero_shot counting and 'what is on the left' by object proposals (`tools/_objects.py`), on world v2 scenes."""

from __future__ import annotations

import numpy as np
import pytest

import vltools
from vltools.tools import _objects

SEEDS = 29_700_000  # not used by the benchmarks' dev/test scenes (29,600,000+)


def _scenes(n_objects: int, k: int, background: str | None = None, concept_names: list[str] | None = None,
            start: int = 0) -> list:
    from vltools.world import generate_object_scene

    return [generate_object_scene(SEEDS + 1000 * n_objects + start + i, n_objects=n_objects, split="train",
                                  background=background, concept_names=concept_names, overlap_p=0.0)
            for i in range(k)]


def test_object_regions_count_world_scenes():
    """1-3 objects on varied backgrounds (plain, gradients, textures, places): the proposal count is the
    object count in most scenes, and it follows the true count (a constant answer scores ~1/3)."""
    truth, found = [], []
    for n in (1, 2, 3):
        for sc in _scenes(n, 8):
            truth.append(n)
            found.append(len(_objects.object_regions(sc.image)))
    truth_a, found_a = np.array(truth), np.array(found)
    assert (truth_a == found_a).mean() >= 0.6, list(zip(truth, found, strict=True))
    for n in (1, 2, 3):
        assert np.median(found_a[truth_a == n]) == n, (n, found_a[truth_a == n])


def test_at_position_picks_the_named_region():
    def region(cx: float, cy: float) -> _objects.ObjectRegion:
        return _objects.ObjectRegion(np.zeros((4, 4), bool), (cx - 0.1, cy - 0.1, cx + 0.1, cy + 0.1), (cx, cy), 0.04)

    regs = [region(0.5, 0.2), region(0.15, 0.6), region(0.85, 0.9)]
    assert _objects.at_position(regs, "left") == 1
    assert _objects.at_position(regs, "right") == 2
    assert _objects.at_position(regs, "top") == 0
    assert _objects.at_position(regs, "bottom") == 2
    assert _objects.at_position(regs, "bottom left") == 1
    assert _objects.at_position(regs, "top left") == 0
    assert _objects.at_position([], "left") is None


def test_crops_cut_each_region_out_on_grey():
    sc = _scenes(2, 1, background="plain")[0]
    regs = _objects.object_regions(sc.image)
    crops = _objects.crops(sc.image, regs)
    assert len(crops) == len(regs) >= 1
    arr = np.asarray(crops[0])
    assert (arr == 128).all(axis=2).any()  # outside the mask is grey


def test_naming_views_keep_the_object_on_its_own_background():
    """The views CLIP names an object from: square boxes on the image's own pixels (no grey), growing with
    the margin, plus the mask on the image's border colour; all contain the object's own pixels."""
    sc = _scenes(1, 1, background="plain")[0]
    img = sc.image.convert("RGB")
    reg = _objects.object_regions(img)[0]
    arr = np.asarray(img)
    bg = _objects.border_colour(img)
    views = _objects.naming_views(img, reg)
    assert len(views) == len(_objects.NAMING_BOX_MARGINS) + 1
    w, h = img.size
    longer = max((reg.box[2] - reg.box[0]) * w, (reg.box[3] - reg.box[1]) * h)
    sides = []
    for m, v in zip(_objects.NAMING_BOX_MARGINS, views, strict=False):
        va = np.asarray(v)
        assert va.shape[0] == va.shape[1]  # square: CLIP's centre crop keeps all of it
        assert abs(va.shape[0] - longer * (1 + 2 * m)) <= 2
        assert np.abs(va[0, 0].astype(int) - bg.astype(int)).max() <= 10  # corner: the scene's own background
        sides.append(va.shape[0])
    assert sides == sorted(sides) and sides[0] < sides[-1]
    masked = np.asarray(views[-1])
    assert (masked == bg).all(axis=2).mean() > 0.2  # outside the mask: the border colour, not grey
    assert not (bg == 128).all()
    # the object's own pixels are in every view (its mean colour differs from the background's)
    obj = arr[reg.mask].mean(0)
    for v in views:
        va = np.asarray(v).reshape(-1, 3).astype(float)
        assert np.linalg.norm(va - obj, axis=1).min() < 20


def test_what_is_on_the_left_names_the_leftmost_objects_views(left_right_scenes, monkeypatch):
    """'What is on the left?' names the leftmost proposal from `naming_views` (not the grey crop, not
    the image half): a spy sees the leftmost region, and the answer's box is that region's box."""
    from PIL import Image

    seen = []
    real = _objects.naming_views

    def spy(image, region):
        seen.append(region)
        return real(image, region)

    monkeypatch.setattr(_objects, "naming_views", spy)
    path = left_right_scenes[0][0]
    for side in ("left", "right"):
        seen.clear()
        out = vltools.call("vqa.zero_shot", {"image": path, "question": f"What is on the {side}?", "clip": "demo",
                                             "candidates": ["dog", "banana", "car"]})
        regs = _objects.regions(Image.open(path), "learned")  # the demo CLIP's world: learned proposals
        want = regs[_objects.at_position(regs, side)]
        assert len(seen) == 1 and seen[0].box == want.box
        assert out.regions[0].box == pytest.approx(want.box)


@pytest.fixture(scope="module")
def left_right_scenes(tmp_path_factory):
    """Two-object scenes of well-known train concepts, the objects at least 0.3 of the width apart."""
    out = []
    d = tmp_path_factory.mktemp("vqa_objects")
    pairs = [["dog", "banana"], ["car", "umbrella"], ["rocket", "fish"], ["bicycle", "house"]]
    for i, names in enumerate(pairs):
        for sc in _scenes(2, 12, background="plain", concept_names=names, start=100 * i):
            objs = sorted(sc.labels["objects"], key=lambda o: o["x"])
            if objs[1]["x"] - objs[0]["x"] >= 0.3:
                p = d / f"lr_{sc.seed}.png"
                sc.image.save(p)
                out.append((str(p), objs[0]["concept"], objs[1]["concept"]))
                break
    assert len(out) >= 3
    return out


def test_names_the_object_on_the_left_and_on_the_right(left_right_scenes):
    cands = ["dog", "banana", "car", "umbrella", "rocket", "fish", "bicycle", "house"]
    right_left = right_right = 0
    for path, left, right in left_right_scenes:
        a = vltools.call("vqa.zero_shot", {"image": path, "question": "What is on the left?", "clip": "demo",
                                           "candidates": cands})
        b = vltools.call("vqa.zero_shot", {"image": path, "question": "What is on the right?", "clip": "demo",
                                           "candidates": cands})
        right_left += a.answer == left
        right_right += b.answer == right
        assert a.regions and a.regions[0].box[0] < b.regions[0].box[0]  # the left object's box is left of the right's
    n = len(left_right_scenes)
    assert right_left >= n - 1 and right_right >= n - 1, (right_left, right_right, n)


def test_counts_one_to_three_objects(tmp_path):
    """Plain backgrounds, no overlap: most counts right (touching objects merge, thin parts can split)."""
    right = total = 0
    for n in (1, 2, 3):
        for sc in _scenes(n, 4, background="plain", start=500):
            p = tmp_path / f"c_{sc.seed}.png"
            sc.image.save(p)
            out = vltools.call("vqa.zero_shot", {"image": str(p), "question": "How many objects are there?",
                                                 "clip": "demo"})
            right += out.answer == str(n)
            total += 1
    assert right >= 8, (right, total)  # 12 scenes; one fixed answer gets 4


def test_pieces_one_pixel_apart_are_one_object():
    fg = np.zeros((20, 30), bool)
    fg[5:15, 2:10] = True
    fg[5:15, 11:19] = True  # one pixel of gap from the first piece
    fg[5:15, 22:28] = True  # three pixels of gap from the second
    comp, k = _objects.components(fg, 1)
    assert len(np.unique(comp[fg])) == 2 and (comp[~fg] == 0).all()
    assert comp[8, 5] == comp[8, 15] != comp[8, 25]
    comp0, _ = _objects.components(fg, 0)
    assert len(np.unique(comp0[fg])) == 3
    assert _objects.LINK == 1
