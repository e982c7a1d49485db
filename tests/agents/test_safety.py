"""The effects guard shared by agent.ask and the tool-calling loop."""

from __future__ import annotations

import pytest

from vltools.agents.parse import parse
from vltools.agents.safety import check_call
from vltools.core.registry import get_registry

DESTRUCTIVE = [e.name for e in get_registry().list() if e.effects == "destructive" and e.kind != "agent"]


def test_there_are_destructive_entries():
    assert "collection.delete" in DESTRUCTIVE


@pytest.mark.parametrize("name", DESTRUCTIVE)
def test_destructive_entries_need_confirm(name):
    p = parse(f"use {name} on the scratch collection")
    why = check_call(name, {"collection": "scratch"}, p, confirm=False)
    assert "confirm" in why and name in why
    assert check_call(name, {"collection": "scratch"}, p, confirm=True) == ""


def test_writes_go_only_where_the_request_says(tmp_path):
    src = str(tmp_path / "pics")
    p = parse(f"put every picture in {src} into the shapes collection")
    assert "reads from" in check_call("world.generate", {"out_dir": src}, p, confirm=True)
    assert "does not name" in check_call("world.generate", {"out_dir": str(tmp_path / "elsewhere")}, p, confirm=True)
    assert check_call("image.index", {"collection": "shapes", "paths": [src], "create": True}, p, confirm=False) == ""
    assert "does not name" in check_call("image.index", {"collection": "photos", "paths": [src]}, p, confirm=False)
    out = str(tmp_path / "gen")
    assert check_call("world.generate", {"out_dir": out}, parse(f"generate 5 images into {out}"), confirm=False) == ""
    # the caller's own explicit input is what they asked for
    assert check_call("world.generate", {"out_dir": out}, p, confirm=False, given={"out_dir": out}) == ""


def test_agents_never_call_agents_and_reads_pass():
    p = parse("search notes for ice")
    assert "agent" in check_call("agent.ask", {"request": "x"}, p, confirm=True)
    assert check_call("retrieve.bm25", {"collection": "anything", "query": "x"}, p, confirm=False) == ""
