"""The error model: keyword-only hint, structured details, InternalError for bugs inside tools."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

from tests.core.registries import private_registry
from vltools.core import errors
from vltools.core.errors import InternalError, InvalidInput, NotFound, ToolError

PKG = Path(__file__).resolve().parents[2] / "vltools"
ERROR_CLASSES = {
    name for name, obj in vars(errors).items() if isinstance(obj, type) and issubclass(obj, ToolError)
}


def test_hint_is_keyword_only_and_details_travel_in_to_dict():
    with pytest.raises(TypeError):
        InvalidInput("bad k", "use k <= 100")  # type: ignore[misc]
    with pytest.raises(TypeError):
        ToolError("not_found", "no such run", "resume it")  # type: ignore[misc]
    err = NotFound("no run 'r1'", hint="list runs", details={"run_id": "r1"})
    assert err.code == "not_found" and err.render() == "not_found: no run 'r1' (hint: list runs)"
    assert err.to_dict() == {"code": "not_found", "message": "no run 'r1'", "hint": "list runs",
                             "details": {"run_id": "r1"}}
    assert ToolError("conflict", "x").to_dict()["details"] == {}


def test_no_call_site_passes_a_hint_positionally():
    """Static check over the package: a ToolError subclass takes one positional (the message), ToolError two."""
    bad = []
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name in ERROR_CLASSES and len(node.args) > (2 if name == "ToolError" else 1):
                bad.append(f"{path.relative_to(PKG)}:{node.lineno} {name}")
    assert bad == []


def test_a_bare_exception_in_a_tool_becomes_internal_error_logged_with_traceback(caplog):
    reg = private_registry()
    with caplog.at_level(logging.DEBUG, logger="vltools.registry"):
        with pytest.raises(InternalError) as exc:
            reg.call("sample.crash", {"text": "boom"})
    err = exc.value
    assert err.code == "internal" and isinstance(err.__cause__, KeyError)
    assert "sample.crash failed unexpectedly: KeyError" in err.message and "bug in the tool" in err.hint
    assert err.details == {"tool": "sample.crash", "exception": "KeyError"}
    record = next(r for r in caplog.records if r.name == "vltools.registry")
    assert record.levelno == logging.DEBUG and record.exc_info and record.exc_info[0] is KeyError


def test_tool_errors_pass_through_unchanged():
    with pytest.raises(NotFound) as exc:
        private_registry().call("sample.fail_with_details", {"text": "r9"})
    assert exc.value.details == {"run_id": "r9", "n": 3}
