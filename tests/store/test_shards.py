"""Sharded collections: n FAISS shards searched in parallel and merged exactly (issue 19).

Random unit vectors, no model: a few seconds.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from vltools.core.errors import Corrupt, InvalidInput
from vltools.core.settings import get_settings
from vltools.store import create_collection, open_collection, repair_collection

from ._fixtures import unique

DIM = 24


def unit(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def recs(n: int, start: int = 0) -> list[dict]:
    return [{"id": f"v{i}", "path": f"/x/{i}.png"} for i in range(start, start + n)]


@pytest.fixture
def settings():
    return get_settings()


def _pair(settings, index: str = "flat", shards: int = 3, n: int = 600):
    """The same vectors in a sharded and an unsharded collection (added in two batches)."""
    vecs = unit(n, seed=1)
    one = create_collection(unique("one"), "image", model="demo", settings=settings, index=index)
    many = create_collection(unique("many"), "image", model="demo", settings=settings, index=index, shards=shards)
    for coll in (one, many):
        coll.add(recs(n // 2), vecs[: n // 2])
        coll.add(recs(n - n // 2, n // 2), vecs[n // 2 :])
    return one, many, vecs


def test_three_shards_give_exactly_the_unsharded_top_k(settings):
    one, many, _ = _pair(settings)
    queries = unit(50, seed=7)
    a, b = one.search_many(queries, 10), many.search_many(queries, 10)
    assert [[i for i, _ in row] for row in a] == [[i for i, _ in row] for row in b]
    np.testing.assert_allclose([[s for _, s in row] for row in a], [[s for _, s in row] for row in b], atol=1e-6)
    # the shards really are three files holding a third of the vectors each (rid % 3)
    again = open_collection(many.name, settings)
    assert again.manifest["files"]["faiss"].endswith(".shards")
    info = again.shard_info()
    assert [s["shard"] for s in info] == [0, 1, 2]
    assert sum(s["vectors"] for s in info) == 600 and all(190 <= s["vectors"] <= 210 for s in info)
    assert all((again.path / s["file"]).is_file() for s in info)
    assert open_collection(one.name, settings).shard_info()[0]["vectors"] == 600


def test_k_larger_than_a_shard_and_upserts_stay_exact(settings):
    one, many, _ = _pair(settings, n=90)
    newer = unit(10, seed=3)
    for coll in (one, many):
        coll.add(recs(10, 20), newer, upsert=True)  # v20..v29 move
    q = unit(5, seed=9)
    a, b = one.search_many(q, 80), many.search_many(q, 80)  # 80 > the 30 vectors a shard holds
    assert [[i for i, _ in r] for r in a] == [[i for i, _ in r] for r in b]
    assert len(b[0]) == 80
    assert many.search(newer[4], 1)[0][0] == "v24"


def test_sharded_ivf_shares_one_training_and_recalls_well(settings):
    one, many, vecs = _pair(settings, index="ivf", shards=3, n=2000)
    params = open_collection(many.name, settings).manifest["index"]["params"]
    assert params["shards"] == 3 and params["nlist"] >= 2
    index = open_collection(many.name, settings)._load("faiss")
    centroids = [p.quantizer.reconstruct_n(0, p.nlist) for p in index.parts]
    assert all(np.array_equal(centroids[0], c) for c in centroids[1:])  # one quantizer for all shards
    q = unit(40, seed=11)
    exact = np.argsort(-(q @ vecs.T), axis=1)[:, :10]
    got = many.search_many(q, 10)
    recall = np.mean([len({f"v{j}" for j in e} & {i for i, _ in g}) / 10 for e, g in zip(exact, got, strict=True)])
    assert recall > 0.8


def test_ivfpq_collection_works_unsharded_and_sharded(settings):
    vecs = unit(1500, seed=4)
    for shards in (1, 2):
        coll = create_collection(unique("pq"), "image", model="demo", settings=settings, index="ivfpq", shards=shards)
        coll.add(recs(1500), vecs)
        p = open_collection(coll.name, settings).manifest["index"]["params"]
        assert p["m"] == 4 and 1 <= p["nbits"] <= 8  # dim 24: 4 sub-quantisers of 6 dims
        hits = coll.search_many(vecs[:20], 5)
        assert np.mean([h[0][0] == f"v{i}" for i, h in enumerate(hits)]) >= 0.5


def test_shard_files_are_checked_and_repairable(settings):
    _, many, vecs = _pair(settings, n=60)
    folder = many.path / many.manifest["files"]["faiss"]
    shard1 = folder / "shard-1.faiss"
    data = bytearray(shard1.read_bytes())
    data[-5] ^= 0xFF
    shard1.write_bytes(bytes(data))
    with pytest.raises(Corrupt, match="shard-1.faiss"):
        open_collection(many.name, settings).verify()
    out = repair_collection(many.name, settings)
    assert out["status"] == "repaired" and any("shard-1.faiss" in p for p in out["problems"])
    fixed = open_collection(many.name, settings).verify()
    assert fixed.search(vecs[7], 1)[0][0] == "v7"
    (fixed.path / fixed.manifest["files"]["faiss"] / "shard-2.faiss").unlink()
    with pytest.raises(Corrupt, match="shard-2.faiss is missing"):
        open_collection(many.name, settings)


def test_old_manifests_without_shards_still_open(settings):
    coll = create_collection(unique("old"), "image", model="demo", settings=settings)
    coll.add(recs(5), unit(5))
    man = json.loads((coll.path / "manifest.json").read_text())
    assert "shards" not in man["index"]["params"] and man["files"]["faiss"].endswith(".faiss")
    again = open_collection(coll.name, settings)
    assert again.shards == 1 and again.search(unit(5)[2], 1)[0][0] == "v2"


def test_bad_shard_counts(settings):
    with pytest.raises(InvalidInput, match="shards"):
        create_collection(unique("bad"), "image", model="demo", settings=settings, shards=0)
    coll = create_collection(unique("bad"), "image", model="demo", settings=settings, shards=2)
    man = json.loads((coll.path / "manifest.json").read_text())
    man["index"]["params"]["shards"] = "three"
    (coll.path / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(Corrupt, match="shard count"):
        open_collection(coll.name, settings)
