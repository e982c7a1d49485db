"""The running registry travels on the context: nested calls stay on the registry that runs them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.core.registries import private_registry
from vltools.core import Context
from vltools.core.errors import InternalError, NotFound

PKG = Path(__file__).resolve().parents[2] / "vltools"


def test_nested_calls_run_on_the_private_registry():
    reg = private_registry("mine")
    out = reg.call("demo.outer", {"text": "x"})
    assert out.text == "[[x]]" and out.registry == "mine"


def test_the_process_registry_does_not_know_the_private_tools():
    from vltools.core.registry import get_registry

    with pytest.raises(NotFound):
        get_registry().spec("demo.inner")


def test_a_given_context_gets_the_registry_and_its_children_keep_it():
    reg = private_registry("given")
    ctx = Context()
    assert ctx.registry is None
    out = reg.call("demo.outer", {"text": "y"}, ctx=ctx)
    assert out.registry == "given" and ctx.registry is reg
    child = ctx.child()
    assert child.registry is reg and child.cancelled is ctx.cancelled and child.deadline == ctx.deadline


def test_a_context_no_registry_runs_cannot_call():
    from tests.core.sample_tools import InnerInput, outer

    with pytest.raises(InternalError, match="no registry runs"):
        outer(InnerInput(text="z"), Context())


def _imports(path: Path) -> set[str]:
    """Every module imported anywhere in a file (top level, inside functions, under TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def test_context_does_not_import_the_registry():
    assert not any(m.startswith("vltools.core.registry") for m in _imports(PKG / "core" / "context.py"))


def test_llm_backends_do_not_import_the_llm_module():
    """models/llm.py imports its backends lazily; they import only the shared base module."""
    for backend in ("_llm_hf.py", "_llm_openai.py", "_llm_base.py"):
        imported = _imports(PKG / "models" / backend)
        assert not any(m == "vltools.models.llm" or m.startswith("vltools.models.llm.") for m in imported), backend


def test_core_modules_import_no_upper_layer_at_import_time():
    """Inside vltools/core only lazy (function-level) or TYPE_CHECKING imports may reach models/store
    (core builds on the import-light shared schemas only)."""
    for path in sorted((PKG / "core").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vltools."):
                assert node.module.startswith(("vltools.core", "vltools.schemas")), f"{path.name}: {node.module}"
