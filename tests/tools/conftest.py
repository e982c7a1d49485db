"""Fixtures shared by the tools tests that run on a tiny random open_clip model: its spec (one model
per test module), an allowed root folder and Settings that can read both."""

from __future__ import annotations

from pathlib import Path

import pytest

from vltools.core.settings import Settings

from ..models.tiny_clip import make_tiny_clip


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return f"open_clip:local-dir:{make_tiny_clip(tmp_path_factory.mktemp('tiny_clip'))}"


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    return r


@pytest.fixture
def settings(root, tmp_path, spec):
    model_dir = Path(spec.split("local-dir:", 1)[1])  # model folders are read from VLTOOLS_MODEL_DIRS
    return Settings(allowed_roots=[root], model_dirs=[model_dir], home=tmp_path / "home", device="cpu")
