"""Hand-corrupted collections (issue 21): every collection-using tool answers a ToolError naming the
damaged file (never a raw exception), collection.delete always works, collection.repair heals what
SQLite still holds and says so when the documents themselves are damaged.

The matrix: {text, image} collections x each way of damaging each file x each tool. Vectors come
from a 16-d fake encoder (tests/store/_fake.py), so no model is loaded.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import vltools
from vltools.core.errors import ToolError
from vltools.core.settings import get_settings
from vltools.store import create_collection, open_collection

from . import _fake
from ._fixtures import unique

N_DOCS = 12
WORDS = ["wing", "rotor", "flutter", "shock", "boundary", "nozzle", "jet", "heat", "panel", "cone", "slot", "flap"]


@pytest.fixture(autouse=True)
def fake_encoder(monkeypatch):
    _fake.install(monkeypatch)


def _docs(n: int = N_DOCS) -> list[dict]:
    return [
        {"id": f"d{i}", "title": f"doc {i}", "text": f"a note on the {WORDS[i % len(WORDS)]} {i}"} for i in range(n)
    ]


def make(kind: str, tmp_path: Path, n: int = N_DOCS, dim: int = _fake.DIM) -> str:
    """A populated collection written in two adds (so index files have version 2)."""
    name = unique(f"bad-{kind}")
    settings = get_settings()
    if kind == "text":
        coll = create_collection(name, "text", model="minilm", settings=settings)
        docs = _docs(n)
        vec = _fake.vecs([f"doc {i} {d['text']}" for i, d in enumerate(docs)])
    else:
        coll = create_collection(name, "image", model="demo", settings=settings)
        docs = [{"id": str(tmp_path / f"{name}-{i}.png"), "path": str(tmp_path / f"{name}-{i}.png"),
                 "hash": f"h{i}", "title": f"{i}.png"} for i in range(n)]  # fmt: skip
        vec = _fake.vecs([d["id"] for d in docs])
    if dim != _fake.DIM:
        vec = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    half = n // 2
    coll.add(docs[:half], vec[:half])
    coll.add(docs[half:], vec[half:])
    return name


def folder(name: str) -> Path:
    return get_settings().collections_dir / name


def manifest(name: str) -> dict:
    return json.loads((folder(name) / "manifest.json").read_text())


def faiss_file(name: str) -> Path:
    return folder(name) / manifest(name)["files"]["faiss"]


def bm25_dir(name: str) -> Path:
    return folder(name) / manifest(name)["files"]["bm25"]


# -- ways of damaging a collection: fn(name, kind, tmp_path) -> the file name the error must give ----------
def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _garbage(p: Path, size: int | None = None) -> None:
    p.write_bytes(np.random.default_rng(7).bytes(size if size is not None else p.stat().st_size))


def _edit_manifest(name: str, fn: Callable[[dict], None]) -> None:
    m = manifest(name)
    fn(m)
    (folder(name) / "manifest.json").write_text(json.dumps(m))


def manifest_truncated(name, kind, tmp):
    _truncate(folder(name) / "manifest.json")
    return "manifest.json"


def manifest_garbage(name, kind, tmp):
    _garbage(folder(name) / "manifest.json")
    return "manifest.json"


def manifest_empty(name, kind, tmp):
    (folder(name) / "manifest.json").write_bytes(b"")
    return "manifest.json"


def manifest_wrong_format(name, kind, tmp):
    _edit_manifest(name, lambda m: m.update(format=99))
    return "manifest.json"


def manifest_missing_key(name, kind, tmp):
    _edit_manifest(name, lambda m: m.pop("files"))
    return "manifest.json"


def manifest_wrong_count(name, kind, tmp):
    _edit_manifest(name, lambda m: m.update(count=m["count"] + 5))
    return "manifest.json"


def manifest_foreign_file_name(name, kind, tmp):
    _edit_manifest(name, lambda m: m["files"].update(faiss="../../outside.faiss"))
    return "manifest.json"


def manifest_missing(name, kind, tmp):
    (folder(name) / "manifest.json").unlink()
    return "manifest.json"


def faiss_truncated(name, kind, tmp):
    f = faiss_file(name)
    _truncate(f)
    return f.name


def faiss_garbage_same_size(name, kind, tmp):
    f = faiss_file(name)
    _garbage(f)
    return f.name


def faiss_garbage_other_size(name, kind, tmp):
    f = faiss_file(name)
    _garbage(f, 333)
    return f.name


def faiss_missing(name, kind, tmp):
    f = faiss_file(name)
    f.unlink()
    return f.name


def faiss_from_another_collection(name, kind, tmp):
    other = make(kind, tmp, n=5)
    f = faiss_file(name)
    shutil.copyfile(faiss_file(other), f)
    return f.name


def faiss_other_dimension(name, kind, tmp):
    other = make(kind, tmp, n=N_DOCS, dim=8)  # same count, other dimension
    f = faiss_file(name)
    shutil.copyfile(faiss_file(other), f)
    return f.name


def faiss_foreign_without_checksums(name, kind, tmp):
    """A collection written before checksums existed: the vector count still catches a foreign index."""
    other = make(kind, tmp, n=5)
    f = faiss_file(name)
    shutil.copyfile(faiss_file(other), f)
    _edit_manifest(name, lambda m: m.pop("checksums"))
    return f.name


def faiss_other_dimension_without_checksums(name, kind, tmp):
    other = make(kind, tmp, n=N_DOCS, dim=8)
    f = faiss_file(name)
    shutil.copyfile(faiss_file(other), f)
    _edit_manifest(name, lambda m: m.pop("checksums"))
    return f.name


def sqlite_truncated(name, kind, tmp):
    _truncate(folder(name) / "docs.sqlite")
    return "docs.sqlite"


def sqlite_garbage(name, kind, tmp):
    _garbage(folder(name) / "docs.sqlite")
    return "docs.sqlite"


def sqlite_empty(name, kind, tmp):
    (folder(name) / "docs.sqlite").write_bytes(b"")
    return "docs.sqlite"


def sqlite_missing(name, kind, tmp):
    (folder(name) / "docs.sqlite").unlink()
    return "docs.sqlite"


def sqlite_wrong_schema(name, kind, tmp):
    p = folder(name) / "docs.sqlite"
    p.unlink()
    conn = sqlite3.connect(p)
    conn.executescript("CREATE TABLE docs (id TEXT); CREATE TABLE meta (key TEXT, value TEXT);")
    conn.close()
    return "docs.sqlite"


def bm25_missing(name, kind, tmp):
    d = bm25_dir(name)
    shutil.rmtree(d)
    return d.name


def bm25_rids_garbage(name, kind, tmp):
    d = bm25_dir(name)
    _garbage(d / "rids.npy")
    return d.name


def bm25_params_garbage(name, kind, tmp):
    d = bm25_dir(name)
    params = next(p for p in d.iterdir() if p.name.startswith("params"))
    params.write_text("{not json" + " " * max(0, params.stat().st_size - 9))
    return d.name


def bm25_file_missing(name, kind, tmp):
    d = bm25_dir(name)
    (d / "rids.npy").unlink()
    return d.name


DAMAGE = {
    "text": [
        manifest_truncated, manifest_garbage, manifest_empty, manifest_wrong_format, manifest_missing_key,
        manifest_wrong_count, manifest_foreign_file_name, manifest_missing,
        faiss_truncated, faiss_garbage_same_size, faiss_garbage_other_size, faiss_missing,
        faiss_from_another_collection, faiss_other_dimension, faiss_foreign_without_checksums,
        faiss_other_dimension_without_checksums,
        sqlite_truncated, sqlite_garbage, sqlite_empty, sqlite_missing, sqlite_wrong_schema,
        bm25_missing, bm25_rids_garbage, bm25_params_garbage, bm25_file_missing,
    ],
    "image": [
        manifest_garbage, manifest_wrong_format, manifest_missing, manifest_wrong_count,
        faiss_truncated, faiss_garbage_same_size, faiss_missing, faiss_from_another_collection,
        faiss_other_dimension, sqlite_truncated, sqlite_garbage, sqlite_missing, sqlite_wrong_schema,
    ],
}  # fmt: skip
CASES = [(kind, fn) for kind, fns in DAMAGE.items() for fn in fns]


def target_of(fn) -> str:
    return fn.__name__.split("_")[0]


# -- the tools, and which files each one reads (those must fail when damaged) ----------------
def tools_for(kind: str, name: str, tmp: Path) -> dict[str, tuple[dict, set[str]]]:
    common = {"manifest", "sqlite"}
    if kind == "text":
        return {
            "collection.info": ({"collection": name}, common | {"faiss", "bm25"}),
            "retrieve.bm25": ({"collection": name, "query": "rotor", "k": 3}, common | {"bm25"}),
            "retrieve.dense": ({"collection": name, "query": "rotor", "k": 3}, common | {"faiss"}),
            "retrieve.hybrid": ({"collection": name, "query": "rotor", "k": 3}, common | {"faiss", "bm25"}),
            "eval.retrieval": ({"collection": name, "queries": [{"id": "q", "text": "rotor"}],
                                "qrels": {"q": {"d1": 1}}}, common | {"bm25"}),
            # last: an add rebuilds BM25 from SQLite without reading the old one (so it heals that)
            "collection.add": ({"collection": name, "documents": [{"id": "new", "text": "new rotor note"}]},
                               common | {"faiss"}),
        }  # fmt: skip
    png = get_settings().home / "inputs" / "query.png"  # under VLTOOLS_HOME, an allowed root
    if not png.exists():
        png.parent.mkdir(parents=True, exist_ok=True)
        from PIL import Image

        Image.new("RGB", (8, 8), (200, 30, 30)).save(png)
    return {
        "collection.info": ({"collection": name}, common | {"faiss"}),
        "image.search": ({"collection": name, "query": "a red square", "k": 3}, common | {"faiss"}),
        "retrieve.dense": ({"collection": name, "query": "a red square", "k": 3}, common | {"faiss"}),
        "image.index": ({"collection": name, "paths": [str(png)]}, common | {"faiss"}),
    }


def _call(tool: str, inp: dict):
    try:
        return vltools.call(tool, inp), None
    except ToolError as err:
        return None, err


@pytest.mark.parametrize(("kind", "damage"), CASES, ids=[f"{k}-{fn.__name__}" for k, fn in CASES])
def test_damaged_collection(kind, damage, tmp_path):
    name = make(kind, tmp_path)
    before = vltools.call("retrieve.dense", {"collection": name, "query": "rotor", "k": 5}).hits
    expected_file = damage(name, kind, tmp_path)
    target = target_of(damage)
    db_missing = not (folder(name) / "docs.sqlite").exists()

    # every tool: a ToolError (code corrupt, naming the file) or, for a tool that does not read the
    # damaged file and could not notice cheaply, a normal answer. Anything else escapes the test.
    added = 0
    for tool, (inp, reads) in tools_for(kind, name, tmp_path).items():
        out, err = _call(tool, inp)
        if err is None:
            assert target not in reads, f"{tool} answered from a damaged {target}: {out}"
            added += tool == "collection.add"
            continue
        assert err.code == "corrupt", (tool, err)
        assert expected_file in err.message, (tool, err.message)
        assert "keep changing" not in err.message
        assert "collection.repair" in err.hint or "collection.delete" in err.hint
    # a missing docs.sqlite is never silently recreated empty
    assert not db_missing or not (folder(name) / "docs.sqlite").exists()

    # list never fails; what it cannot open is listed as damaged, naming the file
    listed = vltools.call("collection.list", {})
    healthy = {c.name for c in listed.collections}
    broken = {d.name: d for d in listed.damaged}
    assert (name in healthy) != (name in broken)
    if target in ("manifest", "sqlite"):
        assert expected_file in broken[name].error

    # repair: heals everything but a damaged docs.sqlite, and says so for that one
    out, err = _call("collection.repair", {"collection": name})
    if target == "sqlite":
        assert err is not None and err.code == "corrupt" and "docs.sqlite" in err.message
        assert "documents themselves are damaged" in err.message and "collection.delete" in err.hint
    elif added:  # the add wrote a new BM25 index: nothing left to repair
        assert err is None and out.status == "healthy" and out.count == N_DOCS + 1, (out, err)
    else:
        assert err is None, err
        assert out.status == "repaired" and out.problems and out.count == N_DOCS
        assert any(expected_file in p for p in out.problems), out.problems
        vltools.call("collection.info", {"collection": name})
        after = vltools.call("retrieve.dense", {"collection": name, "query": "rotor", "k": 5}).hits
        assert [h.id for h in after] == [h.id for h in before]
        if kind == "text":
            assert vltools.call("retrieve.bm25", {"collection": name, "query": "rotor", "k": 3}).hits
        again = vltools.call("collection.repair", {"collection": name})
        assert again.status == "healthy" and again.rebuilt == []  # idempotent

    # delete always works, leaves no folder and no trash
    gone = vltools.call("collection.delete", {"collection": name})
    assert gone.deleted == name
    root = get_settings().collections_dir
    assert not folder(name).exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".trash-")]


@pytest.mark.parametrize("kind", ["text", "image"])
def test_stray_files_are_harmless(kind, tmp_path):
    name = make(kind, tmp_path)
    f = folder(name)
    (f / ".index.7.faiss.tmp").write_bytes(b"half a write")
    (f / ".manifest.json.abc.tmp").write_bytes(b"{")
    (f / "bm25.9").mkdir()
    locks = f.parent / ".locks"
    (locks / f"{name}.lock").write_text("stale")
    (f.parent / f".trash-{name}-dead").mkdir()
    (f.parent / f".trash-{name}-dead" / "docs.sqlite").write_bytes(b"x")
    assert vltools.call("collection.info", {"collection": name}).count == N_DOCS
    assert vltools.call("retrieve.dense", {"collection": name, "query": "rotor", "k": 3}).hits
    assert not (f.parent / f".trash-{name}-dead").exists()  # cleaned on open
    if kind == "text":
        out = vltools.call("collection.add", {"collection": name, "documents": [{"id": "n", "text": "rotor"}]})
        assert out.count == N_DOCS + 1
        assert not (f / ".index.7.faiss.tmp").exists()  # a write cleans leftovers
    assert vltools.call("collection.repair", {"collection": name}).status == "healthy"


def test_damaged_index_in_the_cache_of_a_running_process_is_noticed(tmp_path):
    """A server that already loaded the index notices when the file is replaced under it."""
    name = make("text", tmp_path)
    vltools.call("retrieve.dense", {"collection": name, "query": "rotor", "k": 3})  # cached now
    faiss_garbage_same_size(name, "text", tmp_path)
    with pytest.raises(ToolError, match="index.2.faiss does not match the checksum") as err:
        vltools.call("retrieve.dense", {"collection": name, "query": "rotor", "k": 3})
    assert err.value.code == "corrupt"


def test_deleted_and_recreated_collection_is_not_served_from_the_cache(tmp_path):
    name = make("text", tmp_path)
    vltools.call("retrieve.bm25", {"collection": name, "query": "rotor", "k": 3})
    # another process deletes and re-creates it: same name, same version numbers, other documents
    path = folder(name)
    shutil.rmtree(path)
    coll = create_collection(name, "text", model="minilm", settings=get_settings())
    docs = [{"id": f"x{i}", "text": f"rotor blade {i}"} for i in range(N_DOCS)]
    coll.add(docs[:6], _fake.vecs([d["text"] for d in docs[:6]]))
    coll.add(docs[6:], _fake.vecs([d["text"] for d in docs[6:]]))
    hits = vltools.call("retrieve.bm25", {"collection": name, "query": "rotor", "k": 3}).hits
    assert hits and all(h.id.startswith("x") for h in hits)


def test_repair_recomputes_missing_vectors_and_rebuilds_a_lost_manifest(tmp_path):
    name = make("text", tmp_path)
    before = [h.id for h in vltools.call("retrieve.dense", {"collection": name, "query": "rotor", "k": 5}).hits]
    conn = sqlite3.connect(folder(name) / "docs.sqlite")
    conn.execute("UPDATE docs SET vector = NULL WHERE id IN ('d1', 'd2')")
    conn.execute("UPDATE docs SET vector = x'00' WHERE id = 'd3'")
    conn.commit()
    conn.close()
    (folder(name) / "manifest.json").unlink()
    seen: list[tuple] = []
    out = vltools.call("collection.repair", {"collection": name}, progress=lambda *a: seen.append(a))
    assert out.status == "repaired" and out.reencoded == 3 and out.count == N_DOCS
    assert "manifest.json is missing" in out.problems
    assert "3 document(s) in docs.sqlite have no usable vector" in out.problems
    assert seen  # progress was reported
    info = vltools.call("collection.info", {"collection": name})
    assert (info.kind, info.model, info.dim, info.count) == ("text", "minilm", _fake.DIM, N_DOCS)
    after = [h.id for h in vltools.call("retrieve.dense", {"collection": name, "query": "rotor", "k": 5}).hits]
    assert after == before  # the fake encoder gives the same vectors again


def test_repair_says_what_cannot_be_recomputed_and_can_drop_it(tmp_path):
    name = make("image", tmp_path)  # its image files never existed
    conn = sqlite3.connect(folder(name) / "docs.sqlite")
    conn.execute("UPDATE docs SET vector = NULL WHERE title = '1.png'")
    conn.commit()
    conn.close()
    with pytest.raises(ToolError, match="vectors of 1 document.*cannot be recomputed") as err:
        vltools.call("collection.repair", {"collection": name})
    assert "drop_unrepairable" in err.value.hint
    out = vltools.call("collection.repair", {"collection": name, "drop_unrepairable": True})
    assert out.status == "repaired" and len(out.dropped) == 1 and out.count == N_DOCS - 1
    assert vltools.call("collection.info", {"collection": name}).count == N_DOCS - 1


def test_manifest_lost_in_an_old_collection_cannot_be_rebuilt(tmp_path):
    name = make("text", tmp_path)
    conn = sqlite3.connect(folder(name) / "docs.sqlite")
    conn.execute("DELETE FROM meta WHERE key = 'config'")  # as written by an older vltools
    conn.commit()
    conn.close()
    (folder(name) / "manifest.json").unlink()
    with pytest.raises(ToolError, match="holds no copy of the collection's settings"):
        vltools.call("collection.repair", {"collection": name})
    assert vltools.call("collection.delete", {"collection": name}).count is None


def test_open_checks_are_cheap_reads(tmp_path):
    """Opening reads the manifest and SQLite, not the index files (those are checked when loaded)."""
    name = make("text", tmp_path)
    faiss_garbage_same_size(name, "text", tmp_path)
    coll = open_collection(name, get_settings())  # same size: only the checksum on load can tell
    assert coll.count == N_DOCS
    with pytest.raises(ToolError, match="checksum"):
        coll.verify()


def test_newline_in_a_name_is_refused():
    from vltools.core.errors import InvalidInput
    from vltools.store._manifest import check_name

    with pytest.raises(InvalidInput):
        check_name("nl\n")
    for tool in ("collection.info", "collection.delete", "collection.repair"):
        with pytest.raises(InvalidInput, match="bad collection name"):
            vltools.call(tool, {"collection": "nl\n"})
    with pytest.raises(InvalidInput):
        vltools.call("collection.create", {"name": "nl\n", "model": "none"})
    root = get_settings().collections_dir
    assert not root.is_dir() or not [p for p in root.iterdir() if "\n" in p.name]


def test_a_collection_written_before_checksums_still_opens_and_gains_them_on_the_next_add(tmp_path):
    name = make("text", tmp_path)
    _edit_manifest(name, lambda m: m.pop("checksums"))
    conn = sqlite3.connect(folder(name) / "docs.sqlite")
    conn.execute("DELETE FROM meta WHERE key = 'config'")
    conn.commit()
    conn.close()
    assert vltools.call("collection.info", {"collection": name}).count == N_DOCS
    assert vltools.call("collection.repair", {"collection": name}).status == "healthy"
    vltools.call("collection.add", {"collection": name, "documents": [{"id": "n", "text": "rotor"}]})
    assert set(manifest(name)["checksums"]) == {"faiss", "bm25"}
    conn = sqlite3.connect(folder(name) / "docs.sqlite")
    assert conn.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
    conn.close()
