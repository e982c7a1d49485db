"""The tool contract: validation both ways, typed errors, deadlines, progress, plugins."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from vltools.core import Context, InvalidInput, Registry, RegistryError, Timeout, ToolError
from vltools.core.registry import PLUGIN_GROUP

SAMPLE_YAML = """
version: 1
tools:
  - name: sample.echo
    entry: tests.core.sample_tools:echo
    summary: Echo text.
    effects: read_only
  - name: sample.sleep
    entry: tests.core.sample_tools:sleep
    summary: Sleep.
    effects: read_only
  - name: sample.broken
    entry: tests.core.sample_tools:broken
    summary: Broken output.
    effects: read_only
  - name: sample.missing
    entry: tests.core.sample_tools:nope
    summary: Does not resolve.
    effects: read_only
"""


@pytest.fixture
def reg() -> Registry:
    return Registry(Registry.read_file(SAMPLE_YAML, "test"))


def test_call_validates_and_returns_the_output_model(reg):
    out = reg.call("sample.echo", {"text": "hi", "times": 2})
    assert out.text == "hi hi"
    # MCP-style names resolve too
    assert reg.call("sample_echo", {"text": "a"}).text == "a"


def test_invalid_input_names_the_field(reg):
    with pytest.raises(InvalidInput) as exc:
        reg.call("sample.echo", {"text": "", "times": 9})
    msg = str(exc.value)
    assert "text" in msg and "times" in msg and exc.value.code == "invalid_input"
    with pytest.raises(InvalidInput):
        reg.call("sample.echo", ["not", "an", "object"])


def test_models_inside_the_input_are_taken_as_data(reg):
    """A tool's output models chain into another tool's input without glue."""
    from tests.core.sample_tools import EchoInput, EchoOutput

    assert reg.call("sample.echo", EchoInput(text="m", times=2)).text == "m m"
    nested = {"text": EchoOutput(text="x").text, "times": 1}
    assert reg.call("sample.echo", nested).text == "x"
    from vltools.core.registry import _plain

    assert _plain({"a": [EchoOutput(text="y")], "b": (1,)}) == {"a": [{"text": "y"}], "b": [1]}


def test_tool_errors_keep_code_message_and_hint(reg):
    with pytest.raises(ToolError) as exc:
        reg.call("sample.echo", {"text": "refuse"})
    assert exc.value.code == "invalid_input" and exc.value.hint == "send another text"
    assert exc.value.render() == "invalid_input: the text 'refuse' is refused (hint: send another text)"


def test_invalid_output_is_reported_not_returned(reg):
    with pytest.raises(ToolError) as exc:
        reg.call("sample.broken", {"text": "x"})
    assert exc.value.code == "internal"


def test_unresolvable_entry_is_a_registry_error(reg):
    with pytest.raises(RegistryError):
        reg.get("sample.missing")


def test_deadline_stops_a_long_call(reg):
    with pytest.raises(Timeout):
        reg.call("sample.sleep", {"seconds": 5}, timeout=0.2)


def test_progress_reaches_the_callback(reg):
    seen = []
    reg.call("sample.echo", {"text": "x", "times": 3}, progress=lambda d, t, n: seen.append((d, t, n)))
    assert seen == [(1, 3, "echo"), (2, 3, "echo"), (3, 3, "echo")]


def test_nested_calls_share_the_deadline(reg):
    ctx = Context()
    ctx.deadline = 0.0  # already past
    with pytest.raises(Timeout):
        reg.call("sample.echo", {"text": "x"}, ctx=ctx)


def test_describe_has_schemas_and_paper_titles(reg):
    reg.entries["sample.echo"] = reg.entries["sample.echo"].model_copy(update={"papers": ["P24"]})
    d = reg.describe("sample.echo")
    assert d["input_schema"]["properties"]["text"]["description"] == "Text to echo."
    assert d["output_schema"]["required"] == ["text"]
    assert d["papers"][0]["title"].startswith("Rankify")


def test_plugins_are_loaded_from_entry_points(tmp_path):
    """A third-party registry file announced through the `vltools.plugins` entry-point group."""
    pkg = tmp_path / "myplugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from pathlib import Path\nREGISTRY = str(Path(__file__).with_name('reg.yaml'))\n")
    (pkg / "reg.yaml").write_text(
        "tools:\n  - {name: plug.echo, entry: 'tests.core.sample_tools:echo', summary: Plugin echo.,"
        " effects: read_only}\n"
    )
    dist = tmp_path / "myplugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{PLUGIN_GROUP}]\nmine = myplugin:REGISTRY\n")
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(tmp_path)!r})
        from vltools.core.registry import Registry
        reg = Registry.load()
        assert reg.spec('plug.echo').source == 'plugin:mine'
        print(reg.spec('plug.echo').summary)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Plugin echo."
