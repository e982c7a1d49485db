"""world.generate never writes through a symlink planted in its output folder (issue 21 repro: a
``labels.jsonl.tmp`` link overwrote a file outside the roots)."""

from __future__ import annotations

import json
import os

import pytest

import vltools
from vltools.core.errors import InvalidInput
from vltools.core.paths import atomic_output, write_bytes_nofollow


@pytest.fixture
def victim(tmp_path_factory):
    """A file outside the allowed roots (its own temp folder is not one of them when roots are set)."""
    d = tmp_path_factory.mktemp("victim")
    f = d / "precious.txt"
    f.write_text("do not touch")
    return f


@pytest.fixture
def roots_env(tmp_path, monkeypatch):
    from vltools.core.settings import reset_settings

    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setenv("VLTOOLS_ALLOWED_ROOTS", json.dumps([str(root)]))
    reset_settings()
    yield root
    monkeypatch.undo()
    reset_settings()


@pytest.mark.parametrize("planted", ["labels.jsonl.tmp", "labels.jsonl", "images/img_000000.png"])
def test_planted_symlinks_are_not_written_through(roots_env, victim, planted):
    out = roots_env / "ds"
    (out / "images").mkdir(parents=True)
    (out / planted).symlink_to(victim)
    res = vltools.call("world.generate", {"out_dir": str(out), "images": 2, "overwrite": True})
    assert victim.read_text() == "do not touch"
    assert res.images == 2 and len((out / "labels.jsonl").read_text().splitlines()) == 2
    if planted != "labels.jsonl.tmp":
        assert not (out / planted).is_symlink()  # the link was replaced by the new file
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_symlinked_output_subfolder_is_refused(roots_env, victim):
    out = roots_env / "ds"
    out.mkdir()
    (out / "images").symlink_to(victim.parent, target_is_directory=True)
    with pytest.raises(InvalidInput, match="symlink"):
        vltools.call("world.generate", {"out_dir": str(out), "images": 1})
    assert sorted(p.name for p in victim.parent.iterdir()) == ["precious.txt"]


def test_atomic_helpers_replace_links_and_clean_up(tmp_path, victim):
    link = tmp_path / "out.bin"
    link.symlink_to(victim)
    write_bytes_nofollow(link, b"new")
    assert victim.read_text() == "do not touch" and link.read_bytes() == b"new" and not link.is_symlink()
    with pytest.raises(RuntimeError), atomic_output(tmp_path / "x.png") as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("writer failed")
    assert sorted(os.listdir(tmp_path)) == ["out.bin"]
