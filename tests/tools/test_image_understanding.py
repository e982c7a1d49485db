"""image.quality / region_embed / ground / rerank / rank_by_text / reidentify / place_recognition
through the registry on a tiny random open_clip model: plumbing, typed output, errors, progress."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vltools.core.context import Context
from vltools.core.errors import Conflict, InvalidInput, NotFound, Unsupported
from vltools.core.registry import get_registry


def call(name, inp, settings, notes=None):
    prog = (lambda d, t, n: notes.append(n)) if notes is not None else None
    return get_registry().call(name, inp, ctx=Context(settings=settings, progress=prog))


def make_images(folder, n, seed=0, size=(40, 32)):
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        p = folder / f"im{i:02d}.png"
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return paths


def test_quality_scores_are_probabilities_with_evidence(root, settings, spec):
    paths = make_images(root, 3)
    notes = []
    out = call("image.quality", {"images": paths, "clip": spec}, settings, notes)
    assert [r.image for r in out.results] == paths and not out.aligned
    assert "no quality-aware alignment" in out.notices[0] and "images embedded" in notes
    for r in out.results:
        assert 0.0 <= r.score <= 1.0 and len(r.prompts) == 3
        assert r.score == pytest.approx(np.mean(list(r.prompts.values())))
    with pytest.raises(Unsupported, match="no quality-aware alignment") as e:
        call("image.quality", {"images": paths, "clip": spec, "alignment": "on"}, settings)
    assert e.value.hint
    with pytest.raises(InvalidInput):
        call("image.quality", {"images": [], "clip": spec}, settings)
    with pytest.raises(NotFound):
        call("image.quality", {"images": [str(root / "missing.png")], "clip": spec}, settings)


def test_region_embed_pool_crop_blend(root, settings, spec):
    (p,) = make_images(root, 1)
    boxes = [[0, 0, 20, 16], [10, 8, 40, 32], [-5, -5, 100, 100]]
    outs = {m: call("image.region_embed", {"image": p, "boxes": boxes, "clip": spec, "method": m}, settings)
            for m in ("pool", "crop", "blend", "dense")}
    for out in outs.values():
        assert out.dim == 32 and len(out.regions) == 3
        for r in out.regions:
            assert np.linalg.norm(r.vector) == pytest.approx(1.0, abs=1e-5)
    assert outs["pool"].regions[2].box == [0.0, 0.0, 40.0, 32.0]  # clipped to the image
    a, b = (np.array(outs["pool"].regions[i].vector) for i in (0, 1))
    assert float(a @ b) < 0.9999  # different boxes pool different cells
    with pytest.raises(InvalidInput, match="empty"):
        call("image.region_embed", {"image": p, "boxes": [[30, 5, 10, 20]], "clip": spec}, settings)
    with pytest.raises(InvalidInput, match=r"\[x0, y0, x1, y1\]"):
        call("image.region_embed", {"image": p, "boxes": [[1, 2, 3]], "clip": spec}, settings)


@pytest.mark.parametrize("method,extra", [("dense", {}), ("dense", {"box_score": "pooled"}),
                                          ("dense", {"box_score": "crop"}), ("hybrid", {}), ("pool", {}),
                                          ("crop", {})])
def test_ground_returns_distinct_boxes_best_first(root, settings, spec, method, extra):
    (p,) = make_images(root, 1)
    out = call("image.ground", {"image": p, "query": "a red circle", "k": 3, "clip": spec, "method": method,
                                **extra}, settings)
    assert 1 <= len(out.boxes) <= 3 and out.method == method and out.candidates >= len(out.boxes)
    scores = [b.score for b in out.boxes]
    assert scores == sorted(scores, reverse=True)
    from vltools.tools._image_math import iou

    for i, a in enumerate(out.boxes):
        x0, y0, x1, y1 = a.box
        assert 0 <= x0 < x1 <= 40 and 0 <= y0 < y1 <= 32
        assert all(iou(a.box, b.box) < 0.5 for b in out.boxes[i + 1 :])


def test_ground_pooled_scores_are_region_embed_dense_cosines(root, settings, spec):
    """The dense grounding and image.region_embed read the same region features: a box's pooled score is the
    cosine of its region_embed (method dense) vector with the query's embedding."""
    from vltools.models.clip import get_clip
    from vltools.tools import _ovseg

    (p,) = make_images(root, 1, seed=5)
    out = call("image.ground", {"image": p, "query": "the red circle", "k": 3, "clip": spec, "method": "dense",
                                "box_score": "pooled"}, settings)
    emb = call("image.region_embed", {"image": p, "boxes": [b.box for b in out.boxes], "clip": spec,
                                      "method": "dense"}, settings)
    t = _ovseg.label_embeddings(get_clip(spec, settings), [["red circle"]])[0]
    for b, r in zip(out.boxes, emb.regions, strict=True):
        assert float(np.array(r.vector) @ t) == pytest.approx(b.score, abs=2e-3)


def _collection(root, settings, spec, n=8):
    paths = make_images(root, n, seed=3)
    call("image.index", {"collection": "pics", "paths": paths, "create": True, "clip": spec}, settings)
    return paths


def test_rerank_and_place_recognition_return_rankings(root, settings, spec):
    paths = _collection(root, settings, spec)
    for name, extra in (("image.rerank", {"candidates": 6, "neighbours": 2}),
                        ("image.place_recognition", {"candidates": 5, "tiles": 2})):
        notes = []
        out = call(name, {"collection": "pics", "image": paths[0], "k": 4, **extra}, settings, notes)
        assert len(out.hits) == 4 and [h.rank for h in out.hits] == [1, 2, 3, 4]
        assert paths[0] not in [h.path for h in out.hits]  # the query image itself is excluded
        assert all("initial_rank" in h.metadata for h in out.hits)
        assert [h.score for h in out.hits] == sorted([h.score for h in out.hits], reverse=True)
        assert notes
    out = call("image.place_recognition", {"collection": "pics", "image": paths[0], "k": 3}, settings)
    assert all(h.metadata["inliers"] >= 0 for h in out.hits)


def test_rerank_refuses_another_model_and_wrong_collections(root, settings, spec):
    paths = _collection(root, settings, spec, n=3)
    for name in ("image.rerank", "image.place_recognition"):
        with pytest.raises(Conflict, match="embedded with") as e:
            call(name, {"collection": "pics", "image": paths[0], "clip": "demo"}, settings)
        assert e.value.details["collection_model"] == spec
        with pytest.raises(NotFound):
            call(name, {"collection": "nope", "image": paths[0]}, settings)


def test_rank_by_text_orders_all_images(root, settings, spec):
    paths = make_images(root, 4)
    out = call("image.rank_by_text", {"images": paths, "query": "more dogs", "clip": spec}, settings)
    assert sorted(r.image for r in out.results) == sorted(paths) and [r.rank for r in out.results] == [1, 2, 3, 4]
    assert [r.score for r in out.results] == sorted([r.score for r in out.results], reverse=True)
    assert not out.adapted and out.notices
    with pytest.raises(Unsupported):
        call("image.rank_by_text", {"images": paths, "query": "bigger", "clip": spec, "adapter": "on"}, settings)
    with pytest.raises(InvalidInput):  # one image cannot be ordered
        call("image.rank_by_text", {"images": paths[:1], "query": "bigger", "clip": spec}, settings)


def test_reidentify_gallery_and_clusters(root, settings, spec):
    paths = make_images(root, 3)
    gallery = [{"image": paths[0], "box": [0, 0, 20, 16], "identity": "A"},
               {"image": paths[1], "box": [5, 5, 35, 30], "identity": "B"}]
    query = [{"image": paths[0], "box": [0, 0, 20, 16]}, {"image": paths[2]}]
    out = call("image.reidentify", {"query": query, "gallery": gallery, "k": 2, "clip": spec}, settings)
    assert out.matches[0].identity == "A" and out.matches[0].neighbours[0].score == pytest.approx(1.0, abs=1e-4)
    assert out.matches[1].box == [0.0, 0.0, 40.0, 32.0]
    flat = sorted(i for c in out.clusters for i in c)
    assert flat == [0, 1]
    solo = call("image.reidentify", {"query": query + query[:1], "threshold": 0.99, "clip": spec}, settings)
    assert [0, 2] in solo.clusters and solo.matches[0].neighbours[0].index == 2
    with pytest.raises(InvalidInput, match="both a box and a text"):
        call("image.reidentify", {"query": [{"image": paths[0], "box": [0, 0, 5, 5], "text": "x"}], "clip": spec},
             settings)


def test_reidentify_boxes_from_image_ground(root, settings, spec):
    paths = make_images(root, 2)
    out = call("image.reidentify", {"query": [{"image": p, "text": "a dog"} for p in paths], "clip": spec}, settings)
    for m in out.matches:
        assert m.box != [0.0, 0.0, 40.0, 32.0] and m.box[2] > m.box[0]


NEW_TOOLS = ("image.quality", "image.ground", "image.region_embed", "image.rerank", "image.rank_by_text",
             "image.reidentify", "image.place_recognition", "classify.few_shot", "classify.caps_adapter",
             "metrics.diversity", "embed.defocus")


def test_new_tools_through_mcp_and_langchain(root, spec, tmp_path, monkeypatch):
    """One typed call per face: the MCP result carries the structured output, LangChain returns the dict."""
    import asyncio
    import json

    from vltools.core.settings import reset_settings
    from vltools.langchain_tools import as_langchain_tools
    from vltools.server import run_tool

    monkeypatch.setenv("VLTOOLS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VLTOOLS_ALLOWED_ROOTS", json.dumps([str(root)]))
    monkeypatch.setenv("VLTOOLS_MODEL_DIRS", json.dumps([spec.split("local-dir:", 1)[1]]))
    reset_settings()
    try:
        reg = get_registry()
        for n in NEW_TOOLS:
            assert reg.spec(n).effects == "read_only" and reg.spec(n).fidelity and reg.spec(n).fidelity_note
        (p,) = make_images(root, 1)
        res = asyncio.run(run_tool(reg, "image.ground", {"image": p, "query": "a cat", "k": 2, "clip": spec}))
        assert not res.isError and res.structuredContent["boxes"][0]["box"][2] > 0
        bad = asyncio.run(run_tool(reg, "image.quality", {"images": [p], "clip": spec, "alignment": "on"}))
        assert bad.isError and "unsupported" in bad.content[0].text
        lc = {t.name: t for t in as_langchain_tools(names=list(NEW_TOOLS))}
        assert len(lc) == len(NEW_TOOLS)
        out = lc["image_quality"].invoke({"images": [p], "clip": spec})
        assert 0 <= out["results"][0]["score"] <= 1
    finally:
        reset_settings()
