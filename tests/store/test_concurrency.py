"""Two processes writing one collection at once, and a writer killed mid-add."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from vltools.core.settings import get_settings
from vltools.store import create_collection, open_collection

from ._fixtures import some_docs, unique, write_jsonl

ROOT = Path(__file__).resolve().parents[2]


def _writer(name: str, prefix: str, batches: int, size: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.store._writer", name, prefix, str(batches), str(size), *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _consistent(name: str) -> None:
    coll = open_collection(name, get_settings())
    db_ids = {r[0] for r in coll._conn().execute("SELECT id FROM docs")}
    assert coll.count == len(db_ids)
    index = coll._load("faiss")
    assert index.ntotal == coll.count
    retriever, rids = coll._load("bm25")
    assert len(rids) == coll.count


def test_two_processes_adding_at_once_both_land():
    name = unique("race")
    create_collection(name, "text", model="minilm", settings=get_settings())
    procs = [_writer(name, p, 8, 25) for p in ("alpha", "beta")]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert out.startswith("done")
    coll = open_collection(name, get_settings())
    assert coll.count == 2 * 8 * 25
    assert coll.has(["alpha-7-24", "beta-7-24", "alpha-0-0", "beta-0-0"]) == {
        "alpha-7-24",
        "beta-7-24",
        "alpha-0-0",
        "beta-0-0",
    }
    assert coll.bm25_search("alpha", 1000)[0][0].startswith("alpha")
    assert len(coll.bm25_search("beta", 1000)) == 200
    _consistent(name)


def test_writer_killed_after_commit_is_recovered_on_open():
    name = unique("killed")
    coll = create_collection(name, "text", model="minilm", settings=get_settings())
    vec = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    coll.add([{"id": f"base{i}", "text": "base document"} for i in range(3)], vec)
    p = _writer(name, "gamma", 1, 10, "crash-before-manifest")
    p.communicate(timeout=300)
    assert p.returncode == 17  # it died where we wanted
    # the database holds the committed batch; the manifest still names the old version
    again = open_collection(name, get_settings())  # notices and rebuilds the indexes
    assert again.count == 13
    assert again.search(vec[1], 1)[0][0] == "base1"
    assert len(again.bm25_search("gamma", 100)) == 10
    _consistent(name)


def test_writer_killed_after_its_first_commit_is_recovered_on_open():
    """The crash came before any manifest named a dimension: recovery takes it from the stored vectors."""
    name = unique("killed0")
    create_collection(name, "text", model="minilm", settings=get_settings())
    p = _writer(name, "first", 1, 4, "crash-before-manifest")
    p.communicate(timeout=300)
    assert p.returncode == 17
    again = open_collection(name, get_settings())
    assert (again.count, again.dim) == (4, 16)
    assert again.verify().search(np.ones(16, np.float32), 10)
    _consistent(name)


def test_writer_killed_before_commit_leaves_old_state_and_next_add_works():
    name = unique("killed2")
    coll = create_collection(name, "text", model="minilm", settings=get_settings())
    vec = np.random.default_rng(1).standard_normal((3, 16)).astype(np.float32)
    coll.add([{"id": f"base{i}", "text": "base document"} for i in range(3)], vec)
    p = _writer(name, "delta", 1, 10, "crash-before-commit")
    p.communicate(timeout=300)
    assert p.returncode == 18
    assert (coll.path / "bm25.2").exists()  # the dead writer's uncommitted files are still there
    again = open_collection(name, get_settings())
    assert again.count == 3 and again.has(["delta-0-0"]) == set() and again.bm25_search("delta", 5) == []
    out = again.add([{"id": "new", "text": "a new document about rotors"}], vec[:1])
    assert out["count"] == 4 and again.bm25_search("rotors", 1)[0][0] == "new"
    _consistent(name)


def _cli_add(name: str, path: Path) -> subprocess.Popen:
    inp = json.dumps({"collection": name, "path": str(path)})
    return subprocess.Popen(
        [sys.executable, "-m", "vltools.cli", "call", "collection.add", "--json", inp],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(p: subprocess.Popen) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=300)
    return p.returncode, out, err


def test_two_cli_processes_adding_at_once(tmp_path):
    """Through `vltools call collection.add`: disjoint batches both land; the same ids twice -> one clear Conflict."""
    import vltools

    name = unique("cli-race")
    vltools.call("collection.create", {"name": name, "text_model": "none"})
    docs = some_docs(80)
    a = write_jsonl(tmp_path / "a.jsonl", docs[:40])
    b = write_jsonl(tmp_path / "b.jsonl", docs[40:])
    procs = [_cli_add(name, a), _cli_add(name, b)]
    results = [_finish(p) for p in procs]
    assert [code for code, _, _ in results] == [0, 0], results
    assert open_collection(name, get_settings()).count == 80
    # both add the same new documents: exactly one wins, the other is told why, nothing is half-written
    c = write_jsonl(tmp_path / "c.jsonl", some_docs(120)[80:])
    procs = [_cli_add(name, c), _cli_add(name, c)]
    results = sorted(_finish(p) for p in procs)
    assert [code for code, _, _ in results] == [0, 2], results
    assert "conflict:" in results[1][2] and "already in collection" in results[1][2]
    assert open_collection(name, get_settings()).count == 120
    _consistent_bm25(name)


def _consistent_bm25(name: str) -> None:
    coll = open_collection(name, get_settings())
    db_ids = {r[0] for r in coll._conn().execute("SELECT id FROM docs")}
    assert coll.count == len(db_ids)
    _, rids = coll._load("bm25")
    assert len(rids) == coll.count
