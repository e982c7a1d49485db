"""Deleting a collection while other threads read and add to it (issue 21): they get `not_found`,
never a raw sqlite3/FileNotFoundError, and no `.trash-*` folder is left behind."""

from __future__ import annotations

import random
import threading
import time

import pytest

import vltools
from vltools.core.errors import ToolError
from vltools.core.settings import get_settings
from vltools.store import create_collection, open_collection

from . import _fake
from ._fixtures import unique

READERS = 4
ROUNDS = 6


@pytest.fixture(autouse=True)
def fake_encoder(monkeypatch):
    _fake.install(monkeypatch)


def _fill(name: str, n: int = 40) -> None:
    coll = create_collection(name, "text", model="minilm", settings=get_settings())
    docs = [{"id": f"d{i}", "text": f"note {i} on rotor {i % 7} and wing {i % 5}"} for i in range(n)]
    coll.add(docs, _fake.vecs([d["text"] for d in docs]))


def _reader(name: str, stop: threading.Event, seen: dict, lock: threading.Lock, seed: int) -> None:
    rng = random.Random(seed)
    stale = None  # a handle opened before the delete, used after it
    while not stop.is_set():
        op = rng.choice(["bm25", "dense", "hybrid", "info", "list", "handle", "add"])
        try:
            if op == "add":
                doc = {"id": f"a{seed}-{rng.random()}", "text": "an added note on rotor wings"}
                vltools.call("collection.add", {"collection": name, "documents": [doc]})
            elif op == "list":
                vltools.call("collection.list", {})
            elif op == "info":
                vltools.call("collection.info", {"collection": name})
            elif op == "handle":
                stale = stale or open_collection(name, get_settings())
                stale.get([h for h, _ in stale.search(_fake.vec("rotor"), 3)])
                stale.bm25_search("wing", 3)
            else:
                vltools.call(f"retrieve.{op}", {"collection": name, "query": "rotor wing", "k": 5})
            key = "ok"
        except ToolError as err:
            key = err.code
        except Exception as err:  # noqa: BLE001 - exactly what must not happen
            key = f"RAW {type(err).__name__}: {err}"
        with lock:
            seen[key] = seen.get(key, 0) + 1


def test_readers_of_a_deleted_collection_get_not_found_and_no_trash_is_left():
    seen: dict[str, int] = {}
    lock = threading.Lock()
    root = get_settings().collections_dir
    for r in range(ROUNDS):
        name = unique("busy")
        _fill(name)
        stop = threading.Event()
        threads = [
            threading.Thread(target=_reader, args=(name, stop, seen, lock, 100 * r + i)) for i in range(READERS)
        ]
        for t in threads:
            t.start()
        time.sleep(0.05 + 0.05 * r)
        out = vltools.call("collection.delete", {"collection": name})
        assert out.deleted == name and out.count >= 40
        time.sleep(0.2)  # the readers keep going against the deleted collection
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert not (root / name).exists()
    raw = {k: v for k, v in seen.items() if k.startswith("RAW")}
    assert not raw, raw
    assert set(seen) <= {"ok", "not_found"}, seen
    assert seen.get("not_found", 0) > 0 and seen.get("ok", 0) > 0, seen
    assert not [p.name for p in root.iterdir() if p.name.startswith(".trash-")]


def test_a_killed_delete_leaves_trash_that_the_next_list_removes():
    root = get_settings().collections_dir
    root.mkdir(parents=True, exist_ok=True)
    trash = root / ".trash-old-0123"
    (trash / "bm25.3").mkdir(parents=True)
    (trash / "docs.sqlite").write_bytes(b"x" * 100)
    vltools.call("collection.list", {})
    assert not trash.exists()


def test_delete_of_a_missing_collection_is_not_found():
    with pytest.raises(ToolError) as err:
        vltools.call("collection.delete", {"collection": unique("never")})
    assert err.value.code == "not_found"
