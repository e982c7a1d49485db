"""vltools.store: create/open/delete, adds that are atomic and locked, FAISS and BM25 search.

These use random unit vectors (no model) so they run in seconds; the retrieval tests use MiniLM.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from vltools.core.errors import Conflict, InvalidInput, NotFound, TooLarge, Unsupported
from vltools.core.settings import get_settings
from vltools.store import _bm25, create_collection, delete_collection, list_collections, open_collection

from ._fixtures import unique

DIM = 16


def unit(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def docs(n: int, start: int = 0, prefix: str = "d") -> list[dict]:
    return [
        {"id": f"{prefix}{i}", "title": f"title {i}", "text": f"text number {i} about wings"}
        for i in range(start, start + n)
    ]


@pytest.fixture
def settings():
    return get_settings()


def test_create_open_list_delete(settings):
    name = unique("c")
    coll = create_collection(name, "text", model="minilm", settings=settings)
    assert (coll.name, coll.kind, coll.model, coll.dim, coll.count) == (name, "text", "minilm", None, 0)
    assert name in list_collections(settings)
    assert open_collection(name, settings).manifest["index"]["type"] == "flat"
    with pytest.raises(Conflict, match="already exists"):
        create_collection(name, "text", model="minilm", settings=settings)
    assert create_collection(name, "text", model="minilm", settings=settings, exist_ok=True).name == name
    with pytest.raises(Conflict):  # exist_ok but a different kind
        create_collection(name, "image", model="demo", settings=settings, exist_ok=True)
    delete_collection(name, settings)
    assert name not in list_collections(settings)
    with pytest.raises(NotFound, match="no collection named"):
        open_collection(name, settings)


def test_bad_names_and_options(settings):
    for bad in ["", "../x", "a/b", ".hidden", "x" * 101, "sp ace"]:
        with pytest.raises(InvalidInput):
            create_collection(bad, "text", model="minilm", settings=settings)
    with pytest.raises(InvalidInput, match="kind"):
        create_collection(unique("c"), "audio", model="minilm", settings=settings)
    with pytest.raises(InvalidInput, match="index"):
        create_collection(unique("c"), "text", model="minilm", settings=settings, index="annoy")


def test_not_found_lists_existing(settings):
    name = unique("listed")
    create_collection(name, "text", model="none", settings=settings)
    with pytest.raises(NotFound) as info:
        open_collection("no-such-collection", settings)
    assert name in info.value.hint


@pytest.mark.parametrize("index", ["flat", "hnsw", "ivf"])
def test_add_search_get(settings, index):
    coll = create_collection(unique(index), "text", model="minilm", settings=settings, index=index)
    vecs = unit(300)
    out = coll.add(docs(300), vecs)
    assert out == {"added": 300, "updated": 0, "count": 300}
    assert coll.dim == DIM and open_collection(coll.name, settings).count == 300
    for i in (0, 17, 299):  # every vector finds itself first
        hits = coll.search(vecs[i], 5)
        assert hits[0][0] == f"d{i}" and hits[0][1] == pytest.approx(1.0, abs=1e-4)
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    got = coll.get(["d5", "missing", "d1"])
    assert [g["id"] for g in got] == ["d5", "d1"] and got[0]["text"] == "text number 5 about wings"
    assert coll.has(["d1", "zz"]) == {"d1"}
    # incremental add: the new documents are searchable, the old ones still are
    more = unit(50, seed=1)
    coll.add(docs(50, start=300), more)
    assert coll.count == 350
    assert coll.search(more[10], 1)[0][0] == "d310"
    assert coll.search(vecs[3], 1)[0][0] == "d3"
    assert len(coll.search(vecs[0], 1000)) == 350  # k beyond the size is cut to the size


def test_duplicates_and_upsert(settings):
    coll = create_collection(unique("dup"), "text", model="minilm", settings=settings, index="hnsw")
    vecs = unit(10)
    coll.add(docs(10), vecs)
    with pytest.raises(Conflict, match="already in collection"):
        coll.add(docs(1, start=3), unit(1, seed=5))
    with pytest.raises(Conflict, match="appears twice"):
        coll.add(docs(1, start=50) + docs(1, start=50), unit(2, seed=5))
    assert coll.count == 10
    new = unit(1, seed=9)
    out = coll.add([{"id": "d3", "text": "replaced text"}], new, upsert=True)
    assert out == {"added": 0, "updated": 1, "count": 10}
    assert coll.get(["d3"])[0]["text"] == "replaced text"
    assert coll.search(new[0], 1)[0][0] == "d3"  # the vector was replaced too (HNSW rebuilt)
    assert coll.search(vecs[3], 1)[0][0] != "d3" or coll.search(vecs[3], 1)[0][1] < 0.99
    assert coll.bm25_search("replaced", 3)[0][0] == "d3"


def test_bad_records_leave_collection_unchanged(settings):
    coll = create_collection(unique("bad"), "text", model="minilm", settings=settings)
    coll.add(docs(5), unit(5))
    before = json.loads((coll.path / "manifest.json").read_text())
    bad_batches = [
        (docs(2, start=10) + [{"id": "", "text": "x"}], InvalidInput),
        (docs(2, start=10) + [{"id": "z", "text": 5}], InvalidInput),
        (docs(2, start=10) + [{"id": "big", "text": "x" * (settings.max_document_chars + 1)}], TooLarge),
    ]
    for batch, err in bad_batches:
        with pytest.raises(err):
            coll.add(batch, unit(len(batch)))
    with pytest.raises(InvalidInput, match="dimension"):
        coll.add(docs(2, start=10), np.ones((2, DIM + 1), np.float32))
    with pytest.raises(InvalidInput, match="shape"):
        coll.add(docs(2, start=10), unit(3))
    with pytest.raises(InvalidInput):
        coll.add(docs(2, start=10), None)
    assert json.loads((coll.path / "manifest.json").read_text()) == before
    assert open_collection(coll.name, settings).count == 5


def test_failure_mid_write_rolls_back(settings, monkeypatch):
    """An error after the rows are written (here: while building BM25) leaves everything as it was."""
    coll = create_collection(unique("crash"), "text", model="minilm", settings=settings)
    vecs = unit(20)
    coll.add(docs(20), vecs)
    files_before = sorted(p.name for p in coll.path.iterdir())

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(_bm25, "build", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        coll.add(docs(5, start=20), unit(5, seed=3))
    monkeypatch.undo()
    again = open_collection(coll.name, settings)
    assert again.count == 20 and again.has(["d20"]) == set()
    assert sorted(p.name for p in again.path.iterdir()) == files_before
    assert again.search(vecs[7], 1)[0][0] == "d7"
    # and the next add works normally
    assert again.add(docs(5, start=20), unit(5, seed=3))["count"] == 25


def test_bm25_analysis(settings):
    coll = create_collection(unique("bm"), "text", model="none", settings=settings)
    coll.add(
        [
            {"id": "a", "text": "the flow over a swept wing"},
            {"id": "b", "text": "heat transfer in flows of supersonic jets"},
            {"id": "c", "title": "Stalling", "text": "wings stalling at high angles of attack"},
        ]
    )
    assert coll.bm25_search("flowing", 3)[0][0] in {"a", "b"}  # stemmed: flowing -> flow
    assert {d for d, _ in coll.bm25_search("flow", 3)} == {"a", "b"}
    assert coll.bm25_search("the of a", 3) == []  # only stop words
    assert coll.bm25_search("stalling", 3)[0][0] == "c"  # title indexed
    assert coll.bm25_search("zebra", 3) == []
    with pytest.raises(Unsupported):
        coll.search(np.ones(DIM, np.float32), 3)
    with pytest.raises(InvalidInput):
        coll.add(docs(1, start=9), unit(1))  # a model-less collection takes no vectors


def test_bm25_on_image_collection_is_the_wrong_kind(settings):
    coll = create_collection(unique("img"), "image", model="demo", settings=settings)
    coll.add([{"id": "i1", "path": "/tmp/a.png", "hash": "h1", "text": "a red circle"}], unit(1))
    assert coll.find_by("hash", "h1") == ["i1"] and coll.find_by("path", "/tmp/a.png") == ["i1"]
    assert coll.get(["i1"])[0]["path"] == "/tmp/a.png"
    with pytest.raises(InvalidInput, match="needs a text collection; .* holds images") as err:
        coll.bm25_search("red", 3)
    assert "image.search" in err.value.hint
    with pytest.raises(InvalidInput):
        create_collection(unique("img"), "image", model="none", settings=settings)
