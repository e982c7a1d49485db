"""World videos (objects theme) shared by the Video II tests, written once per session."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def video_world_helpers():
    """scripts/_video_world.py (seed ranges, planted defects), loaded by path: scripts are not a package."""
    spec = importlib.util.spec_from_file_location("_video_world", REPO / "scripts" / "_video_world.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def world_clips(tmp_path_factory) -> list[dict]:
    """Eight test-range world clips: [{path, video (ObjectVideo)}]."""
    from vltools.world import generate_object_video, write_video

    d = tmp_path_factory.mktemp("world_clips")
    base = video_world_helpers().GROUND_TEST + 900
    out = []
    for k in range(8):
        v = generate_object_video(base + k)
        out.append({"path": str(write_video(v.frames, d / f"w{k}.mp4", v.fps)), "video": v})
    return out
