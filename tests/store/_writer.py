"""Run as a separate process by the concurrency/crash tests: add batches to one collection."""

from __future__ import annotations

import os
import sys

import numpy as np


def main() -> None:
    name, prefix, batches, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    crash = sys.argv[5] if len(sys.argv) > 5 else ""
    from vltools.core.settings import get_settings
    from vltools.store import collection as store_collection
    from vltools.store import open_collection

    if crash == "crash-before-manifest":  # die right after the SQLite commit, before the manifest is replaced
        store_collection.write_manifest = lambda *a, **k: os._exit(17)
    elif crash == "crash-before-commit":  # die with the new index files written but nothing committed
        store_collection._db.count = lambda *a, **k: os._exit(18)
    coll = open_collection(name, get_settings())
    rng = np.random.default_rng(abs(hash(prefix)) % 2**32)
    for b in range(batches):
        recs = [{"id": f"{prefix}-{b}-{i}", "text": f"{prefix} writer batch {b} item {i}"} for i in range(size)]
        vecs = rng.standard_normal((size, 16)).astype(np.float32)
        coll.add(recs, vecs)
    print("done", coll.count)


if __name__ == "__main__":
    main()
