"""registry.yaml and the code must agree: every entry resolves, every @tool is catalogued,
every paper id exists in papers.md."""

from __future__ import annotations

import importlib
import pkgutil
import re

import vltools
from vltools.core.registry import Registry, get_registry, paper_titles
from vltools.core.tool import DECORATED

from ..conftest import SHARED


def _import_all_tool_modules() -> None:
    for pkg_name in ("vltools.tools", "vltools.graphs", "vltools.agents"):
        pkg = importlib.import_module(pkg_name)
        for mod in pkgutil.walk_packages(pkg.__path__, prefix=pkg_name + "."):
            importlib.import_module(mod.name)


def test_every_entry_resolves_to_its_decorated_function():
    reg = get_registry()
    for name in reg.names():
        t = reg.get(name)
        assert t.name == name


def test_every_decorated_tool_is_in_the_yaml():
    _import_all_tool_modules()
    reg = get_registry()
    ours = {n for n, t in DECORATED.items() if t.module.startswith("vltools.")}
    missing = sorted(ours - set(reg.names()))
    assert not missing, f"@tool functions missing from registry.yaml: {missing}"


def test_paper_ids_exist():
    titles = paper_titles()
    for spec in get_registry().list():
        for p in spec.papers:
            assert p in titles, f"{spec.name} cites unknown paper {p}"


def test_shipped_paper_titles_match_shared_papers_md():
    papers_md = SHARED / "papers.md"
    if not papers_md.exists():
        return
    found = dict(re.findall(r"^## (P\d\d)\. (.+)$", papers_md.read_text(), flags=re.M))
    assert found == paper_titles()


def test_bad_registry_file_is_a_loud_error():
    import pytest

    from vltools.core.errors import RegistryError

    with pytest.raises(RegistryError):
        Registry.read_file("tools:\n  - name: Bad Name\n    entry: x\n    summary: s\n", "test")
    with pytest.raises(RegistryError):
        Registry([*Registry.read_file("tools:\n  - {name: a.b, entry: 'm:f', summary: s}\n", "t"),
                  *Registry.read_file("tools:\n  - {name: a.b, entry: 'm:f', summary: s}\n", "t2")])


def test_unknown_tool_suggests_close_names():
    import pytest

    from vltools.core.errors import NotFound

    reg = get_registry()
    if not reg.names():
        return
    name = reg.names()[0]
    with pytest.raises(NotFound) as exc:
        vltools.call(name + "x", {})
    assert name in str(exc.value)
