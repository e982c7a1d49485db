"""collection.* tools through vltools.call and the CLI: JSONL adds that are all-or-nothing,
bad files answered with clear errors, duplicates rejected or upserted."""

from __future__ import annotations

import json

import pytest

import vltools
from vltools.core.errors import Conflict, InvalidInput, NotFound, TooLarge

from ..store._fixtures import some_docs, unique, write_jsonl


def _bm25_only() -> str:
    """A BM25-only text collection: exercises the tool paths without loading a model."""
    name = unique("tc")
    vltools.call("collection.create", {"name": name, "kind": "text", "text_model": "none"})
    return name


def _count(name: str) -> int:
    return vltools.call("collection.info", {"collection": name}).count


def test_create_info_list_delete():
    name = _bm25_only()
    info = vltools.call("collection.info", {"collection": name}).model_dump()
    assert info["name"] == name and info["kind"] == "text" and info["count"] == 0 and info["model"] == "none"
    assert info["retrievers"] == ["bm25"]
    assert info["bm25"] == {"k1": 0.9, "b": 0.4, "method": "lucene", "stemmer": "english", "stopwords": "en"}
    tuned = unique("tuned")
    vltools.call("collection.create", {"name": tuned, "text_model": "none", "bm25_k1": 1.2, "bm25_b": 0.75})
    bm = vltools.call("collection.info", {"collection": tuned}).bm25
    assert (bm["k1"], bm["b"]) == (1.2, 0.75)
    with pytest.raises(InvalidInput, match="bm25_b"):
        vltools.call("collection.create", {"name": unique("t"), "text_model": "none", "bm25_b": 2})
    listed = vltools.call("collection.list", {}).collections
    assert name in [c.name for c in listed]
    with pytest.raises(Conflict):
        vltools.call("collection.create", {"name": name, "kind": "text", "text_model": "none"})
    out = vltools.call("collection.delete", {"collection": name})
    assert out.deleted == name
    with pytest.raises(NotFound):
        vltools.call("collection.info", {"collection": name})


def test_create_with_a_missing_model_fails_fast():
    with pytest.raises(vltools.ToolError, match="not bundled"):
        vltools.call("collection.create", {"name": unique("m"), "kind": "text", "text_model": "no-such-model-xyz"})


def test_add_from_jsonl_and_inline(tmp_path):
    name = _bm25_only()
    path = write_jsonl(tmp_path / "c.jsonl", some_docs(30))
    out = vltools.call("collection.add", {"collection": name, "path": str(path)})
    assert (out.added, out.updated, out.count) == (30, 0, 30)
    more = [{"id": "x1", "title": "Extra", "text": "a note on rotor blades", "source": "unit-test"}]
    vltools.call("collection.add", {"collection": name, "documents": more})
    assert _count(name) == 31
    hit = vltools.call("retrieve.bm25", {"collection": name, "query": "rotor blades", "k": 1}).hits[0]
    assert hit.id == "x1" and hit.metadata == {"source": "unit-test"} and hit.title == "Extra"


def test_corrupt_line_mid_file_rejects_whole_add(tmp_path):
    name = _bm25_only()
    vltools.call("collection.add", {"collection": name, "documents": some_docs(5)})
    rows = some_docs(20)[5:]
    path = write_jsonl(tmp_path / "bad.jsonl", rows, raw_lines={8: b'{"id": "broken", "text": "unterminated'})
    with pytest.raises(InvalidInput, match="bad.jsonl line 8 is not valid JSON"):
        vltools.call("collection.add", {"collection": name, "path": str(path)})
    assert _count(name) == 5
    # a document without text, or a line that is not an object, names its line too
    for raw, msg in [(b'{"id": "q"}', "line 3 .*missing 'text'"), (b"[1, 2]", "line 3 is a JSON list")]:
        path = write_jsonl(tmp_path / "bad2.jsonl", rows, raw_lines={3: raw})
        with pytest.raises(InvalidInput, match=msg):
            vltools.call("collection.add", {"collection": name, "path": str(path)})
    assert _count(name) == 5


def test_non_utf8_file(tmp_path):
    name = _bm25_only()
    path = write_jsonl(tmp_path / "latin1.jsonl", some_docs(4))
    path.write_bytes(path.read_bytes() + '{"id": "z", "text": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(InvalidInput, match="line 5 is not valid UTF-8"):
        vltools.call("collection.add", {"collection": name, "path": str(path)})
    assert _count(name) == 0


def test_ten_megabyte_document_is_too_large(tmp_path):
    name = _bm25_only()
    big = {"id": "big", "text": "wing " * 2_000_000}  # 10 MB of text
    with pytest.raises(TooLarge, match="big.*limit is 2,000,000"):
        vltools.call("collection.add", {"collection": name, "documents": some_docs(3) + [big]})
    path = write_jsonl(tmp_path / "big.jsonl", some_docs(3) + [big])
    with pytest.raises(TooLarge, match="line 4"):
        vltools.call("collection.add", {"collection": name, "path": str(path)})
    assert _count(name) == 0


def test_bad_paths(tmp_path):
    name = _bm25_only()
    with pytest.raises(NotFound):
        vltools.call("collection.add", {"collection": name, "path": str(tmp_path / "nope.jsonl")})
    with pytest.raises(InvalidInput, match="outside the allowed roots"):
        vltools.call("collection.add", {"collection": name, "path": "/etc/hostname"})
    with pytest.raises(InvalidInput, match="URL"):
        vltools.call("collection.add", {"collection": name, "path": "https://example.com/c.jsonl"})
    with pytest.raises(InvalidInput, match="exactly one"):
        vltools.call("collection.add", {"collection": name, "documents": some_docs(1), "path": "x.jsonl"})
    with pytest.raises(NotFound, match="no collection named"):
        vltools.call("collection.add", {"collection": "no-such-coll", "documents": some_docs(1)})


def test_duplicates_rejected_or_upserted():
    name = _bm25_only()
    vltools.call("collection.add", {"collection": name, "documents": some_docs(10)})
    again = [{"id": "3", "text": "a replacement about helicopter rotors"}]
    with pytest.raises(Conflict, match="already in collection"):
        vltools.call("collection.add", {"collection": name, "documents": again})
    twice = [{"id": "n1", "text": "a"}, {"id": "n1", "text": "b"}]
    with pytest.raises(Conflict, match="appears twice"):
        vltools.call("collection.add", {"collection": name, "documents": twice})
    assert _count(name) == 10
    out = vltools.call("collection.add", {"collection": name, "documents": again, "upsert": True})
    assert (out.added, out.updated, out.count) == (0, 1, 10)
    assert vltools.call("retrieve.bm25", {"collection": name, "query": "helicopter", "k": 3}).hits[0].id == "3"


def test_add_to_image_collection_is_the_wrong_kind():
    name = unique("img")
    vltools.call("collection.create", {"name": name, "kind": "image"})
    with pytest.raises(InvalidInput, match="collection.add needs a text collection") as err:
        vltools.call("collection.add", {"collection": name, "documents": some_docs(1)})
    assert "image.index" in err.value.hint


def test_cli_create_add_info_and_errors(run_cli, tmp_path):
    name = unique("cli")
    code, out, err = run_cli("call", "collection.create", "--json", json.dumps({"name": name, "text_model": "none"}))
    assert code == 0, err
    path = write_jsonl(tmp_path / "c.jsonl", some_docs(12))
    code, out, err = run_cli("call", "collection.add", "--json", json.dumps({"collection": name, "path": str(path)}))
    assert code == 0, err
    assert json.loads(out)["count"] == 12
    code, out, _ = run_cli("call", "collection.info", "--json", json.dumps({"collection": name}))
    assert code == 0 and json.loads(out)["count"] == 12
    bad = write_jsonl(tmp_path / "bad.jsonl", some_docs(20)[12:], raw_lines={2: b"{not json"})
    code, out, err = run_cli("call", "collection.add", "--json", json.dumps({"collection": name, "path": str(bad)}))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "bad.jsonl line 2" in err
    code, out, _ = run_cli("call", "collection.info", "--json", json.dumps({"collection": name}))
    assert json.loads(out)["count"] == 12


@pytest.mark.heavy
def test_add_encodes_with_minilm():
    name = unique("mini")
    info = vltools.call("collection.create", {"name": name, "kind": "text"})
    assert info.model == "minilm" and info.dim is None
    seen = []
    vltools.call(
        "collection.add",
        {"collection": name, "documents": some_docs(10), "batch_size": 4},
        progress=lambda d, t, n: seen.append((d, t, n)),
    )
    info = vltools.call("collection.info", {"collection": name})
    assert (info.count, info.dim, info.retrievers) == (10, 384, ["bm25", "dense", "hybrid"])
    assert (4, 10, "encoding with minilm") in seen and (10, 10, "encoding with minilm") in seen


def test_sample_corpus_quickstart(run_cli):
    """The README quickstart: index the shipped sample corpus from the CLI and search it."""
    from importlib import resources

    path = resources.files("vltools").joinpath("data/sample_corpus.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert 30 <= len(lines) <= 60
    name = unique("sample")
    assert run_cli("call", "collection.create", "--json", json.dumps({"name": name, "text_model": "none"}))[0] == 0
    code, out, err = run_cli("call", "collection.add", "--json", json.dumps({"collection": name, "path": str(path)}))
    assert code == 0, err
    assert json.loads(out)["count"] == len(lines)
    code, out, _ = run_cli(
        "call", "retrieve.bm25", "--json", json.dumps({"collection": name, "query": "why does bread rise", "k": 3})
    )
    top = json.loads(out)["hits"][0]
    assert top["title"] == "Why bread rises"
    assert top["metadata"] == {"topic": "cooking"}


def test_encoder_fields_follow_the_kind_and_model_is_a_deprecated_alias():
    """text_model for text collections, clip for image/video; the old `model` still works for one release."""
    with pytest.warns(DeprecationWarning, match="'model' is deprecated, use 'text_model'"):
        old = vltools.call("collection.create", {"name": unique("old"), "model": "none"})
    assert old.model == "none"
    with pytest.raises(InvalidInput, match="takes 'clip', not 'text_model'"):
        vltools.call("collection.create", {"name": unique("img"), "kind": "image", "text_model": "minilm"})
    with pytest.raises(InvalidInput, match="takes 'text_model', not 'clip'"):
        vltools.call("collection.create", {"name": unique("txt"), "clip": "demo"})
    with pytest.raises(InvalidInput, match="deprecated name"):
        vltools.call("collection.create", {"name": unique("both"), "model": "none", "text_model": "none"})
    with pytest.raises(InvalidInput, match="nme"):
        vltools.call("collection.create", {"nme": unique("typo"), "text_model": "none"})
def test_repair_of_a_healthy_collection_changes_nothing_unless_forced():
    name = _bm25_only()
    vltools.call("collection.add", {"collection": name, "documents": some_docs(5)})
    version = vltools.call("collection.info", {"collection": name}).version
    out = vltools.call("collection.repair", {"collection": name})
    assert (out.status, out.problems, out.rebuilt, out.count) == ("healthy", [], [], 5)
    assert vltools.call("collection.info", {"collection": name}).version == version
    forced = vltools.call("collection.repair", {"collection": name, "force": True})
    assert forced.status == "repaired" and forced.rebuilt[0] == "manifest.json" and forced.count == 5
    assert vltools.call("collection.info", {"collection": name}).version == version + 1
    assert vltools.call("retrieve.bm25", {"collection": name, "query": "flutter", "k": 1}).hits[0].id == "5"
    spec = vltools.registry().spec("collection.repair")
    assert (spec.effects, spec.idempotent) == ("writes", True)
    with pytest.raises(NotFound):
        vltools.call("collection.repair", {"collection": unique("none")})
