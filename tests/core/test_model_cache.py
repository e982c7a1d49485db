"""Converted model weights live once per machine, not under each VLTOOLS_HOME."""

from __future__ import annotations

from pathlib import Path

from vltools.core.settings import Settings
from vltools.models.llm import model_cache_dir


def test_model_cache_is_shared_by_every_home(tmp_path, monkeypatch):
    monkeypatch.delenv("VLTOOLS_MODEL_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    a, b = Settings(home=tmp_path / "a"), Settings(home=tmp_path / "b")
    assert model_cache_dir(a) == model_cache_dir(b) == Path.home() / ".cache" / "vltools"
    assert not model_cache_dir(a).is_relative_to(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert model_cache_dir(Settings(home=tmp_path / "a")) == tmp_path / "xdg" / "vltools"
    monkeypatch.setenv("VLTOOLS_MODEL_CACHE", str(tmp_path / "models"))
    assert model_cache_dir(Settings(home=tmp_path / "a")) == tmp_path / "models"
