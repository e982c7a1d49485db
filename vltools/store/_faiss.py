"""FAISS side of a collection: inner product over L2-normalised vectors, ids = SQLite rids (int64).

Index types:
    flat  IndexIDMap2(IndexFlatIP) — exact; the default.
    hnsw  IndexIDMap2(IndexHNSWFlat, inner product) — approximate graph; rebuilt on upsert
          (HNSW cannot remove vectors).
    ivf   IndexIVFFlat with its own ids — approximate; ~4*sqrt(n) lists, retrained whenever the
          collection has doubled since the last training; probes nlist/8 lists by default.
    ivfpq IndexIVFPQ — approximate and compressed (``m`` bytes per vector instead of 4*dim); same
          list rule as ivf; codes of 8 bits (fewer on small collections, which cannot train 256 centroids).
IVF and IVF-PQ train on a seeded random sample of at most ``train_sample`` vectors (k-means needs no more)
and are then filled in chunks.

Sharding (``params["shards"]`` = n > 1): the vectors are split into n indexes by ``rid % n``, saved
as ``shard-{i}.faiss`` in one folder, searched in parallel threads (FAISS ``IndexShards``) and merged
exactly: the top-k of the shards together is the top-k of one index over the same vectors. IVF shards
share one trained quantizer, so the lists mean the same in every shard.
faiss is imported inside the functions (never at vltools import time).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "flat": {},
    "hnsw": {"M": 32, "ef_construction": 80, "ef_search": 64},
    # nprobe None = auto: max(16, nlist // 8) lists, ~0.93 recall@10 on a 100k set (benchmarks/README.md)
    "ivf": {"nlist": None, "nprobe": None, "trained_on": 0},
    # m None = auto: the largest of 64/32/16/8/4/2/1 sub-quantisers dividing dim with m <= dim/4
    "ivfpq": {"nlist": None, "nprobe": None, "m": None, "nbits": 8, "trained_on": 0},
}
TRAIN_SAMPLE = 100_000  # most vectors IVF k-means is trained on (FAISS itself uses <= 256 per list)
_FILL_CHUNK = 65_536  # vectors added per add() call while filling an index
SHARD_FILE = "shard-{}.faiss"


class Shards:
    """n FAISS indexes over disjoint ids (``rid % n`` picks the shard), searched together.

    ``parts[i]`` holds the vectors whose rid % n == i. ``searcher()`` wraps them in a threaded
    ``faiss.IndexShards`` (built once per loaded object), which searches every part in its own
    thread and merges the per-part top-k into the exact overall top-k.
    """

    def __init__(self, parts: list[Any]) -> None:
        if not parts:
            raise ValueError("a sharded index needs at least one shard")
        self.parts = list(parts)
        self._searcher: Any = None

    ntotal = property(lambda self: int(sum(p.ntotal for p in self.parts)))
    d = property(lambda self: int(self.parts[0].d))
    is_trained = property(lambda self: all(p.is_trained for p in self.parts))

    def sizes(self) -> list[int]:
        return [int(p.ntotal) for p in self.parts]

    def searcher(self) -> Any:
        if self._searcher is None:
            faiss = _faiss()
            sh = faiss.IndexShards(self.d, True, False)  # threaded, keep each part's own ids
            for p in self.parts:
                sh.add_shard(p)
            self._searcher = sh  # self.parts keeps the parts alive (IndexShards does not own them)
        return self._searcher


def shard_count(params: dict[str, Any]) -> int:
    return max(1, int(params.get("shards") or 1))


def is_sharded(index: Any) -> bool:
    return isinstance(index, Shards)


def file_name(version: int, params: dict[str, Any]) -> str:
    """The manifest's faiss entry of a version: a file, or a folder of shard files when sharded."""
    return f"index.{version}.shards" if shard_count(params) > 1 else f"index.{version}.faiss"


def _faiss():
    import faiss

    # vltools searches one query at a time, where OpenMP only adds overhead (measured 6x slower
    # with 2 threads on a busy 2-core machine, benchmarks/README.md). The thread count comes from
    # settings.faiss_threads (0: FAISS's default) and is set for the calling thread only: OpenMP
    # keeps it per thread, so the host's own FAISS use elsewhere is not changed.
    from vltools.core.settings import get_settings

    threads = get_settings().faiss_threads
    if threads > 0:
        faiss.omp_set_num_threads(threads)
    return faiss


def _nlist_for(n: int) -> int:
    # ~4*sqrt(n) lists, but at least 39 training points per list (FAISS's own guidance).
    return max(1, min(int(4 * math.sqrt(max(n, 1))), n // 39))


def _pq_m(dim: int) -> int:
    return next(m for m in (64, 32, 16, 8, 4, 2, 1) if dim % m == 0 and m <= max(1, dim // 4))


def _pq_nbits(n: int, wanted: int) -> int:
    # 2**nbits centroids per sub-quantiser need ~39 training points each; small collections get fewer bits.
    return max(1, min(int(wanted), int(math.log2(max(2, n // 39)))))


def empty(index_type: str, dim: int, params: dict[str, Any]) -> Any:
    faiss = _faiss()
    if index_type == "ivfpq":
        nlist = int(params["nlist"] or 1)
        m = int(params.get("m") or _pq_m(dim))
        return faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, m, int(params.get("nbits") or 8),
                                faiss.METRIC_INNER_PRODUCT)
    if index_type == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if index_type == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, int(params["M"]), faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = int(params["ef_construction"])
        return faiss.IndexIDMap2(inner)
    if index_type == "ivf":
        nlist = int(params["nlist"] or 1)
        quantizer = faiss.IndexFlatIP(dim)
        return faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    raise ValueError(f"unknown index type {index_type!r}")


def trained(index_type: str, dim: int, params: dict[str, Any], n: int, sample: np.ndarray) -> Any:
    """An empty index ready to fill with ``n`` vectors: IVF(-PQ) trained on ``sample`` (``params``
    gets the settings used: nlist, m, nbits, trained_on)."""
    if index_type in ("ivf", "ivfpq"):
        params["nlist"] = _nlist_for(n)
        params["trained_on"] = int(n)
    if index_type == "ivfpq":
        params["m"] = int(params.get("m") or _pq_m(dim))
        params["nbits"] = _pq_nbits(len(sample), int(params.get("nbits") or 8))
    index = empty(index_type, dim, params)
    if index_type in ("ivf", "ivfpq") and len(sample):
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
    return index


def train_sample(vecs: np.ndarray, limit: int = TRAIN_SAMPLE, seed: int = 0) -> np.ndarray:
    """At most ``limit`` rows of ``vecs``, drawn at random with a fixed seed (all of them when fewer)."""
    if len(vecs) <= limit:
        return vecs
    pick = np.sort(np.random.default_rng(seed).choice(len(vecs), size=limit, replace=False))
    return vecs[pick]


def fill(index: Any, rids: np.ndarray, vecs: np.ndarray) -> Any:
    """Add vectors in chunks (routed by ``rid % n`` when sharded); returns ``index``."""
    rids = np.asarray(rids, dtype=np.int64)
    if is_sharded(index):
        n = len(index.parts)
        for i, part in enumerate(index.parts):
            mine = rids % n == i
            fill(part, rids[mine], vecs[mine])
        index._searcher = None
        return index
    for start in range(0, len(rids), _FILL_CHUNK):
        part = np.ascontiguousarray(vecs[start : start + _FILL_CHUNK], dtype=np.float32)
        index.add_with_ids(part, rids[start : start + _FILL_CHUNK])
    return index


def build(index_type: str, dim: int, params: dict[str, Any], rids: np.ndarray, vecs: np.ndarray) -> Any:
    """A fresh index over all vectors (IVF is trained here; ``params`` gets the IVF settings used);
    a `Shards` of ``params["shards"]`` parts when that is above 1 (IVF parts share one training)."""
    base = trained(index_type, dim, params, len(rids), train_sample(vecs))
    n = shard_count(params)
    index = Shards([base if i == n - 1 else clone(base) for i in range(n)]) if n > 1 else base
    return fill(index, rids, vecs)


def clone(index: Any) -> Any:
    if is_sharded(index):
        return Shards([clone(p) for p in index.parts])
    return _faiss().clone_index(index)


def _remove(index: Any, rids: np.ndarray) -> None:
    if is_sharded(index):
        n = len(index.parts)
        for i, part in enumerate(index.parts):
            mine = rids[rids % n == i]
            if len(mine):
                part.remove_ids(mine)
        index._searcher = None
    else:
        index.remove_ids(rids)


def update(
    index: Any | None,
    index_type: str,
    dim: int,
    params: dict[str, Any],
    new_rids: np.ndarray,
    new_vecs: np.ndarray,
    changed_rids: np.ndarray,
    changed_vecs: np.ndarray,
    all_vectors,
) -> Any:
    """The next index version: a modified copy of ``index`` or a rebuild (via ``all_vectors()``).

    ``all_vectors`` returns (rids, vecs) of the whole collection after this write.
    """
    total = (0 if index is None else index.ntotal) + len(new_rids)
    must_rebuild = (
        index is None
        or (index_type == "hnsw" and len(changed_rids))
        or (index_type in ("ivf", "ivfpq")
            and (not index.is_trained or total > 2 * max(1, int(params.get("trained_on") or 0))))
        or (is_sharded(index) != (shard_count(params) > 1))
        or (is_sharded(index) and len(index.parts) != shard_count(params))
    )
    if must_rebuild:
        rids, vecs = all_vectors()
        return build(index_type, dim, params, rids, vecs)
    out = clone(index)
    if len(changed_rids):
        _remove(out, changed_rids.astype(np.int64))
        fill(out, changed_rids, changed_vecs)
    if len(new_rids):
        fill(out, new_rids, new_vecs)
    return out


def save(index: Any, path: Path) -> dict[str, Any]:
    """Write next to ``path`` and rename into place; returns {"size", "sha256"} for the manifest
    (for a `Shards` folder: {file name: [size, sha256]} of its shard files)."""
    if is_sharded(index):
        tmp = path.with_name(f".{path.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        sums: dict[str, Any] = {}
        for i, part in enumerate(index.parts):
            got = save(part, tmp / SHARD_FILE.format(i))
            sums[SHARD_FILE.format(i)] = [got["size"], got["sha256"]]
        if path.exists():  # left by a writer that died before committing this version (we hold the lock)
            shutil.rmtree(path)
        os.replace(tmp, path)
        return sums
    data = _faiss().serialize_index(index)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(memoryview(data))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return {"size": int(data.nbytes), "sha256": hashlib.sha256(memoryview(data)).hexdigest()}


def load(path: Path, checksum: dict[str, Any] | None = None) -> Any:
    """Read an index (a folder of shards gives a `Shards`); with ``checksum`` the bytes are verified
    before FAISS parses them (ValueError if not)."""
    if path.is_dir():
        names = sorted((f.name for f in path.iterdir()), key=lambda f: (len(f), f))
        expected = [SHARD_FILE.format(i) for i in range(len(checksum))] if checksum is not None else names
        if names != expected:
            odd = sorted(set(names) ^ set(expected))
            raise ValueError(f"holds {len(names)} shard files, the manifest recorded {len(expected)} "
                             f"(differing: {', '.join(odd[:3])})")
        parts = []
        for f in expected:
            sums = checksum[f] if checksum is not None else None
            try:
                parts.append(load(path / f, {"size": sums[0], "sha256": sums[1]} if sums else None))
            except ValueError as err:
                raise ValueError(f"{f} {err}") from None
        return Shards(parts)
    data = path.read_bytes()
    if checksum is not None:
        if len(data) != checksum.get("size"):
            raise ValueError(f"has {len(data):,} bytes, the manifest recorded {checksum.get('size'):,}")
        if hashlib.sha256(data).hexdigest() != checksum.get("sha256"):
            raise ValueError("does not match the checksum recorded in the manifest")
    return _faiss().deserialize_index(np.frombuffer(data, dtype=np.uint8))


def use_gpu(settings: Any) -> bool:
    """Search on the GPU: the device is cuda (or auto), ``settings.faiss_gpu`` is on, and faiss-gpu sees a GPU.

    The same rule as `vltools.models.device.plan` (without importing torch: searching stays light).
    """
    if not settings.faiss_gpu or not (settings.device == "auto" or settings.device.startswith("cuda")):
        return False
    return int(getattr(_faiss(), "get_num_gpus", lambda: 0)()) > 0


def to_gpu(index: Any) -> Any:
    """A GPU copy of ``index`` for searching (shards: each part on the GPUs, then threaded merge); the
    CPU index stays the one that is written and saved. Index types FAISS cannot move (HNSW) stay on CPU."""
    faiss = _faiss()
    if is_sharded(index):
        return Shards([to_gpu(p) for p in index.parts])
    try:
        return faiss.index_cpu_to_all_gpus(index)
    except RuntimeError:  # e.g. HNSW has no GPU version
        return index


def search(index: Any, index_type: str, params: dict[str, Any], queries: np.ndarray, k: int):
    """(scores, rids) arrays of shape (n, k'); k' <= k; missing slots have rid -1."""
    faiss = _faiss()
    k = max(1, min(int(k), int(index.ntotal)))
    for part in index.parts if is_sharded(index) else [index]:
        if index_type == "hnsw":
            faiss.downcast_index(part.index).hnsw.efSearch = max(int(params["ef_search"]), k)
        elif index_type in ("ivf", "ivfpq"):
            part.nprobe = min(int(params.get("nprobe") or max(16, part.nlist // 8)), part.nlist)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if is_sharded(index):
        return index.searcher().search(q, k)
    return index.search(q, k)
