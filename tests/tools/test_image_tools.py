"""image.index / image.search / image.classify through the registry, on a tiny
random open_clip model (plumbing, atomicity, input safety); real behaviour is in test_image_demo.py."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from vltools.core.context import Context
from vltools.core.errors import Conflict, InvalidInput, NotFound, TooLarge, Unsupported
from vltools.core.registry import get_registry
from vltools.core.settings import Settings

from ..models.test_media import png_header_only, truncated_jpeg


def call(name, inp, settings):
    return get_registry().call(name, inp, ctx=Context(settings=settings))


def make_images(folder, n, seed=0):
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        p = folder / f"img{i:02d}.png"
        Image.fromarray(rng.integers(0, 255, (24 + i, 30, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def count(settings, name):
    from vltools.store import open_collection

    return open_collection(name, settings).count


def test_index_then_search_by_image_and_text(root, settings, spec):
    paths = make_images(root, 6)
    notes = []
    out = get_registry().call(
        "image.index",
        {"collection": "pics", "paths": [str(root)], "create": True, "clip": spec, "batch_size": 4},
        ctx=Context(settings=settings, progress=lambda d, t, n: notes.append(n)),
    )
    assert out.added == 6 and out.count == 6 and out.duplicates == [] and "embedding images" in notes
    assert out.ids == [str(p.resolve()) for p in paths]
    from vltools.store import open_collection

    rec = open_collection("pics", settings).get([out.ids[2]])[0]
    assert rec["path"] == str(paths[2].resolve()) and len(rec["hash"]) == 64
    assert rec["metadata"]["width"] == 30 and rec["metadata"]["height"] == 26 and rec["metadata"]["bytes"] > 0

    hits = call("image.search", {"collection": "pics", "image": str(paths[3]), "k": 3,
                                 "exclude_query_image": False}, settings).hits
    assert hits[0].path == str(paths[3].resolve()) and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert [h.rank for h in hits] == [1, 2, 3]
    hits = call("image.search", {"collection": "pics", "image": str(paths[3]), "k": 3}, settings).hits
    assert str(paths[3].resolve()) not in [h.path for h in hits] and len(hits) == 3
    res = call("image.search", {"collection": "pics", "query": "a red circle", "k": 10}, settings)
    assert len(res.hits) == 6 and not res.truncated and res.notices == []
    scores = [h.score for h in res.hits]
    assert scores == sorted(scores, reverse=True)
    long = call("image.search", {"collection": "pics", "query": " ".join(["red circle"] * 20), "k": 2}, settings)
    assert long.truncated and "stretched" in long.notices[0]


def test_search_needs_exactly_one_query(root, settings, spec):
    make_images(root, 1)
    call("image.index", {"collection": "one", "paths": [str(root)], "create": True, "clip": spec}, settings)
    for bad in ({}, {"query": "x", "image": str(root / "img00.png")}):
        with pytest.raises(InvalidInput, match="exactly one"):
            call("image.search", {"collection": "one", **bad}, settings)
    with pytest.raises(NotFound):
        call("image.search", {"collection": "nope", "query": "x"}, settings)


def test_duplicates_and_unchanged_are_not_re_added(root, settings, spec):
    paths = make_images(root, 3)
    shutil.copy(paths[0], root / "copy_of_0.png")
    out = call("image.index", {"collection": "d", "paths": [str(root / "*.png")], "create": True, "clip": spec},
               settings)
    assert out.added == 3 and out.count == 3
    assert [(d.path, d.duplicate_of) for d in out.duplicates] == [
        (str((root / "img00.png").resolve()), str((root / "copy_of_0.png").resolve()))
    ]
    again = call("image.index", {"collection": "d", "paths": [str(root)]}, settings)
    assert again.added == 0 and again.unchanged == 3 and len(again.duplicates) == 1 and again.count == 3


def test_changed_content_needs_upsert(root, settings, spec):
    (p,) = make_images(root, 1)
    call("image.index", {"collection": "u", "paths": [str(p)], "create": True, "clip": spec}, settings)
    Image.new("RGB", (20, 20), (0, 200, 0)).save(p)
    with pytest.raises(InvalidInput, match="upsert"):
        call("image.index", {"collection": "u", "paths": [str(p)]}, settings)
    out = call("image.index", {"collection": "u", "paths": [str(p)], "upsert": True}, settings)
    assert out.updated == 1 and out.added == 0 and out.count == 1


@pytest.mark.parametrize(
    "make_bad, error, words",
    [
        (lambda r: png_header_only(r / "huge.png", 20_000, 20_000), TooLarge, "huge.png"),
        (lambda r: truncated_jpeg(r / "half.jpg"), InvalidInput, "half.jpg"),
        (lambda r: (r / "text.png").write_text("hello") and r / "text.png", InvalidInput, "text.png"),
        (lambda r: Image.new("RGB", (4, 4)).save(r / "x.pcx") or r / "x.pcx", Unsupported, "x.pcx"),
    ],
)
def test_a_bad_file_adds_nothing(root, settings, spec, make_bad, error, words):
    make_images(root, 4)
    call("collection.create", {"name": "safe", "kind": "image", "clip": spec}, settings)
    bad = make_bad(root)
    with pytest.raises(error) as exc:
        call("image.index", {"collection": "safe", "paths": [str(root), str(bad)]}, settings)
    assert words in exc.value.message
    assert count(settings, "safe") == 0
    bad.unlink()


def test_outside_roots_and_urls_add_nothing(root, settings, spec, tmp_path):
    make_images(root, 2)
    (outside,) = make_images(tmp_path, 1)
    call("collection.create", {"name": "safe2", "kind": "image", "clip": spec}, settings)
    with pytest.raises(InvalidInput, match="outside the allowed roots"):
        call("image.index", {"collection": "safe2", "paths": [str(root), str(outside)]}, settings)
    with pytest.raises(InvalidInput, match="URLs are not fetched"):
        call("image.index", {"collection": "safe2", "paths": [str(root), "http://example.com/a.png"]}, settings)
    assert count(settings, "safe2") == 0


def test_missing_collection_hint_and_wrong_kind(root, settings, spec):
    make_images(root, 1)
    with pytest.raises(NotFound) as exc:
        call("image.index", {"collection": "absent", "paths": [str(root)]}, settings)
    assert "collection.create" in exc.value.hint and '"kind": "image"' in exc.value.hint
    call("collection.create", {"name": "texts", "kind": "text", "text_model": "none"}, settings)
    with pytest.raises(InvalidInput, match="image.index needs an image collection; .texts. holds text documents"):
        call("image.index", {"collection": "texts", "paths": [str(root)]}, settings)
    call("image.index", {"collection": "m", "paths": [str(root)], "create": True, "clip": spec}, settings)
    with pytest.raises(InvalidInput, match="was built with"):
        call("image.index", {"collection": "m", "paths": [str(root)], "clip": "demo"}, settings)
    with pytest.raises(Conflict):
        call("collection.create", {"name": "m", "kind": "image", "clip": spec}, settings)


def test_classify_probabilities_and_descriptions(root, settings, spec):
    paths = [str(p) for p in make_images(root, 3)]
    inp = {"images": paths, "labels": ["circle", "square", "star"], "clip": spec}
    out = call("image.classify", inp, settings)
    assert [r.image for r in out.results] == paths
    for r in out.results:
        assert set(r.scores) == {"circle", "square", "star"}
        assert sum(r.scores.values()) == pytest.approx(1.0, abs=1e-5)
        assert r.label == max(r.scores, key=r.scores.get)
    assert out.logit_scale == pytest.approx(1 / 0.07, rel=1e-4)
    hot = call("image.classify", {**inp, "temperature": 100.0}, settings)
    spread = lambda res: max(res.scores.values()) - min(res.scores.values())  # noqa: E731
    assert spread(hot.results[0]) < spread(out.results[0])  # higher temperature, flatter distribution
    desc = call("image.classify", {**inp, "descriptions": {"star": ["five pointed shape"]}}, settings)
    assert desc.results[0].scores["star"] != pytest.approx(out.results[0].scores["star"], abs=1e-7)
    assert desc.results[0].scores["circle"] != pytest.approx(out.results[0].scores["circle"], abs=1e-9)


def test_class_embeddings_average_prompts_and_descriptions(spec):
    from vltools.models.clip import get_clip
    from vltools.tools.image import class_embeddings

    b = get_clip(spec, Settings(device="cpu"))
    got, notes = class_embeddings(b, ["star", "circle"], ["a {}", "{}"], {"star": ["five points", "pointy"]})
    e, _ = b.encode_texts(["a star", "star", "star, five points", "star, pointy", "a circle", "circle"])

    def unit(v):
        return v / np.linalg.norm(v)

    star = unit(unit(e[0:2].mean(0)) + unit(e[2:4].mean(0)))
    np.testing.assert_allclose(got[0], star, atol=1e-5)
    np.testing.assert_allclose(got[1], unit(e[4:6].mean(0)), atol=1e-5)
    assert notes == []


def test_class_embeddings_join_alias_prompts(spec):
    from vltools.models.clip import get_clip
    from vltools.tools.image import class_embeddings

    b = get_clip(spec, Settings(device="cpu"))
    got, _ = class_embeddings(b, ["star", "circle"], ["a {}", "{}"], {"star": ["pointy"]},
                              aliases={"star": ["asterisk"]})
    e, _ = b.encode_texts(["a star", "star", "a asterisk", "asterisk", "star, pointy", "a circle", "circle"])

    def unit(v):
        return v / np.linalg.norm(v)

    prompt = unit(unit(e[0:2].mean(0)) + unit(e[2:4].mean(0)))
    np.testing.assert_allclose(got[0], unit(prompt + unit(e[4])), atol=1e-5)
    np.testing.assert_allclose(got[1], unit(e[5:7].mean(0)), atol=1e-5)


def test_classify_seen_labels_lose_their_margin(root, settings, spec):
    paths = [str(p) for p in make_images(root, 3)]
    inp = {"images": paths, "labels": ["circle", "square", "star"], "clip": spec}
    plain = call("image.classify", inp, settings)
    cal = call("image.classify", {**inp, "seen_labels": ["square", "hexagon"], "seen_margin": 0.1}, settings)
    for a, c in zip(plain.results, cal.results, strict=True):
        # log-odds of a seen label against an unseen one drop by exactly logit_scale * margin
        before = np.log(a.scores["square"] / a.scores["star"])
        after = np.log(c.scores["square"] / c.scores["star"])
        assert before - after == pytest.approx(plain.logit_scale * 0.1, rel=1e-3)
        assert np.log(c.scores["circle"] / c.scores["star"]) == pytest.approx(
            np.log(a.scores["circle"] / a.scores["star"]), abs=1e-3)
    huge = call("image.classify", {**inp, "seen_labels": ["circle", "square"], "seen_margin": 2.0}, settings)
    assert {r.label for r in huge.results} == {"star"}  # cosines lie in [-1, 1]: the unseen label always wins


def test_classify_bad_inputs(root, settings, spec):
    (p,) = make_images(root, 1)
    base = {"images": [str(p)], "labels": ["a", "b"], "clip": spec}
    with pytest.raises(InvalidInput, match="unknown labels: c"):
        call("image.classify", {**base, "descriptions": {"c": ["x"]}}, settings)
    with pytest.raises(InvalidInput, match="aliases given for unknown labels: c"):
        call("image.classify", {**base, "aliases": {"c": ["x"]}}, settings)
    with pytest.raises(InvalidInput, match="aliases must be non-empty"):
        call("image.classify", {**base, "aliases": {"a": [" "]}}, settings)
    with pytest.raises(InvalidInput, match="exactly one"):
        call("image.classify", {**base, "templates": ["no slot"]}, settings)
    with pytest.raises(InvalidInput, match="distinct"):
        call("image.classify", {**base, "labels": ["a", "a"]}, settings)
    (root / "t.png").write_text("text")
    with pytest.raises(InvalidInput, match="t.png"):
        call("image.classify", {**base, "images": [str(p), str(root / "t.png")]}, settings)
    with pytest.raises(Unsupported):
        Image.new("RGB", (4, 4)).save(root / "x.pcx")
        call("image.classify", {**base, "images": [str(root / "x.pcx")]}, settings)


def test_cli_call_image_classify(root, spec, run_cli, monkeypatch, tmp_path):
    from vltools.core.settings import reset_settings

    (p,) = make_images(root, 1)
    monkeypatch.setenv("VLTOOLS_ALLOWED_ROOTS", json.dumps([str(root)]))
    monkeypatch.setenv("VLTOOLS_MODEL_DIRS", json.dumps([spec.split("local-dir:", 1)[1]]))
    monkeypatch.setenv("VLTOOLS_DEVICE", "cpu")
    reset_settings()
    try:
        code, out, err = run_cli("call", "image.classify", "--json",
                                 json.dumps({"images": [str(p)], "labels": ["x", "y"], "clip": spec}))
        assert code == 0, err
        res = json.loads(out)["results"][0]
        assert res["image"] == str(p) and set(res["scores"]) == {"x", "y"}
        code, out, err = run_cli("call", "image.classify", "--json",
                                 json.dumps({"images": [str(tmp_path / "x.png")], "labels": ["x", "y"]}))
        assert code == 2 and "outside the allowed roots" in err and out == ""
    finally:
        monkeypatch.undo()
        reset_settings()


def test_a_failed_create_leaves_no_collection(root, settings, spec):
    from vltools.store import list_collections

    make_images(root, 2)
    truncated_jpeg(root / "bad.jpg")
    with pytest.raises(InvalidInput, match="bad.jpg"):
        call("image.index", {"collection": "fresh", "paths": [str(root)], "create": True, "clip": spec}, settings)
    assert "fresh" not in list_collections(settings)
