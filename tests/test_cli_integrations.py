"""CLI process behaviour and integrations: closed pipes, MCP client configs, OpenAI function export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from vltools.core.registry import get_registry

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def test_list_into_a_closed_pipe_exits_0_quietly():
    # The reader is gone before vltools writes a byte: every write hits a broken pipe.
    proc = subprocess.Popen([sys.executable, "-m", "vltools.cli", "list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(60) == 0 and err == b""


def test_list_piped_into_head_exits_0_with_no_error_text():
    shell = f"set -o pipefail; {sys.executable} -m vltools.cli list --json | head -c 10"
    for _ in range(3):  # timing-dependent in the shell; the closed-pipe test above is the deterministic one
        r = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, env=ENV, timeout=60)
        assert r.returncode == 0 and r.stderr == "" and len(r.stdout) == 10


def test_mcp_config_has_absolute_paths_for_each_client(run_cli, vltools_home):
    code, out, _ = run_cli("mcp-config")
    assert code == 0
    configs = json.loads(out)
    assert set(configs) == {"claude-desktop", "cursor", "vscode"}
    entry = configs["claude-desktop"]["mcpServers"]["vltools"]
    assert Path(entry["command"]).is_absolute() and Path(entry["command"]).exists()
    assert entry["args"][-1] == "serve" and entry["env"]["VLTOOLS_HOME"] == str(vltools_home.resolve())
    assert configs["vscode"]["servers"]["vltools"]["type"] == "stdio"
    # The printed command really starts this installation's CLI.
    probe = subprocess.run([entry["command"], *entry["args"][:-1], "list", "--json"], capture_output=True,
                           text=True, env=ENV, timeout=120)
    assert probe.returncode == 0 and json.loads(probe.stdout)
    code, out, _ = run_cli("mcp-config", "--client", "cursor", "--http", "http://127.0.0.1:8765")
    assert json.loads(out) == {"mcpServers": {"vltools": {"url": "http://127.0.0.1:8765/mcp"}}}


def test_export_openai_has_every_tool_with_its_input_schema(run_cli):
    code, out, _ = run_cli("export", "openai")
    assert code == 0
    tools = json.loads(out)
    reg = get_registry()
    assert [t["function"]["name"] for t in tools] == [s.mcp_name for s in reg.list()]
    for t in tools:
        assert t["type"] == "function"
        fn = t["function"]
        assert set(fn["name"]) <= set("abcdefghijklmnopqrstuvwxyz0123456789_-") and len(fn["description"]) <= 1024
        name = next(s.name for s in reg.list() if s.mcp_name == fn["name"])
        schema = reg.get(name).input_model.model_json_schema()
        assert fn["parameters"]["properties"] == schema["properties"]
        assert fn["parameters"].get("required", []) == schema.get("required", [])
        assert fn["parameters"]["type"] == "object"


def test_run_script_names_its_two_commands():
    r = subprocess.run([str(ROOT / "run"), "bogus"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "./run demo" in r.stderr and "./run test" in r.stderr
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./run test" in ci and "HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1" in ci
    assert "./run demo" in (ROOT / "README.md").read_text() and "./run test" in (ROOT / "README.md").read_text()
