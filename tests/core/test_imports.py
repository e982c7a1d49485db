"""Nothing heavy at import time: `vltools list` must not import torch and friends."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "open_clip", "faiss", "sentence_transformers", "av")


def _loaded_after(code: str) -> list[str]:
    probe = code + f"\nimport sys, json; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_vltools_is_light():
    assert _loaded_after("import vltools, vltools.cli, vltools.core") == []


def test_vltools_list_is_light():
    code = (
        "import io, contextlib\nfrom vltools.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    main(['list', '--json'])"
    )
    assert _loaded_after(code) == []
