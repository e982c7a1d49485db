"""probe.*: each finds the effect the world plants when run on the demo CLIP (degradations cost accuracy,
uncommon backgrounds cost accuracy, a co-present object's colour pulls colour answers, colour pairs are
told apart while orientation pairs are not), writes its report, runs on a user's own images, and runs on
random-weight open_clip models (plumbing); plus the metrics (ECE, AUROC) and user errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vltools.core.context import Context
from vltools.core.errors import InvalidInput
from vltools.core.registry import get_registry
from vltools.core.settings import Settings
from vltools.tools._probe_common import auroc, ece


def call(name, inp, settings):
    return get_registry().call(name, inp, ctx=Context(settings=settings))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe_root")
    return Settings(allowed_roots=[root], home=tmp_path_factory.mktemp("home"), device="cpu"), root


def test_ece_and_auroc():
    conf = np.array([0.9, 0.9, 0.9, 0.9, 0.6, 0.6])
    assert ece(conf, np.array([1, 1, 1, 1, 1, 1])) == pytest.approx(4 / 6 * 0.1 + 2 / 6 * 0.4)
    assert ece(np.full(10, 0.7), np.array([1] * 7 + [0] * 3)) == pytest.approx(0.0)
    assert auroc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auroc(np.array([1.0]), np.array([1.0])) == 0.5
    assert auroc(np.array([1.0, 3.0]), np.array([2.0])) == 0.5


@pytest.mark.heavy
def test_robustness_finds_the_planted_degradations_and_writes_a_report(demo):
    settings, root = demo
    out = call("probe.robustness", {"clip": "demo", "concepts": 8, "per_concept": 2, "degradations": ["blur", "noise"],
                                    "levels": [1, 5], "shifts": ["small"], "report_dir": str(root / "rep")}, settings)
    assert out.clean.accuracy >= 0.7
    worst5 = {c.shift: c for c in out.conditions if c.level == 5}
    assert worst5["blur"].accuracy <= out.clean.accuracy - 0.25, out.conditions
    assert worst5["blur"].drop == pytest.approx(out.clean.accuracy - worst5["blur"].accuracy)
    assert worst5["blur"].ece > out.clean.ece  # overconfident once degraded
    assert [c.shift for c in out.conditions] == ["blur", "blur", "noise", "noise", "small"]
    assert out.worst.split("@")[0] in ("blur", "noise", "small")
    md = (root / "rep" / "robustness.md").read_text()
    assert "| blur | 5 |" in md and "robustness.png" in md
    assert (root / "rep" / "robustness.png").stat().st_size > 1000


@pytest.mark.heavy
def test_spurious_background_finds_the_drop_on_uncommon_places(demo):
    settings, _ = demo
    out = call("probe.spurious_background", {"clip": "demo", "concepts": 30, "per_concept": 2}, settings)
    by = {g.name: g for g in out.groups}
    assert set(by) == {"common", "counter", "neutral"} and by["common"].n == 60
    assert out.drop >= 0.05 and out.probability_drop > 0, out.groups
    assert out.drop == pytest.approx(by["common"].accuracy - by["counter"].accuracy)


@pytest.mark.heavy
def test_concept_association_finds_the_pull_of_a_co_present_object(demo):
    settings, _ = demo
    out = call("probe.concept_association", {"clip": "demo", "concepts": 12}, settings)
    by = {f.setting: f for f in out.figures}
    assert by["pair"].pull >= by["alone"].pull + 0.1, out.figures
    assert out.association_pull == pytest.approx(by["pair"].pull - by["alone"].pull)
    assert by["tinted"].accuracy >= 0.5  # the tint itself is seen ...
    assert out.pull_ratio > 1.0  # ... and the errors lean to the typical colour


@pytest.mark.heavy
def test_fine_grained_tells_colour_pairs_apart_but_not_orientation(demo):
    settings, _ = demo
    out = call("probe.fine_grained", {"clip": "demo", "concepts": 8, "factors": ["colour", "orientation"]}, settings)
    by = {f.factor: f for f in out.factors}
    assert by["colour"].pair_accuracy >= by["orientation"].pair_accuracy + 0.4, out.factors
    assert by["orientation"].image_cosine > by["colour"].image_cosine
    assert out.hardest == "orientation"


@pytest.mark.heavy
def test_probes_on_the_users_own_images(demo):
    from vltools.world import generate_object_scene

    settings, root = demo
    items, pairs, colour_items = [], [], []
    for i, name in enumerate(["dog", "car", "apple", "dog", "car", "apple"]):
        p = root / f"u{i}.png"
        generate_object_scene(8_150_000 + i, concept_names=[name], image_size=112, background="plain").image.save(p)
        items.append({"image": str(p), "label": name})
    out = call("probe.robustness", {"clip": "demo", "items": items, "degradations": ["pixelate"], "levels": [2]},
               settings)
    assert out.labels == ["dog", "car", "apple"] and out.clean.n == 6 and len(out.conditions) == 1
    bg = call("probe.spurious_background", {"clip": "demo", "common": items[:3], "counter": items[3:]}, settings)
    assert [g.name for g in bg.groups] == ["common", "counter"]
    for i, tint in enumerate(["red", "blue"]):
        p = root / f"c{i}.png"
        generate_object_scene(8_150_100 + i, concept_names=["apple"], image_size=112, background="plain",
                              tint=tint).image.save(p)
        colour_items.append({"image": str(p), "object": "apple", "colour": tint, "associated": "green"})
    ca = call("probe.concept_association", {"clip": "demo", "items": colour_items}, settings)
    assert ca.figures[0].setting == "items" and ca.figures[0].n == 2 and ca.association_pull is None
    pairs = [{"image_a": colour_items[0]["image"], "image_b": colour_items[1]["image"], "text_a": "a red apple",
              "text_b": "a blue apple", "factor": "colour"}]
    fg = call("probe.fine_grained", {"clip": "demo", "pairs": pairs}, settings)
    assert fg.factors[0].factor == "colour" and fg.factors[0].pairs == 1


@pytest.mark.parametrize(
    ("name", "inp", "needle"),
    [("probe.robustness", {"levels": [0]}, "levels"),
     ("probe.robustness", {"labels": ["a", "b"]}, "labels go with items"),
     ("probe.spurious_background", {"common": [{"image": "x.png", "label": "a"}]}, "both"),
     ("probe.concept_association", {"colours": ["red", "blue"]}, "colours go with items"),
     ("probe.spurious_background", {"object_scale": [0.5, 0.2]}, "object_scale")],
)
def test_user_errors(name, inp, needle, demo):
    with pytest.raises(InvalidInput) as err:
        call(name, {"clip": "demo", **inp}, demo[0])
    assert needle in err.value.message


def test_item_label_outside_labels(demo, tmp_path):
    settings, root = demo
    p = root / "one.png"
    from PIL import Image

    Image.new("RGB", (32, 32)).save(p)
    with pytest.raises(InvalidInput) as err:
        call("probe.robustness", {"clip": "demo", "items": [{"image": str(p), "label": "cat"}],
                                  "labels": ["dog", "car"]}, settings)
    assert err.value.details["missing"] == ["cat"] and err.value.hint


SMALL = {
    "probe.robustness": {"concepts": 2, "per_concept": 1, "degradations": ["blur"], "levels": [1], "shifts": ["tint"]},
    "probe.spurious_background": {"concepts": 2, "per_concept": 1},
    "probe.concept_association": {"concepts": 2},
    "probe.fine_grained": {"concepts": 2, "factors": ["count", "position"]},
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_plumbing_on_a_tiny_random_open_clip(name, spec, settings):
    out = call(name, {"clip": spec, **SMALL[name]}, settings)
    assert out.clip == spec and out.report_path is None


@pytest.mark.heavy
@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("clip", ["demo", "open_clip:ViT-B-32/random"])
def test_cli_on_demo_and_random_vit_b_32(name, clip, run_cli, tmp_path):
    code, out, err = run_cli("call", name, "--json", json.dumps({"clip": clip, **SMALL[name],
                                                                  "report_dir": str(tmp_path / "r")}))
    assert code == 0, err
    res = json.loads(out)
    assert res["clip"] == clip and res["report_path"].endswith(".md") and res["figure_path"].endswith(".png")
