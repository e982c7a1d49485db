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
        Registry([*Registry.read_file("tools:\n  - {name: a.b, entry: 'm:f', summary: s, effects: read_only}\n", "t"),
                  *Registry.read_file("tools:\n  - {name: a.b, entry: 'm:f', summary: s, effects: read_only}\n", "t2")])


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


# -- one catalogue ------------------------------------------------------------------------------
def test_docstring_first_paragraph_is_the_yaml_summary():
    """The summary lives in registry.yaml; each tool's docstring starts with exactly that text, and
    clients receive the summary once followed by the docstring's body."""
    reg = get_registry()
    for name in reg.names():
        t, spec = reg.get(name), reg.spec(name)
        assert t.summary_line == spec.summary, f"{name}: docstring starts {t.summary_line!r}, not {spec.summary!r}"
        assert t.description(spec.summary).count(spec.summary) == 1


def test_vocabularies_are_closed():
    import pytest

    from vltools.core.errors import RegistryError

    base = "tools:\n  - {name: a.b, entry: 'm:f', summary: s, effects: read_only, %s}\n"
    Registry.read_file(base % "tags: [text, retrieval], needs: [store], consumes: [collection]", "ok")
    for bad in ("tags: [retreival]", "needs: [gpu]", "consumes: [rankings]", "produces: [stuff]", "tags: [text, text]"):
        with pytest.raises(RegistryError):
            Registry.read_file(base % bad, "bad")


def test_every_used_word_is_in_the_vocabulary_and_every_word_is_used():
    """The vocabularies hold what the catalogue uses (no dead words to drift from)."""
    from vltools.core.vocab import DATA_KINDS, NEEDS, TAGS

    specs = get_registry().list()
    used_tags = {t for s in specs for t in s.tags}
    used_needs = {n for s in specs for n in s.needs}
    used_kinds = {k for s in specs for k in (*s.consumes, *s.produces)}
    assert used_tags == set(TAGS) and used_needs == set(NEEDS) and used_kinds == set(DATA_KINDS)


def test_produces_and_consumes_match_the_models():
    from vltools.core.vocab import CONSUMED_RULES, PRODUCED_RULES

    reg = get_registry()
    assert set(PRODUCED_RULES) >= {k for s in reg.list() for k in s.produces}
    for spec in reg.list():
        t = reg.get(spec.name)
        for kind in spec.produces:
            rule, check = PRODUCED_RULES[kind]
            assert check(t.output_model), f"{spec.name} produces {kind}, so {rule}"
        for kind in spec.consumes:
            rule, check = CONSUMED_RULES[kind]
            assert check(t.input_model), f"{spec.name} consumes {kind}, so {rule}"


def test_a_ranking_must_be_the_shared_type():
    """image.search once declared `ranking` but returned its own hit type: the rule catches that."""
    from pydantic import BaseModel

    from vltools.core.vocab import PRODUCED_RULES

    class OwnHit(BaseModel):
        id: str

    class OwnRanking(BaseModel):
        hits: list[OwnHit]

    assert not PRODUCED_RULES["ranking"][1](OwnRanking)
    assert PRODUCED_RULES["ranking"][1](get_registry().get("image.search").output_model)


def test_paper_entries_state_their_fidelity():
    import pytest

    from vltools.core.errors import RegistryError

    for spec in get_registry().list():
        if spec.papers:
            assert spec.fidelity in ("faithful", "adapted", "baseline") and spec.fidelity_note, spec.name
    with pytest.raises(RegistryError, match="fidelity"):
        Registry.read_file("tools:\n  - {name: a.b, entry: 'm:f', summary: s, effects: read_only, papers: [P24]}", "t")


def test_the_family_predicts_the_module():
    """`family.verb` lives in vltools/tools/<family>.py or vltools/tools/<family>/ (graph.* in
    vltools/graphs/, agent.* in vltools/agents/), so a reader finds any tool from its name."""
    homes = {"graph": "vltools.graphs.", "agent": "vltools.agents."}
    for spec in get_registry().list():
        family = spec.name.split(".")[0]
        module = spec.entry.split(":")[0]
        home = homes.get(family)
        if home:
            assert module.startswith(home), spec.name
        else:
            assert module == f"vltools.tools.{family}" or module.startswith(f"vltools.tools.{family}."), (
                f"{spec.name} lives in {module}"
            )


def _hint_strings() -> list[tuple[str, str]]:
    """(file:line, text) of every string constant in a ``hint=...`` argument or a ``hint = ...`` assignment."""
    import ast
    from pathlib import Path

    out = []
    root = Path(vltools.__file__).parent
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        exprs = [kw.value for node in ast.walk(tree) if isinstance(node, ast.Call) for kw in node.keywords
                 if kw.arg == "hint"]
        exprs += [node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                  and any(isinstance(t, ast.Name) and t.id == "hint" for t in node.targets)]
        for expr in exprs:
            for sub in ast.walk(expr):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    out.append((f"{path.relative_to(root)}:{sub.lineno}", sub.value))
    return out


def test_every_tool_named_in_a_hint_exists():
    reg = get_registry()
    families = {n.split(".")[0] for n in reg.names()}
    hints = _hint_strings()
    assert len(hints) > 50  # the scan sees the hints
    named = [(where, m) for where, text in hints for m in re.findall(r"\b([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)\b", text)
             if m.split(".")[0] in families]
    assert any(m == "collection.create" for _, m in named)
    unknown = [(where, m) for where, m in named if m not in reg.entries]
    assert not unknown, f"hints name tools that do not exist: {unknown}"
