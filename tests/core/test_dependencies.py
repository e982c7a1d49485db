"""pyproject's dependencies match the code: every third-party module that vltools/ imports (at
module level or inside a function) belongs to a declared distribution, and `langchain` stays out."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Import names of optional packages that need not be installed here (so metadata cannot map them).
NOT_INSTALLED = {"langchain_openai": "langchain-openai"}


def _norm(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _req_name(req: str) -> str:
    return _norm(re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0])


def third_party_imports(root: Path) -> dict[str, set[str]]:
    """Top-level names of absolute imports outside the stdlib and vltools, with the files using them."""
    found: dict[str, set[str]] = {}
    for py in root.rglob("*.py"):
        for node in ast.walk(ast.parse(py.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module]
            else:
                continue
            for mod in mods:
                top = mod.split(".")[0]
                if top not in sys.stdlib_module_names and top != "vltools":
                    found.setdefault(top, set()).add(str(py.relative_to(root.parent)))
    return found


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = {_req_name(r) for r in project["dependencies"]}
    extras = {_req_name(r) for reqs in project.get("optional-dependencies", {}).values() for r in reqs}
    return core, extras


def test_every_third_party_import_is_a_declared_dependency():
    core, extras = _declared()
    by_module = md.packages_distributions()
    missing = []
    for name, files in sorted(third_party_imports(REPO / "vltools").items()):
        dists = {_norm(d) for d in by_module.get(name, [])} or {_norm(NOT_INSTALLED.get(name, name))}
        if not dists & (core | extras):
            missing.append(f"{name} ({', '.join(sorted(dists))}) imported by {', '.join(sorted(files)[:3])}")
    assert not missing, "undeclared in pyproject: " + "; ".join(missing)


def test_unused_and_optional_packages_are_not_runtime_dependencies():
    core, extras = _declared()
    assert "langchain" not in core | extras  # unused: vltools imports langchain_core only
    assert "langchain" not in third_party_imports(REPO / "vltools")
    for dist in ("rank-bm25", "langchain-mcp-adapters"):  # benchmark / test only
        assert dist not in core and dist in extras
    lock = {_req_name(line) for line in (REPO / "requirements.lock").read_text().splitlines() if "==" in line}
    assert {"rank-bm25", "langchain-mcp-adapters"} <= lock  # CI installs the lock, so their tests still run
    assert "langchain" not in lock


def test_the_scan_sees_imports_inside_functions(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    code = "import os\nfrom . import x\n\ndef f():\n    import numpy.linalg\n    from yaml import safe_load\n"
    (pkg / "m.py").write_text(code)
    assert set(third_party_imports(pkg)) == {"numpy", "yaml"}
