"""The learned object proposals (`vltools.models.objectness` + `_objects.decode`) and their use in vqa.zero_shot."""

from __future__ import annotations

import numpy as np
import pytest

import vltools
from vltools.core.errors import BackendUnavailable, InvalidInput, ToolError
from vltools.tools import _objects

SEEDS = 71_500_000  # used by no benchmark and not by the net's training (71,300,000+ / 71,400,000+)


def _disc(shape: tuple[int, int], cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def _maps(masks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Perfect net outputs for these visible masks: foreground 1 inside, centre-ness = normalised distance."""
    from scipy import ndimage as ndi

    fg = np.zeros(masks[0].shape, np.float32)
    cn = np.zeros(masks[0].shape, np.float32)
    for m in masks:
        d = ndi.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]
        cn = np.maximum(cn, d / d.max())
        fg[m] = 1.0
    return fg, cn


def test_decode_separates_touching_objects():
    shape = (64, 96)
    a = _disc(shape, 30, 32, 14)
    b = _disc(shape, 56, 32, 14) & ~a  # touches (overlaps) a: one foreground component
    c = _disc(shape, 74, 18, 10) & ~b
    from scipy import ndimage as ndi

    assert ndi.label(a | b | c)[1] == 1  # connected: a component count would say 1
    for masks, n in (([a], 1), ([a, b], 2), ([a, b, c], 3)):
        regs = _objects.decode(*_maps(masks))
        assert len(regs) == n
    regs = _objects.decode(*_maps([a, b]))
    left = regs[_objects.at_position(regs, "left")]
    assert left.mask[32, 25] and not left.mask[32, 60]
    assert left.centre[0] < 0.4 and left.box[0] == pytest.approx(16 / 96, abs=0.02)


def test_decode_keeps_coreless_pieces_and_drops_specks():
    shape = (64, 64)
    a = _disc(shape, 20, 20, 10)
    fg, cn = _maps([a])
    fg[40:52, 40:52] = 1.0  # foreground the centre-ness missed: still an object
    fg[2:4, 60:62] = 1.0  # 4 pixels, under MIN_AREA: a speck
    regs = _objects.decode(fg, cn)
    assert len(regs) == 2 and regs[0].area > regs[1].area
    assert regs[1].mask[45, 45]
    assert _objects.decode(np.zeros(shape), np.zeros(shape)) == []


def test_unknown_method_and_missing_weights_are_tool_errors(tmp_path):
    from PIL import Image

    from vltools.models import objectness

    with pytest.raises(InvalidInput) as e:
        _objects.regions(Image.new("RGB", (32, 32)), "boxes")
    assert "learned" in e.value.hint
    with pytest.raises(BackendUnavailable) as e:
        objectness.load(tmp_path / "none.safetensors")
    assert "train_objectness.py" in e.value.hint


def _count_set() -> list:
    """2- and 3-object scenes of train concepts as the world draws them (overlaps, varied backgrounds)."""
    from vltools.world import generate_object_scene

    return [generate_object_scene(SEEDS + k, n_objects=2 + k % 2, split="train") for k in range(40)]


def test_learned_counts_two_three_objects_better_than_superpixels():
    """On 40 world scenes of 2-3 objects (touching, overlapping, background-coloured objects included)
    the learned proposals count right far more often than the superpixel ones; swapping the learned
    method for the superpixels, or merging its instances, fails this."""
    scenes = _count_set()
    learned = np.mean([len(_objects.regions(sc.image, "learned")) == len(sc.masks) for sc in scenes])
    slic = np.mean([len(_objects.regions(sc.image, "superpixels")) == len(sc.masks) for sc in scenes])
    assert learned >= 0.7 and learned >= slic + 0.15, (learned, slic)


def test_learned_regions_cover_the_objects():
    """Each true object's visible pixels fall mostly in one learned region (masks, not just counts)."""
    scenes = _count_set()[:12]
    hits = total = 0
    for sc in scenes:
        regs = _objects.regions(sc.image, "learned")
        for vm in sc.visible_masks:
            if vm.sum() < 50:
                continue
            total += 1
            best = max((float((r.mask & vm).sum()) / vm.sum() for r in regs), default=0.0)
            hits += best >= 0.6
    assert hits >= 0.8 * total, (hits, total)


@pytest.fixture(scope="module")
def count_images(tmp_path_factory):
    d = tmp_path_factory.mktemp("learned_counts")
    out = []
    for sc in _count_set()[:12]:
        p = d / f"s{sc.seed}.png"
        sc.image.save(p)
        out.append((str(p), len(sc.masks)))
    return out


def test_vqa_counts_with_learned_proposals_for_the_demo_world(count_images, monkeypatch):
    """vqa.zero_shot with the demo CLIP uses the learned proposals by default ('auto': its declared world)
    and counts 2-3-object scenes better than with proposals: 'superpixels' on the same images."""
    calls = []
    real = _objects.learned_regions

    def spy(image, **kw):
        calls.append(image.size)
        return real(image, **kw)

    monkeypatch.setattr(_objects, "learned_regions", spy)
    right = {"auto": 0, "superpixels": 0}
    for path, n in count_images:
        for method in right:
            out = vltools.call("vqa.zero_shot", {"image": path, "question": "How many objects are there?",
                                                 "clip": "demo", "proposals": method})
            right[method] += out.answer == str(n)
    assert len(calls) == len(count_images)  # auto -> learned for every image; superpixels never calls it
    assert right["auto"] >= 8 and right["auto"] >= right["superpixels"] + 2, right


def test_vqa_rejects_an_unknown_proposal_method(count_images):
    with pytest.raises(ToolError):
        vltools.call("vqa.zero_shot", {"image": count_images[0][0], "question": "How many objects are there?",
                                       "clip": "demo", "proposals": "boxes"})


def test_demo_world_declares_learned_proposals():
    from vltools.tools import _vqa_engine as eng

    assert eng.declared_world("demo").proposals == "learned"
    assert eng.declared_world("demo-shapes").proposals == "superpixels"
    assert eng.declared_world("open_clip:ViT-B-32/laion2b_s34b_b79k") is None


def test_vqa_missing_weights_say_what_to_run(count_images, monkeypatch):
    from vltools.models import objectness

    monkeypatch.setattr(objectness, "default_path", lambda: objectness.Path("/nonexistent/objectness.safetensors"))
    with pytest.raises(BackendUnavailable) as e:
        vltools.call("vqa.zero_shot", {"image": count_images[0][0], "question": "How many objects are there?",
                                       "clip": "demo"})
    assert "train_objectness.py" in e.value.hint and "superpixels" in e.value.hint
    out = vltools.call("vqa.zero_shot", {"image": count_images[0][0], "question": "How many objects are there?",
                                         "clip": "demo", "proposals": "superpixels"})
    assert out.answer.isdigit()
