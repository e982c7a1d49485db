"""segment.open_vocab: masks from the demo CLIP on world scenes with exact masks (dense beats the plain
baseline, proposals find objects), the CLI face, label expansion, the pieces of P27/P48, errors, and
plumbing on a tiny random open_clip ViT."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from vltools.core.context import Context
from vltools.core.errors import InvalidInput
from vltools.core.registry import get_registry
from vltools.core.settings import Settings
from vltools.world.objects import rle_decode

SEED = 8_130_000  # away from the demo CLIP's training seeds


def call(name, inp, settings):
    return get_registry().call(name, inp, ctx=Context(settings=settings))


def truth(sc) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for o, m in zip(sc.labels["objects"], sc.visible_masks, strict=True):
        out[o["concept"]] = out.get(o["concept"], np.zeros_like(m)) | m
    return out


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Six two-object scenes of train concepts on plain backgrounds: [(path, {concept: mask})]."""
    from vltools.world import generate_object_scene

    folder = tmp_path_factory.mktemp("seg")
    out = []
    for i in range(6):
        sc = generate_object_scene(SEED + i, n_objects=2, image_size=128, background="plain", overlap_p=0.0,
                                   repeat_p=0.0)
        p = folder / f"s{i}.png"
        sc.image.save(p)
        out.append((str(p), truth(sc)))
    return out


@pytest.fixture(scope="module")
def demo_settings(scenes, tmp_path_factory):
    from pathlib import Path

    return Settings(allowed_roots=[Path(scenes[0][0]).parent], home=tmp_path_factory.mktemp("home"), device="cpu")


def miou(scenes, settings, **kw) -> float:
    ious = []
    for path, gt in scenes:
        out = call("segment.open_vocab", {"image": path, "labels": list(gt), **kw}, settings)
        for m in out.masks:
            pred = rle_decode({"size": [m.rle.height, m.rle.width], "counts": m.rle.counts})
            g = gt[m.label]
            ious.append((pred & g).sum() / max((pred | g).sum(), 1))
    return float(np.mean(ious))


@pytest.mark.heavy
def test_dense_mode_beats_the_plain_dense_baseline(scenes, demo_settings):
    dense = miou(scenes, demo_settings, mode="dense")
    plain = miou(scenes, demo_settings, mode="plain", text_refine=0.0)
    assert dense >= 0.3, dense
    assert dense >= plain + 0.1, (dense, plain)


@pytest.mark.heavy
def test_proposals_mode_finds_the_objects(scenes, demo_settings):
    assert miou(scenes[:3], demo_settings, mode="proposals") >= 0.2


@pytest.mark.heavy
def test_cli_call_returns_masks_files_and_overlay(tmp_path, run_cli):
    from vltools.world import generate_object_scene

    sc = generate_object_scene(SEED + 50, concept_names=["dog", "car"], image_size=112, background="plain",
                               overlap_p=0.0)
    img = tmp_path / "scene.png"
    sc.image.save(img)
    code, out, err = run_cli("call", "segment.open_vocab", "--json", json.dumps(
        {"image": str(img), "labels": ["dog", "car"], "out_dir": str(tmp_path / "out")}))
    assert code == 0, err
    res = json.loads(out)
    assert [m["label"] for m in res["masks"]] == ["dog", "car"]
    gt = truth(sc)
    for m in res["masks"]:
        with Image.open(m["mask_path"]) as im:
            png = np.asarray(im) > 0
        assert png.shape == (112, 112)
        dec = rle_decode({"size": [m["rle"]["height"], m["rle"]["width"]], "counts": m["rle"]["counts"]})
        assert (dec == png).all()
        assert m["pixels"] == int(png.sum()) and m["area"] == pytest.approx(png.mean())
        assert 0.0 <= m["score"] <= 1.0
        iou = (png & gt[m["label"]]).sum() / max((png | gt[m["label"]]).sum(), 1)
        assert iou >= 0.25, (m["label"], iou)
    with Image.open(res["overlay_path"]) as im:
        assert im.width >= 112 and im.height > im.width  # the image plus a legend


@pytest.mark.heavy
def test_wordnet_expansion_and_notice(scenes, demo_settings):
    out = call("segment.open_vocab", {"image": scenes[0][0], "labels": ["dog", "xqzzy"], "expand": "wordnet"},
               demo_settings)
    assert "domestic dog" in out.expansions["dog"]
    assert any("a kind of" in e for e in out.expansions["dog"])
    assert out.expansions["xqzzy"] == [] and any("xqzzy" in n for n in out.notices)


def test_calibration_removes_the_shared_component_and_refinement_moves_towards_the_image():
    from vltools.tools._ovseg import calibrate, refine_text

    rng = np.random.default_rng(0)
    shared = rng.normal(size=16)
    text = np.stack([shared + 0.3 * rng.normal(size=16) for _ in range(4)])
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    cal = calibrate(text, 1.0)
    off_diag = ~np.eye(4, dtype=bool)
    assert (cal @ cal.T)[off_diag].mean() < (text @ text.T)[off_diag].mean() - 0.3
    assert np.allclose(np.linalg.norm(cal, axis=1), 1, atol=1e-5)
    assert calibrate(text, 0.0) is text
    feats = rng.normal(size=(9, 16))
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    ref = refine_text(text, feats, 1.0, 50.0)
    target = feats[np.argmax(text @ feats.T, axis=1)]  # with a sharp softmax: each label's best cell
    assert ((ref * target).sum(1) > (text * target).sum(1)).all()


def test_window_boxes_cover_the_canvas():
    from vltools.tools._ovseg import window_boxes

    boxes = window_boxes(100, 0.5, 0.25)
    assert len(boxes) == 9 and boxes[-1] == (50, 50, 100, 100)
    cover = np.zeros((100, 100), bool)
    for x0, y0, x1, y1 in boxes:
        cover[y0:y1, x0:x1] = True
    assert cover.all()


@pytest.mark.parametrize("mode", ["dense", "proposals", "plain"])
def test_plumbing_on_a_tiny_random_vit(mode, spec, settings, root):
    from vltools.world import generate_object_scene

    img = root / "wide.png"
    generate_object_scene(3, n_objects=2, image_size=(96, 64)).image.save(img)  # not square: padded and cropped
    out = call("segment.open_vocab", {"image": str(img), "labels": ["cat", "a red car"], "mode": mode, "clip": spec,
                                      "out_dir": str(root / "o"), "calibration": 0.5}, settings)
    assert len(out.masks) == 2 and out.clip == spec
    for m in out.masks:
        assert (m.rle.height, m.rle.width) == (64, 96)
        with Image.open(m.mask_path) as im:
            assert im.size == (96, 64)
    total = sum(m.pixels for m in out.masks)
    assert total <= 96 * 64


@pytest.mark.parametrize(
    ("inp", "needle"),
    [({"labels": ["dog", "Dog"]}, "distinct"), ({"labels": ["dog", "background"]}, "background prompt"),
     ({"labels": ["dog"], "llm": "smollm2"}, "expand='llm'")],
)
def test_user_errors(inp, needle, scenes, demo_settings):
    with pytest.raises(InvalidInput) as err:
        call("segment.open_vocab", {"image": scenes[0][0], **inp}, demo_settings)
    assert needle in str(err.value.message) and err.value.hint


def test_default_output_folder_lies_under_home(spec, settings, root):
    from PIL import Image

    Image.new("RGB", (40, 40), (200, 10, 10)).save(root / "red.png")
    out = call("segment.open_vocab", {"image": str(root / "red.png"), "labels": ["dog"], "clip": spec}, settings)
    assert out.overlay_path.startswith(str(settings.home / "outputs" / "segment"))


@pytest.mark.heavy
@pytest.mark.parametrize("mode", ["dense", "proposals"])
def test_cli_on_a_random_vit_b_32(mode, tmp_path, run_cli):
    from vltools.world import generate_object_scene

    img = tmp_path / "scene.png"
    generate_object_scene(11, n_objects=2, image_size=96).image.save(img)
    code, out, err = run_cli("call", "segment.open_vocab", "--json", json.dumps(
        {"image": str(img), "labels": ["dog", "car"], "mode": mode, "model": "open_clip:ViT-B-32/random"}))
    assert code == 0, err
    res = json.loads(out)
    assert res["clip"] == "open_clip:ViT-B-32/random" and [m["label"] for m in res["masks"]] == ["dog", "car"]


def test_llm_expansion_parses_the_reply(spec, settings, root, monkeypatch):
    """expand='llm': the LLM's lines (numbering, bullets, quotes stripped; the label itself dropped) become names."""
    from vltools.world import generate_object_scene

    class Scripted:
        def generate(self, messages, **kw):
            assert "'car'" in messages[0]["content"]
            return "1. automobile\n- \"motor car\"\ncar\n\n"

    monkeypatch.setattr(Context, "llm", lambda self, spec=None: Scripted())
    img = root / "s.png"
    generate_object_scene(4, n_objects=1, image_size=64).image.save(img)
    out = call("segment.open_vocab", {"image": str(img), "labels": ["car"], "expand": "llm", "llm": "smollm2",
                                      "clip": spec, "out_dir": str(root / "o")}, settings)
    assert out.expansions == {"car": ["automobile", "motor car"]}
