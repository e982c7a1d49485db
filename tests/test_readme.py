"""The README's catalogue is `vltools list --markdown` of the registry (regenerate it when this fails)."""

from __future__ import annotations

import re
from pathlib import Path

from vltools import list_tools
from vltools.cli import catalogue_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_catalogue_matches_the_registry():
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- catalogue:start[^>]*-->\n(.*?)<!-- catalogue:end -->", text, flags=re.S)
    assert m, "README.md lost its catalogue markers"
    assert m.group(1) == catalogue_markdown(list_tools()), "run `vltools list --markdown` and paste it into README.md"


def test_every_paper_entry_shows_its_fidelity_in_the_readme():
    text = README.read_text(encoding="utf-8")
    for e in list_tools():
        if e.papers:
            assert f"| `{e.name}` | {e.kind} | {', '.join(e.papers)} | {e.fidelity} |" in text
            assert f"- `{e.name}` ({e.fidelity}): {e.fidelity_note}" in text
