"""The CLI contract: JSON on stdout, one line on stderr and exit 2 for tool errors."""

from __future__ import annotations

import json
import subprocess
import sys

from vltools.core.registry import get_registry


def test_list_json_has_every_entry(run_cli):
    code, out, err = run_cli("list", "--json")
    assert code == 0
    names = [e["name"] for e in json.loads(out)]
    assert names == get_registry().names()
    for e in json.loads(out):
        assert e["summary"] and "papers" in e


def test_list_filters_by_tag(run_cli):
    entries = get_registry().list()
    tagged = [e for e in entries if e.tags]
    if not tagged:
        return
    tag = tagged[0].tags[0]
    code, out, _ = run_cli("list", "--tag", tag, "--json")
    assert code == 0
    assert {e["name"] for e in json.loads(out)} == {e.name for e in entries if tag in e.tags}


def test_describe_prints_schemas(run_cli):
    name = get_registry().names()[0]
    code, out, _ = run_cli("describe", name, "--json")
    assert code == 0
    info = json.loads(out)
    assert info["name"] == name and "properties" in info["input_schema"] and info["output_schema"]


def test_describe_shows_effects_and_fidelity(run_cli):
    code, out, _ = run_cli("describe", "rerank.icr")
    spec = get_registry().spec("rerank.icr")
    assert code == 0 and f"fidelity: adapted — {spec.fidelity_note}" in out
    assert "effects: read_only, idempotent: yes" in out
    code, out, _ = run_cli("describe", "collection.delete", "--json")
    info = json.loads(out)
    assert info["effects"] == "destructive" and info["idempotent"] is True and info["fidelity"] is None
    assert not info["description"].startswith(info["summary"])  # the summary is said once, by the catalogue


def test_unknown_tool_is_one_line_and_exit_2(run_cli):
    code, out, err = run_cli("call", "no.such_tool", "--json", "{}")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "not_found" in err


def test_bad_json_is_one_line_and_exit_2(run_cli):
    name = get_registry().names()[0]
    code, out, err = run_cli("call", name, "--json", "{not json")
    assert code == 2 and out == "" and "not valid JSON" in err and err.count("\n") == 1


def test_missing_input_file(run_cli, tmp_path):
    name = get_registry().names()[0]
    code, _, err = run_cli("call", name, "--input", str(tmp_path / "nope.json"))
    assert code == 2 and "cannot read input file" in err


def test_invalid_input_names_the_field(run_cli):
    code, out, err = run_cli("call", "collection.info", "--json", '{"collection": 5}')
    assert code == 2 and out == ""
    assert "collection" in err and err.startswith("invalid_input")


def test_console_script_runs(tmp_path):
    exe = [sys.executable, "-m", "vltools.cli"]
    out = subprocess.run([*exe, "list"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip()


def test_unknown_input_field_is_rejected_by_name(run_cli):
    """A misspelt field fails (exit 2, the field named) instead of running with the default."""
    code, out, err = run_cli("call", "retrieve.bm25", "--json", '{"collection": "x", "query": "q", "kk": 3}')
    assert code == 2 and out == ""
    assert "kk" in err and "not permitted" in err


def test_positional_json_argument(run_cli):
    """`vltools call NAME '{...}'` is the same as --json; giving both is refused."""
    code, out, err = run_cli("call", "collection.info", '{"collection": 5}')
    assert code == 2 and out == "" and "collection" in err and err.startswith("invalid_input")
    code, out, _ = run_cli("call", "natlog.relate", '{"evidence_word": "poodle", "claim_word": "dog"}')
    assert code == 0 and json.loads(out)
    code, out, err = run_cli("call", "collection.list", "{}", "--json", "{}")
    assert code == 2 and out == "" and "once" in err
