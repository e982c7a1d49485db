"""FAISS side of a collection: inner product over L2-normalised vectors, ids = SQLite rids (int64).

Index types:
    flat  IndexIDMap2(IndexFlatIP) — exact; the default.
    hnsw  IndexIDMap2(IndexHNSWFlat, inner product) — approximate graph; rebuilt on upsert
          (HNSW cannot remove vectors).
    ivf   IndexIVFFlat with its own ids — approximate; ~4*sqrt(n) lists, retrained from all vectors
          whenever the collection has doubled since the last training; probes nlist/8 lists by default.
faiss is imported inside the functions (never at vltools import time).
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "flat": {},
    "hnsw": {"M": 32, "ef_construction": 80, "ef_search": 64},
    # nprobe None = auto: max(16, nlist // 8) lists, ~0.93 recall@10 on a 100k set (benchmarks/README.md)
    "ivf": {"nlist": None, "nprobe": None, "trained_on": 0},
}


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


def empty(index_type: str, dim: int, params: dict[str, Any]) -> Any:
    faiss = _faiss()
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


def build(index_type: str, dim: int, params: dict[str, Any], rids: np.ndarray, vecs: np.ndarray) -> Any:
    """A fresh index over all vectors (IVF is trained here; ``params`` gets the IVF settings used)."""
    if index_type == "ivf":
        params["nlist"] = _nlist_for(len(rids))
        params["trained_on"] = int(len(rids))
    index = empty(index_type, dim, params)
    if index_type == "ivf" and len(rids):
        index.train(vecs)
    if len(rids):
        index.add_with_ids(vecs, rids.astype(np.int64))
    return index


def clone(index: Any) -> Any:
    return _faiss().clone_index(index)


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
        or (index_type == "ivf" and (not index.is_trained or total > 2 * max(1, int(params.get("trained_on") or 0))))
    )
    if must_rebuild:
        rids, vecs = all_vectors()
        return build(index_type, dim, params, rids, vecs)
    out = clone(index)
    if len(changed_rids):
        out.remove_ids(changed_rids.astype(np.int64))
        out.add_with_ids(changed_vecs, changed_rids.astype(np.int64))
    if len(new_rids):
        out.add_with_ids(new_vecs, new_rids.astype(np.int64))
    return out


def save(index: Any, path: Path) -> dict[str, Any]:
    """Write next to ``path`` and rename into place; returns {"size", "sha256"} for the manifest."""
    data = _faiss().serialize_index(index)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(memoryview(data))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return {"size": int(data.nbytes), "sha256": hashlib.sha256(memoryview(data)).hexdigest()}


def load(path: Path, checksum: dict[str, Any] | None = None) -> Any:
    """Read an index; with ``checksum`` the bytes are verified before FAISS parses them (ValueError if not)."""
    data = path.read_bytes()
    if checksum is not None:
        if len(data) != checksum.get("size"):
            raise ValueError(f"has {len(data):,} bytes, the manifest recorded {checksum.get('size'):,}")
        if hashlib.sha256(data).hexdigest() != checksum.get("sha256"):
            raise ValueError("does not match the checksum recorded in the manifest")
    return _faiss().deserialize_index(np.frombuffer(data, dtype=np.uint8))


def search(index: Any, index_type: str, params: dict[str, Any], queries: np.ndarray, k: int):
    """(scores, rids) arrays of shape (n, k'); k' <= k; missing slots have rid -1."""
    faiss = _faiss()
    k = max(1, min(int(k), int(index.ntotal)))
    if index_type == "hnsw":
        faiss.downcast_index(index.index).hnsw.efSearch = max(int(params["ef_search"]), k)
    elif index_type == "ivf":
        index.nprobe = min(int(params.get("nprobe") or max(16, index.nlist // 8)), index.nlist)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    return index.search(q, k)
