"""vltools.scale: sharded, resumable indexing jobs (local executor here; Ray in the heavy tests).

World object scenes (64 px) embedded with the demo CLIP; a job's search results must equal the
single-process image.index's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vltools.core.context import Context
from vltools.core.registry import get_registry
from vltools.core.settings import Settings
from vltools.scale import IndexSpec, run_index
from vltools.store import open_collection

N_IMAGES = 30
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from vltools.world.objects import generate_object_scene

    folder = tmp_path_factory.mktemp("world_scale")
    for i in range(N_IMAGES):
        generate_object_scene(4000 + i, image_size=64).image.save(folder / f"o{i:03d}.png")
    return folder


@pytest.fixture
def settings(world, tmp_path) -> Settings:
    return Settings(allowed_roots=[world, tmp_path], home=tmp_path / "home", device="cpu")


def call(name: str, inp: dict, settings: Settings):
    return get_registry().call(name, inp, ctx=Context(settings=settings))


def top10(name: str, settings: Settings, queries: np.ndarray) -> list[list[str]]:
    return [[i for i, _ in row] for row in open_collection(name, settings).search_many(queries, 10)]


def queries(settings: Settings) -> np.ndarray:
    """Text queries plus stored image vectors: 8 + 6 query vectors."""
    clip = Context(settings=settings).clip("demo")
    texts = ["a red object", "a cup", "an animal", "a green thing", "food", "a tool", "a vehicle", "a blue object"]
    return np.concatenate([clip.encode_texts(texts)[0], np.random.default_rng(0).standard_normal((6, clip.dim))])


def test_local_job_gives_the_same_top10_as_image_index(world, settings):
    call("image.index", {"collection": "single", "paths": [str(world)], "create": True}, settings)
    res = run_index(IndexSpec(collection="job", inputs=[str(world)], executor="local", shard_size=7), settings)
    assert (res.items, res.shards, res.embedded, res.reused, res.loaded, res.complete) == (30, 5, 5, 0, 5, True)
    assert res.added == res.count == N_IMAGES and not res.failed
    sharded = run_index(IndexSpec(collection="job3", inputs=[str(world / "*.png")], executor="local", shard_size=7,
                                  index_shards=3), settings)  # fmt: skip
    assert sharded.count == N_IMAGES and open_collection("job3", settings).shards == 3
    q = queries(settings)
    assert top10("job", settings, q) == top10("single", settings, q) == top10("job3", settings, q)
    # the stored records match image.index's too (path, hash, image size)
    a = open_collection("single", settings).get([str(world / "o004.png")])[0]
    b = open_collection("job", settings).get([str(world / "o004.png")])[0]
    assert (a["hash"], a["path"], a["metadata"]) == (b["hash"], b["path"], b["metadata"])


def test_a_stopped_job_resumes_without_re_embedding_finished_shards(world, settings):
    spec = IndexSpec(collection="resume", inputs=[str(world)], executor="local", shard_size=8)  # 4 shards
    seen: list[str] = []

    def stop_after_two(done, total, note):
        seen.append(note)
        if note.startswith("embedded shard 1 "):
            raise KeyboardInterrupt  # a crash in the middle of the job

    with pytest.raises(KeyboardInterrupt):
        run_index(spec, settings, progress=stop_after_two)
    job = next((settings.home / "jobs").iterdir())
    files = sorted((job / "emb").glob("shard-*.parquet"))
    assert [f.name for f in files] == ["shard-00000.parquet", "shard-00001.parquet"]
    stamps = {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in files}
    mid = open_collection("resume", settings)  # readable mid-job, holding the loaded shards only
    assert mid.count == 16 and len(mid.search(np.ones(mid.dim, dtype=np.float32), 3)) == 3

    res = run_index(spec, settings)
    assert (res.shards, res.reused, res.embedded, res.loaded, res.complete) == (4, 2, 2, 4, True)
    assert res.count == N_IMAGES and res.added == 14
    assert {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in sorted((job / "emb").glob("s*"))
            if f.name in stamps} == stamps  # fmt: skip
    again = run_index(spec, settings)  # nothing left to do
    assert (again.embedded, again.reused, again.added, again.count) == (0, 4, 0, N_IMAGES)
    call("image.index", {"collection": "ref", "paths": [str(world)], "create": True}, settings)
    q = queries(settings)
    assert top10("resume", settings, q) == top10("ref", settings, q)


def test_unreadable_files_are_reported_and_the_rest_indexed(world, settings, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i in range(5):
        (folder / f"o{i}.png").write_bytes((world / f"o{i:03d}.png").read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "copy.png").write_bytes((world / "o002.png").read_bytes())  # same content as o2.png
    res = run_index(IndexSpec(collection="mixed", inputs=[str(folder)], executor="local", shard_size=3), settings)
    assert [f.id for f in res.failed] == [str(folder / "broken.png")]
    assert res.added == 5 and res.count == 5
    assert res.duplicates == [{"path": str(folder / "o2.png"), "duplicate_of": str(folder / "copy.png")}]


def test_inputs_from_jsonl_and_parquet_lists(world, settings, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = [str(world / f"o{i:03d}.png") for i in range(6)]
    (tmp_path / "list.jsonl").write_text("".join(json.dumps({"path": p}) + "\n" for p in paths[:3]))
    pq.write_table(pa.table({"path": paths[3:]}), tmp_path / "list.parquet")
    res = run_index(IndexSpec(collection="lists", inputs=[str(tmp_path / "list.jsonl"), str(tmp_path / "list.parquet")],
                              executor="local"), settings)  # fmt: skip
    assert res.ids == paths and res.count == 6


def test_bad_requests_are_tool_errors(world, settings, tmp_path):
    from vltools.core.errors import InvalidInput, NotFound

    with pytest.raises(NotFound):
        run_index(IndexSpec(collection="nope", inputs=[str(world)], create=False, executor="local"), settings)
    with pytest.raises(InvalidInput, match="no string 'path'"):
        (tmp_path / "bad.jsonl").write_text('{"file": "x.png"}\n')
        run_index(IndexSpec(collection="bad", inputs=[str(tmp_path / "bad.jsonl")], executor="local"), settings)
    call("collection.create", {"name": "txt", "kind": "text", "text_model": "none"}, settings)
    with pytest.raises(InvalidInput, match="text"):
        run_index(IndexSpec(collection="txt", inputs=[str(world)], executor="local"), settings)


def test_index_cli_is_registered_and_default_imports_stay_free_of_ray():
    code = ("import sys, vltools.cli, vltools.scale, vltools.store; from vltools.cli import build_parser; "
            "build_parser().parse_args(['index', 'c', 'x']); "
            "print(sorted(m for m in ('ray', 'torch', 'pyarrow', 'faiss') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


# -- on the local Ray (heavy: starts a Ray cluster, ~10-30 s each) ------------------------------------
def _cli(args: list[str], settings: Settings, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VLTOOLS_HOME": str(settings.home), "VLTOOLS_DEVICE": "cpu",
           "VLTOOLS_ALLOWED_ROOTS": json.dumps([str(p) for p in settings.allowed_roots])}  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "vltools.cli", "index", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)  # fmt: skip


@pytest.mark.heavy
def test_ray_cli_job_matches_image_index_and_stdout_is_json(world, settings):
    proc = _cli(["ray1", str(world), "--workers", "2", "--shard-size", "8"], settings)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    res = json.loads(out)  # stdout holds the result only (Ray's logs go to stderr)
    assert (res["executor"], res["workers"], res["shards"], res["count"]) == ("ray", 2, 4, N_IMAGES)
    call("image.index", {"collection": "ref", "paths": [str(world)], "create": True}, settings)
    q = queries(settings)
    assert top10("ray1", settings, q) == top10("ref", settings, q)


@pytest.mark.heavy
def test_killed_ray_job_resumes_and_collection_stays_readable(world, settings):
    # one image per shard (30 shards) and one actor, watched every 10 ms: on a quiet machine a shard of 3
    # images took so little time that all 10 were written between two looks (CI saw it once)
    args = ["rayk", str(world), "--workers", "1", "--shard-size", "1"]
    proc = _cli(args, settings)
    emb = settings.home / "jobs"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        done = list(emb.glob("*/emb/shard-*.parquet"))
        if len(done) >= 2:
            break
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, its Ray cluster and the actors
    proc.wait()
    finished = {f.name: f.stat().st_mtime_ns for f in emb.glob("*/emb/shard-*.parquet")}
    assert 2 <= len(finished) < N_IMAGES
    mid = open_collection("rayk", settings)  # readable after the kill
    assert mid.count <= len(finished) and mid.count < N_IMAGES
    if mid.count:
        assert len(mid.search(np.ones(mid.dim, dtype=np.float32), 5)) == min(5, mid.count)
    proc = _cli(args, settings)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    res = json.loads(out)
    assert res["complete"] and res["count"] == N_IMAGES
    assert res["reused"] >= len(finished) and res["embedded"] == N_IMAGES - res["reused"]
    assert {n: t for n, t in ((f.name, f.stat().st_mtime_ns) for f in emb.glob("*/emb/shard-*.parquet"))
            if n in finished} == finished  # fmt: skip
    call("image.index", {"collection": "ref", "paths": [str(world)], "create": True}, settings)
    q = queries(settings)
    assert top10("rayk", settings, q) == top10("ref", settings, q)


@pytest.mark.heavy
def test_tools_take_executor_ray(world, settings):
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # shared by the calls below
    try:
        out = call("image.index", {"collection": "rt", "paths": [str(world)], "create": True, "executor": "ray",
                                   "workers": 2}, settings)  # fmt: skip
        assert out.count == N_IMAGES and "ray job" in out.notices[-1]
        call("collection.create", {"name": "docs", "kind": "text"}, settings)
        docs = [{"id": str(i), "text": f"document {i} about wing flutter at speed {i}"} for i in range(20)]
        got = call("collection.add", {"collection": "docs", "documents": docs, "executor": "ray", "workers": 2},
                   settings)  # fmt: skip
        assert (got.added, got.count) == (20, 20)
    finally:
        ray.shutdown()
    call("collection.create", {"name": "docs1", "kind": "text"}, settings)
    call("collection.add", {"collection": "docs1", "documents": docs}, settings)
    q = Context(settings=settings).text("minilm").encode(["wing flutter at speed 7"])
    assert top10("docs", settings, q) == top10("docs1", settings, q)


def test_video_job_matches_video_index(settings, tmp_path):
    from ..models.test_video import write_video

    folder = tmp_path / "vids"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(3):
        base = rng.integers(0, 255, (1, 1, 3))
        frames = [np.clip(base + rng.integers(-20, 20, (48, 64, 3)), 0, 255).astype(np.uint8) for _ in range(12)]
        write_video(folder / f"v{i}.mp4", frames)
    (folder / "broken.mp4").write_bytes(b"not a video")
    res = run_index(IndexSpec(collection="vjob", kind="video", inputs=[str(folder)], executor="local", frames=4,
                              shard_size=2), settings)  # fmt: skip
    assert res.count == 3 and [f.id for f in res.failed] == [str(folder / "broken.mp4")]
    call("video.index", {"collection": "vref", "paths": [str(folder / f"v{i}.mp4") for i in range(3)],
                         "create": True, "frames": 4}, settings)  # fmt: skip
    a, b = open_collection("vjob", settings), open_collection("vref", settings)
    q = Context(settings=settings).clip("demo").encode_texts(["a grey video"])[0]
    assert [i for i, _ in a.search(q[0], 3)] == [i for i, _ in b.search(q[0], 3)]
    stored = a.get([str(folder / "v1.mp4")])[0]["metadata"]
    ref = b.get([str(folder / "v1.mp4")])[0]["metadata"]
    assert len(stored["frame_features"]) == 4 and stored["times"] == ref["times"]


def test_a_recreated_collection_gets_every_shard_again(world, settings):
    from vltools.store import delete_collection

    spec = IndexSpec(collection="again", inputs=[str(world)], executor="local", shard_size=16)
    assert run_index(spec, settings).count == N_IMAGES
    delete_collection("again", settings)
    res = run_index(spec, settings)  # embeddings reused, every shard loaded into the new collection
    assert (res.reused, res.embedded, res.count, res.added) == (2, 0, N_IMAGES, N_IMAGES)
