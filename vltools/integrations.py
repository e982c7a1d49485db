"""Ready-made glue for other tools: MCP client configurations and OpenAI function schemas.

- `mcp_configs` — the JSON that desktop assistants (``mcpServers``), Cursor (``mcpServers``) and
  VS Code (``servers``) read, with absolute paths to this installation's ``vltools`` and data.
- `openai_tools` — every registry entry as an OpenAI function-calling tool (``type: function``,
  name with ``_`` for ``.``, ``parameters`` = the tool's input JSON Schema).

Both import tool modules (for the schemas) but load no model.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from vltools.core.registry import Registry, get_registry
from vltools.core.settings import get_settings

CLIENTS = ("claude-desktop", "cursor", "vscode")
OPENAI_DESCRIPTION_MAX = 1024  # OpenAI rejects longer function descriptions


def vltools_command() -> list[str]:
    """An absolute command line that starts this installation's CLI."""
    beside = Path(sys.executable).with_name("vltools")
    if beside.exists():
        return [str(beside.absolute())]
    found = shutil.which("vltools")
    if found:
        return [str(Path(found).resolve())]
    return [str(Path(sys.executable).absolute()), "-m", "vltools.cli"]


def mcp_configs(*, http_url: str | None = None, home: Path | None = None) -> dict[str, Any]:
    """Client configurations keyed by client: stdio (a command) or, with ``http_url``, streamable HTTP."""
    home = (home or get_settings().home).expanduser().resolve()
    cmd = vltools_command()
    env = {"VLTOOLS_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if http_url:
        url = http_url.rstrip("/")
        url = url if url.endswith("/mcp") else url + "/mcp"
        entry: dict[str, Any] = {"url": url}
        return {
            "claude-desktop": {"mcpServers": {"vltools": {"command": "npx", "args": ["mcp-remote", url]}}},
            "cursor": {"mcpServers": {"vltools": entry}},
            "vscode": {"servers": {"vltools": {"type": "http", **entry}}},
        }
    stdio = {"command": cmd[0], "args": [*cmd[1:], "serve"], "env": env}
    return {
        "claude-desktop": {"mcpServers": {"vltools": stdio}},
        "cursor": {"mcpServers": {"vltools": stdio}},
        "vscode": {"servers": {"vltools": {"type": "stdio", **stdio}}},
    }


def _description(summary: str, papers: list[str]) -> str:
    text = summary.strip() + (f" Papers: {', '.join(papers)}." if papers else "")
    return text if len(text) <= OPENAI_DESCRIPTION_MAX else text[: OPENAI_DESCRIPTION_MAX - 1] + "…"


def openai_tools(registry: Registry | None = None, *, tag: str | None = None) -> list[dict[str, Any]]:
    """Every registry entry (optionally only those tagged ``tag``) as an OpenAI function tool."""
    reg = registry or get_registry()
    out: list[dict[str, Any]] = []
    for spec in reg.list(tag=tag):
        schema = reg.get(spec.name).input_model.model_json_schema()
        schema.pop("title", None)
        out.append({
            "type": "function",
            "function": {
                "name": spec.mcp_name,
                "description": _description(spec.summary, list(spec.papers)),
                "parameters": schema,
            },
        })
    return out
