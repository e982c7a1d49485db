"""A `vltools ui` server in a subprocess over this session's VLTOOLS_HOME, with small collections."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import vltools

from ..faces.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "vltools" / "data" / "sample_corpus.jsonl"


@pytest.fixture(scope="session")
def ui_data(vltools_home: Path, tmp_path_factory) -> dict[str, str]:
    """A BM25 text collection of the sample corpus (no model needed)."""
    vltools.call("collection.create", {"name": "ui_texts", "kind": "text", "model": "none"})
    docs = [__import__("json").loads(line) for line in CORPUS.read_text().splitlines()]
    vltools.call("collection.add", {"collection": "ui_texts", "documents": docs})
    return {"texts": "ui_texts"}


@pytest.fixture(scope="session")
def media_data(vltools_home: Path, tmp_path_factory) -> dict[str, str]:
    """Image and video collections of a generated world, indexed with the embedded demo CLIP."""
    world = vltools.call("world.generate", {"out_dir": str(tmp_path_factory.mktemp("ui_world")), "images": 6,
                                            "videos": 2, "seed": 3})
    vltools.call("image.index", {"collection": "ui_images", "paths": world.image_files, "create": True})
    vltools.call("video.index", {"collection": "ui_videos", "paths": world.video_files, "create": True, "frames": 4})
    return {"images": "ui_images", "videos": "ui_videos", "world": world.out_dir}


def start_ui(env: dict[str, str], *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vltools.cli", "ui", "--port", str(port), *extra],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vltools ui exited: {proc.stderr.read()}")
        try:
            httpx.get(url + "/static/ui.css", timeout=2)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("vltools ui did not start")


def ui_env(vltools_home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("VLTOOLS_HTTP_TOKEN", None)
    env.update(VLTOOLS_HOME=str(vltools_home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **extra)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture(scope="session")
def ui_server(vltools_home: Path, ui_data):
    proc, url = start_ui(ui_env(vltools_home))
    yield url
    proc.terminate()
    proc.wait(30)
