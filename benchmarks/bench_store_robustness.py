"""Store robustness under crashes and concurrency (issue 21's probe figures, rerun):

(a) kill-during-write: a writer subprocess adds small batches to a collection and is SIGKILLed at a
    random moment; then the collection is opened and fully verified (SQLite integrity check, FAISS
    and BM25 checksums, counts of SQLite rows = manifest = FAISS vectors = BM25 documents). Counted:
    corrupt or unreadable collections, and committed documents lost (an add whose call returned in
    the writer, acknowledged on its stdout before the kill, must be there).
(b) 4 writer processes + 4 reader threads on one collection at once: documents lost, reader
    exceptions that are not ToolErrors.
(c) delete while in use: threads calling retrieve.bm25/dense/hybrid, collection.info/list/add and
    a handle opened before the delete, while the main thread deletes: non-ToolError exceptions,
    ToolError codes, `.trash-*` folders left.
(d) 500 concurrent MCP calls (collection.add and retrieve.bm25) through the in-process server over
    memory streams, in 10 sessions: adds lost, errors.

Vectors come from a fast fake 16-d encoder (a hash of the text), not MiniLM: what is measured is
the store, and the real encoder would make each kill cycle seconds slower without touching the
store's write path. The collections are text (flat FAISS + BM25), text (HNSW + BM25), image (flat
FAISS) and text BM25-only, in rotation.

    nice -n 19 .venv/bin/python benchmarks/bench_store_robustness.py [--kills 104] [--delete-rounds 30]

Writes benchmarks/results/store_robustness.json and .md, in a throwaway VLTOOLS_HOME.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DIM = 16
KINDS = [  # (collection kind, model, index type)
    ("text", "minilm", "flat"),
    ("text", "minilm", "hnsw"),
    ("image", "demo", "flat"),
    ("text", "none", "flat"),
]


def fake_vecs(texts: list[str]) -> np.ndarray:
    out = np.stack([np.random.default_rng(zlib.crc32(t.encode())).standard_normal(DIM) for t in texts])
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


class FakeEncoder:
    def encode(self, texts, *, batch_size=64, progress=None):
        return fake_vecs(texts)

    def encode_texts(self, texts, *, batch_size=64, **_):
        return fake_vecs(texts), [None] * len(texts)


def install_fake() -> None:
    from vltools.core.context import Context

    fake = FakeEncoder()
    Context.text = lambda self, spec=None: fake  # type: ignore[method-assign]
    Context.clip = lambda self, spec=None: fake  # type: ignore[method-assign]


def records(prefix: str, b: int, n: int, kind: str) -> list[dict]:
    recs = [{"id": f"{prefix}-{b}-{i}", "text": f"{prefix} batch {b} item {i} rotor wing"} for i in range(n)]
    if kind == "image":
        for r in recs:
            r.update(path=f"/nonexistent/{r['id']}.png", hash=r["id"])
    return recs


# -- writer subprocess ------------------------------------------------------------------------
def writer(name: str, prefix: str, batches: int, size: int) -> None:
    """Add batches; "begin b" before and "acked b" after each add (acked = committed and returned)."""
    import bm25s  # noqa: F401 - imported before "ready", so kills land in adds, not in imports
    import faiss  # noqa: F401

    from vltools.core.settings import get_settings
    from vltools.store import open_collection

    coll = open_collection(name, get_settings())
    print("ready", flush=True)
    for b in range(batches):
        recs = records(prefix, b, size, coll.kind)
        vecs = fake_vecs([r["text"] for r in recs]) if coll.has_vectors else None
        print(f"begin {b}", flush=True)
        coll.add(recs, vecs)
        print(f"acked {b}", flush=True)


def spawn_writer(name: str, prefix: str, batches: int, size: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, __file__, "--writer", name, prefix, str(batches), str(size)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def verify(name: str) -> tuple[str | None, set[str]]:
    """(problem or None, ids present) after a full check of every file."""
    from vltools.core.errors import ToolError
    from vltools.core.settings import get_settings
    from vltools.store import _db, open_collection
    from vltools.store.collection import _forget

    settings = get_settings()
    folder = settings.collections_dir / name
    _forget(folder)  # read everything from disk, as a new process would
    why = _db.integrity_problem(folder / "docs.sqlite")
    if why:
        return f"docs.sqlite {why}", set()
    try:
        coll = open_collection(name, settings).verify()
        with coll._sql() as conn:
            ids = {r[0] for r in conn.execute("SELECT id FROM docs")}
        if len(ids) != coll.count:
            return f"{len(ids)} rows, manifest {coll.count}", ids
        return None, ids
    except ToolError as err:
        return err.render(), set()
    except Exception as err:  # noqa: BLE001 - counted, that is the point
        return f"RAW {type(err).__name__}: {err}", set()


def bench_kills(kills: int, rng: random.Random) -> dict:
    from vltools.core.settings import get_settings
    from vltools.store import create_collection

    names = []
    for i, (kind, model, index) in enumerate(KINDS):
        name = f"kill-{i}-{kind}-{model}-{index}"
        create_collection(name, kind, model=model, index=index, settings=get_settings())
        names.append(name)
    acked: dict[str, set[str]] = {n: set() for n in names}
    out = {"kills": 0, "kills_inside_an_add": 0, "corrupt_or_unreadable": 0, "lost_committed_documents": 0,
           "problems": [], "acked_adds": 0, "documents_at_end": {}}  # fmt: skip
    for k in range(kills):
        name = names[k % len(names)]
        kind = KINDS[k % len(names)][0]
        p = spawn_writer(name, f"k{k}", 10_000, 5)
        line = p.stdout.readline()
        if line.strip() != "ready":  # the writer could not even open the collection
            p.wait(60)
            out["writers_that_could_not_open"] = out.get("writers_that_could_not_open", 0) + 1
            out["problems"].append(f"kill {k} ({name}): writer failed: {p.stderr.read()[-300:]}")
            continue
        time.sleep(rng.uniform(0.0, 0.6))
        p.send_signal(signal.SIGKILL)
        rest, _ = p.communicate(timeout=60)
        lines = rest.split()
        last = None
        for word, num in zip(lines[::2], lines[1::2], strict=False):
            if word == "acked":
                acked[name].update(r["id"] for r in records(f"k{k}", int(num), 5, kind))
                out["acked_adds"] += 1
            last = word
        out["kills"] += 1
        out["kills_inside_an_add"] += last == "begin"
        problem, ids = verify(name)
        if problem:
            out["corrupt_or_unreadable"] += 1
            out["problems"].append(f"kill {k} ({name}): {problem}")
        lost = acked[name] - ids
        out["lost_committed_documents"] += len(lost)
        acked[name] -= lost  # count each lost document once
    for name in names:
        out["documents_at_end"][name] = len(verify(name)[1])
    return out


# -- concurrent writers and readers ---------------------------------------------------------------
def bench_writers_readers(writers: int, readers: int, batches: int, size: int) -> dict:
    from vltools.core.errors import ToolError
    from vltools.core.settings import get_settings
    from vltools.store import create_collection, open_collection

    name = "concurrent"
    create_collection(name, "text", model="minilm", settings=get_settings())
    procs = [spawn_writer(name, f"w{i}", batches, size) for i in range(writers)]
    stop = threading.Event()
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def read(seed: int) -> None:
        r = random.Random(seed)
        while not stop.is_set():
            try:
                coll = open_collection(name, get_settings())
                if r.random() < 0.5:
                    coll.get([h for h, _ in coll.bm25_search("rotor wing", 5)])
                elif coll.count:
                    coll.get([h for h, _ in coll.search(fake_vecs(["rotor"])[0], 5)])
                key = "ok"
            except ToolError as err:
                key = err.code
            except Exception as err:  # noqa: BLE001
                key = f"RAW {type(err).__name__}: {str(err)[:120]}"
            with lock:
                seen[key] = seen.get(key, 0) + 1

    threads = [threading.Thread(target=read, args=(i,)) for i in range(readers)]
    for t in threads:
        t.start()
    codes = [p.wait(timeout=1800) for p in procs]
    stop.set()
    for t in threads:
        t.join()
    problem, ids = verify(name)
    expected = {f"w{i}-{b}-{j}" for i in range(writers) for b in range(batches) for j in range(size)}
    return {
        "writers": writers, "readers": readers, "documents_written": len(expected),
        "writer_exit_codes": codes, "lost_documents": len(expected - ids), "corrupt": problem,
        "reader_calls": seen, "reader_raw_exceptions": sum(v for k, v in seen.items() if k.startswith("RAW")),
    }  # fmt: skip


# -- delete while in use --------------------------------------------------------------------------
def bench_delete_in_use(rounds: int, readers: int, rng: random.Random) -> dict:
    import vltools
    from vltools.core.errors import ToolError
    from vltools.core.settings import get_settings
    from vltools.store import create_collection, open_collection

    seen: dict[str, int] = {}
    lock = threading.Lock()

    def read(name: str, stop: threading.Event, seed: int) -> None:
        r = random.Random(seed)
        stale = None
        while not stop.is_set():
            op = r.choice(["bm25", "dense", "hybrid", "info", "list", "handle", "add"])
            try:
                if op == "add":
                    doc = {"id": f"a{seed}-{r.random()}", "text": "an added note on rotor wings"}
                    vltools.call("collection.add", {"collection": name, "documents": [doc]})
                elif op == "list":
                    vltools.call("collection.list", {})
                elif op == "info":
                    vltools.call("collection.info", {"collection": name})
                elif op == "handle":
                    stale = stale or open_collection(name, get_settings())
                    stale.get([h for h, _ in stale.search(fake_vecs(["rotor"])[0], 3)])
                    stale.bm25_search("wing", 3)
                else:
                    vltools.call(f"retrieve.{op}", {"collection": name, "query": "rotor wing", "k": 5})
                key = "ok"
            except ToolError as err:
                key = err.code
            except Exception as err:  # noqa: BLE001
                key = f"RAW {type(err).__name__}: {str(err)[:120]}"
            with lock:
                seen[key] = seen.get(key, 0) + 1

    root = get_settings().collections_dir
    for r in range(rounds):
        name = f"busy-{r}"
        coll = create_collection(name, "text", model="minilm", settings=get_settings())
        recs = records(name, 0, 40, "text")
        coll.add(recs, fake_vecs([x["text"] for x in recs]))
        stop = threading.Event()
        threads = [threading.Thread(target=read, args=(name, stop, r * 100 + i)) for i in range(readers)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.02, 0.3))
        vltools.call("collection.delete", {"collection": name})
        time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join()
    trash = [p.name for p in root.iterdir() if p.name.startswith(".trash-")]
    return {
        "rounds": rounds, "readers": readers, "calls": sum(seen.values()), "outcomes": seen,
        "raw_exceptions": sum(v for k, v in seen.items() if k.startswith("RAW")), "trash_left": len(trash),
    }  # fmt: skip


# -- concurrent MCP calls -------------------------------------------------------------------------
async def _mcp(calls: int, sessions: int) -> dict:
    from contextlib import AsyncExitStack

    from mcp.shared.memory import create_connected_server_and_client_session

    import vltools
    from vltools.server import build_server

    name = "mcp-load"
    vltools.call("collection.create", {"name": name, "kind": "text", "model": "none"})
    outcomes: dict[str, int] = {}
    added: list[str] = []
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(create_connected_server_and_client_session(build_server()))
            for _ in range(sessions)
        ]

        async def one(i: int) -> None:
            client = clients[i % sessions]
            if i % 2 == 0:
                docs = [{"id": f"m{i}-{j}", "text": f"mcp call {i} doc {j} rotor"} for j in range(2)]
                res = await client.call_tool("collection_add", {"collection": name, "documents": docs})
                if not res.isError:
                    added.extend(d["id"] for d in docs)
            else:
                res = await client.call_tool("retrieve_bm25", {"collection": name, "query": "rotor", "k": 5})
            key = "ok" if not res.isError else (res.content[0].text.split(":")[0] if res.content else "error")
            outcomes[key] = outcomes.get(key, 0) + 1

        await asyncio.gather(*(one(i) for i in range(calls)))
    problem, ids = verify(name)
    return {"calls": calls, "sessions": sessions, "outcomes": outcomes, "adds_acknowledged_documents": len(added),
            "lost_documents": len(set(added) - ids), "corrupt": problem}  # fmt: skip


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--writer":
        writer(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=104, help="SIGKILLs during writes (a)")
    p.add_argument("--batches", type=int, default=20, help="(b): batches per writer")
    p.add_argument("--delete-rounds", type=int, default=30, help="(c): delete-while-in-use rounds")
    p.add_argument("--mcp-calls", type=int, default=500, help="(d): concurrent MCP calls (0 to skip)")
    p.add_argument("--seed", type=int, default=21)
    args = p.parse_args()

    home = tempfile.mkdtemp(prefix="vltools-bench-store-")
    os.environ["VLTOOLS_HOME"] = home
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from vltools.core.settings import reset_settings

    reset_settings()
    install_fake()
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    timings = {}
    kills = bench_kills(args.kills, rng)
    timings["kills_s"] = round(time.perf_counter() - t0, 1)
    t = time.perf_counter()
    conc = bench_writers_readers(4, 4, args.batches, 10)
    timings["writers_readers_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    dele = bench_delete_in_use(args.delete_rounds, 4, rng)
    timings["delete_in_use_s"] = round(time.perf_counter() - t, 1)
    mcp = None
    if args.mcp_calls:
        t = time.perf_counter()
        mcp = asyncio.run(_mcp(args.mcp_calls, 10))
        timings["mcp_s"] = round(time.perf_counter() - t, 1)
    result = {
        "benchmark": "store_robustness",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_average": os.getloadavg(),
        "encoder": f"fake {DIM}-d hash vectors (the store is measured, not the encoder)",
        "seed": args.seed,
        "kill_during_write": kills,
        "writers_and_readers": conc,
        "delete_while_in_use": dele,
        "mcp_concurrent_calls": mcp,
        "seconds": timings,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "store_robustness.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Store robustness: kills during writes, concurrent writers/readers, delete while in use, MCP load",
        "",
        f"{result['date']} — {result['machine']}, load average "
        f"{', '.join(f'{x:.1f}' for x in result['load_average'])}; vectors: {result['encoder']}",
        "",
        "| check | runs | result |",
        "|---|---|---|",
        f"| (a) SIGKILL of a writer during adds | {kills['kills']} kills "
        f"({kills['kills_inside_an_add']} inside an add), {kills['acked_adds']} acknowledged adds | "
        f"{kills['corrupt_or_unreadable']} corrupt/unreadable, "
        f"{kills['lost_committed_documents']} committed documents lost |",
        f"| (b) 4 writer processes + 4 reader threads | {conc['documents_written']} documents, "
        f"{sum(conc['reader_calls'].values())} reads | {conc['lost_documents']} lost, "
        f"{conc['reader_raw_exceptions']} non-ToolError exceptions, corrupt: {conc['corrupt'] or 'no'} |",
        f"| (c) delete while in use | {dele['rounds']} deletes, {dele['calls']} calls | "
        f"{dele['raw_exceptions']} non-ToolError exceptions; outcomes {dele['outcomes']}; "
        f"{dele['trash_left']} trash folders left |",
    ]
    if mcp:
        lines.append(
            f"| (d) concurrent MCP calls (in-process server, {mcp['sessions']} sessions) | {mcp['calls']} calls | "
            f"{mcp['lost_documents']} of {mcp['adds_acknowledged_documents']} added documents lost; "
            f"outcomes {mcp['outcomes']}; corrupt: {mcp['corrupt'] or 'no'} |"
        )
    lines += ["", f"Seconds: {timings}", ""]
    if kills["problems"]:
        lines += ["Problems:", *[f"- {x}" for x in kills["problems"]], ""]
    (RESULTS / "store_robustness.md").write_text("\n".join(lines))
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
