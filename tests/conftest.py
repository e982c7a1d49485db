"""Test setup: offline hubs, a throwaway VLTOOLS_HOME, shared fixtures."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Converted model weights (e.g. the dequantised SmolLM2) outlive the per-session VLTOOLS_HOME.
os.environ.setdefault("VLTOOLS_MODEL_CACHE", str(Path.home() / ".cache" / "vltools" / "test-models"))

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"


@pytest.fixture(scope="session", autouse=True)
def vltools_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test session gets its own VLTOOLS_HOME (model caches stay in the user's home)."""
    home = tmp_path_factory.mktemp("vltools_home")
    os.environ["VLTOOLS_HOME"] = str(home)
    # Only VLTOOLS_HOME is allowed by default; tests read their own temp folders and the shared data.
    # (ALLOWED, not EXTRA: a test's own Settings(allowed_roots=...) then replaces these.)
    roots = [str(tmp_path_factory.getbasetemp()), str(SHARED)]
    easy_vqa = importlib.util.find_spec("easy_vqa")  # its test images ship inside the package
    if easy_vqa is not None and easy_vqa.submodule_search_locations:
        roots.append(str(Path(next(iter(easy_vqa.submodule_search_locations))) / "data"))
    os.environ["VLTOOLS_ALLOWED_ROOTS"] = json.dumps(roots)
    from vltools.core.settings import reset_settings

    reset_settings()
    return home


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not DATA.exists():
        pytest.skip(f"shared data not found at {DATA}")
    return DATA


@pytest.fixture
def run_cli():
    """Run the CLI in-process: returns (exit_code, stdout, stderr)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from vltools.cli import main

    def run(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        old_stdin = sys.stdin
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        try:
            with redirect_stdout(out), redirect_stderr(err):
                code = main(list(argv))
        finally:
            sys.stdin = old_stdin
        return code, out.getvalue(), err.getvalue()

    return run
