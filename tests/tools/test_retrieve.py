"""retrieve.bm25 / dense / hybrid on real Cranfield documents and queries, plus every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import vltools
from vltools.core.errors import InvalidInput, NotFound, Unsupported

from ..store._fixtures import cranfield_collection, cranfield_docs, cranfield_qrels, cranfield_queries, unique

# Queries whose relevant documents lie in the subset (ids 1..120).
QUERIES = ["1", "2", "3", "8", "9"]


@pytest.fixture(scope="module")
def judged():
    ids = {d["id"] for d in cranfield_docs()}
    return cranfield_queries(), cranfield_qrels(ids)


def _relevant_in_top(tool: str, name: str, judged, k: int = 5, **extra) -> int:
    queries, qrels = judged
    found = 0
    for q in QUERIES:
        out = vltools.call(tool, {"collection": name, "query": queries[q], "k": k, **extra})
        relevant = {d for d, r in qrels[q].items() if r > 0}
        found += bool(relevant & {h.id for h in out.hits})
    return found


def test_bm25_finds_relevant_cranfield_docs(judged):
    name = cranfield_collection("none")
    assert _relevant_in_top("retrieve.bm25", name, judged) >= 4
    queries, qrels = judged
    out = vltools.call("retrieve.bm25", {"collection": name, "query": queries["3"], "k": 5})
    assert out.retriever == "bm25" and out.query == queries["3"] and len(out.hits) == 5
    assert [h.rank for h in out.hits] == [1, 2, 3, 4, 5]
    assert [h.score for h in out.hits] == sorted((h.score for h in out.hits), reverse=True)
    top = out.hits[0]
    assert top.id in qrels["3"] and top.text.startswith(top.title.rstrip(" ."))


@pytest.mark.heavy
def test_dense_and_hybrid_find_relevant_cranfield_docs(judged):
    name = cranfield_collection("minilm")
    assert _relevant_in_top("retrieve.dense", name, judged) >= 4
    assert _relevant_in_top("retrieve.hybrid", name, judged) >= 4
    out = vltools.call("retrieve.dense", {"collection": name, "query": "heat conduction in composite slabs", "k": 3})
    assert out.retriever == "dense:minilm" and out.hits[0].score <= 1.0001
    # semantic match without shared words: a paraphrase still reaches a judged document of query 3
    para = vltools.call(
        "retrieve.dense", {"collection": name, "query": "thermal diffusion through layered plates", "k": 5}
    )
    assert {h.id for h in para.hits} & set(judged[1]["3"])


@pytest.mark.heavy
def test_hybrid_weights(judged):
    name = cranfield_collection("minilm")
    q = judged[0]["1"]
    bm25 = [h.id for h in vltools.call("retrieve.bm25", {"collection": name, "query": q, "k": 10}).hits]
    dense = [h.id for h in vltools.call("retrieve.dense", {"collection": name, "query": q, "k": 10}).hits]
    only_bm25 = vltools.call("retrieve.hybrid", {"collection": name, "query": q, "k": 10, "dense_weight": 0})
    only_dense = vltools.call("retrieve.hybrid", {"collection": name, "query": q, "k": 10, "bm25_weight": 0})
    assert [h.id for h in only_bm25.hits] == bm25
    assert [h.id for h in only_dense.hits] == dense
    # the fusion is weighted RRF over the top-100 of each retriever
    deep_b = [h.id for h in vltools.call("retrieve.bm25", {"collection": name, "query": q, "k": 100}).hits]
    deep_d = [h.id for h in vltools.call("retrieve.dense", {"collection": name, "query": q, "k": 100}).hits]
    expected: dict[str, float] = {}
    for ranking, w in ((deep_b, 2.0), (deep_d, 0.5)):
        for r, d in enumerate(ranking, start=1):
            expected[d] = expected.get(d, 0.0) + w / (10 + r)
    fused = vltools.call(
        "retrieve.hybrid",
        {"collection": name, "query": q, "k": 10, "rrf_k": 10, "bm25_weight": 2.0, "dense_weight": 0.5},
    )
    assert [h.score for h in fused.hits] == pytest.approx(sorted(expected.values(), reverse=True)[:10])
    assert all(h.score == pytest.approx(expected[h.id]) for h in fused.hits)
    with pytest.raises(InvalidInput, match="cannot both be 0"):
        vltools.call("retrieve.hybrid", {"collection": name, "query": q, "bm25_weight": 0, "dense_weight": 0})


@pytest.mark.parametrize("tool", ["retrieve.bm25", "retrieve.dense", "retrieve.hybrid"])
@pytest.mark.parametrize(
    ("change", "field"),
    [({"query": ""}, "query"), ({"query": "   \n"}, "query"), ({"k": 0}, "k"), ({"k": 10**9}, "k"), ({"k": -3}, "k")],
)
def test_bad_input_names_the_field(tool, change, field):
    inp = {"collection": "whatever", "query": "wing flutter", "k": 5, **change}
    with pytest.raises(InvalidInput, match=rf"\b{field}\b"):
        vltools.call(tool, inp)


@pytest.mark.parametrize("tool", ["retrieve.bm25", "retrieve.dense", "retrieve.hybrid"])
def test_unknown_collection(tool):
    with pytest.raises(NotFound, match="no collection named 'no-such-coll'"):
        vltools.call(tool, {"collection": "no-such-coll", "query": "wing", "k": 3})


def test_unsupported_combinations():
    img = unique("img")
    vltools.call("collection.create", {"name": img, "kind": "image"})
    with pytest.raises(InvalidInput, match="BM25 retrieval needs a text collection; .* holds images"):
        vltools.call("retrieve.bm25", {"collection": img, "query": "red circle", "k": 3})
    name = cranfield_collection("none")
    with pytest.raises(Unsupported, match="no vectors"):
        vltools.call("retrieve.dense", {"collection": name, "query": "wing", "k": 3})


def test_k_larger_than_collection_and_no_match():
    name = cranfield_collection("none")
    out = vltools.call("retrieve.bm25", {"collection": name, "query": "boundary layer", "k": 1000})
    assert 0 < len(out.hits) <= out.count
    assert vltools.call("retrieve.bm25", {"collection": name, "query": "zzzqqq", "k": 5}).hits == []


def test_cli_bm25(run_cli):
    name = cranfield_collection("none")
    inp = {"collection": name, "query": "heat conduction in composite slabs", "k": 3}
    code, out, err = run_cli("call", "retrieve.bm25", "--json", json.dumps(inp))
    assert code == 0, err
    data = json.loads(out)
    assert len(data["hits"]) == 3 and {"id", "score", "rank", "text", "title", "metadata"} <= set(data["hits"][0])
    code, out, err = run_cli("call", "retrieve.bm25", "--json", json.dumps({**inp, "k": 0}))
    assert code == 2 and out == "" and "k" in err and len(err.strip().splitlines()) == 1


@pytest.mark.heavy
def test_dense_text_to_image_on_an_image_collection(tmp_path):
    """retrieve.dense on an image collection encodes the query with the collection's CLIP (the demo model)."""
    world = tmp_path / "world"
    vltools.call("world.generate", {"out_dir": str(world), "images": 8, "videos": 0, "seed": 3})
    paths = sorted(str(p) for p in (world / "images").glob("*.png"))
    name = unique("imgs")
    vltools.call("image.index", {"collection": name, "paths": paths, "create": True})
    labels = [json.loads(line) for line in (world / "labels.jsonl").read_text().splitlines()]
    captions = {Path(lab["file"]).name: lab["caption"] for lab in labels if lab.get("kind") == "image"}
    top1 = 0
    for path in paths:
        caption = captions.get(Path(path).name)
        if caption is None:
            continue
        out = vltools.call("retrieve.dense", {"collection": name, "query": caption, "k": 3})
        assert out.retriever == f"dense:{vltools.call('collection.info', {'collection': name}).model}"
        top1 += Path(out.hits[0].id).name == Path(path).name
    assert top1 >= 5, top1  # chance is 1/8 per caption
