"""YAML workflows: validation before running, SQLite checkpoints, resume from the failed step."""

from __future__ import annotations

import json
import textwrap

import pytest

from vltools.core.errors import InvalidInput, NotFound, ToolError
from vltools.core.registry import Registry
from vltools.graphs.workflow import load_workflow, run_workflow

INDEX = textwrap.dedent("""
    name: index-then-search
    inputs: {coll: wf_resume}
    steps:
      - id: create
        tool: collection.create
        inputs: {name: "${inputs.coll}", text_model: none, exist_ok: true}
      - id: seed
        tool: collection.add
        inputs:
          collection: "${create.output.name}"
          documents: [{id: d1, text: "Sea ice in the Arctic is shrinking."}]
          upsert: true
      - id: more
        tool: collection.add
        inputs: {collection: "${create.output.name}", path: "${workflow_dir}/extra.jsonl", upsert: true}
      - id: search
        tool: retrieve.bm25
        for_each: ["glaciers retreat", "arctic sea ice"]
        inputs: {collection: "${create.output.name}", query: "${item}", k: 1}
""")


@pytest.fixture
def counted_calls(monkeypatch):
    """Record every tool the workflow runs (at the registry boundary)."""
    calls: list[str] = []
    real = Registry.call

    def spy(self, name, inp=None, **kw):
        calls.append(name)
        return real(self, name, inp, **kw)

    monkeypatch.setattr(Registry, "call", spy)
    return calls


def test_failed_step_resumes_without_rerunning_earlier_steps(tmp_path, counted_calls):
    wf = tmp_path / "wf.yaml"
    wf.write_text(INDEX)
    db = tmp_path / "runs.sqlite"
    with pytest.raises(ToolError) as exc:
        run_workflow(wf, db=db)
    msg = exc.value.render()
    assert "step 'more'" in msg and "extra.jsonl" in msg and "--resume" in msg
    assert counted_calls == ["collection.create", "collection.add", "collection.add"]
    run_id = exc.value.details["run_id"]
    assert exc.value.details["failed_step"] == "more" and f"run {run_id}:" in msg

    (tmp_path / "extra.jsonl").write_text(json.dumps({"id": "d2", "text": "Glaciers retreat as it warms."}) + "\n")
    counted_calls.clear()
    out = run_workflow(None, resume=run_id, db=db)
    assert out["status"] == "completed" and out["run_id"] == run_id
    assert out["steps_run"] == ["more", "search"]
    assert counted_calls == ["collection.add", "retrieve.bm25", "retrieve.bm25"]  # create and seed not re-run
    hits = [item["hits"][0]["id"] for item in out["outputs"]["search"]["items"]]
    assert hits == ["d2", "d1"]
    assert out["outputs"]["create"]["name"] == "wf_resume"  # earlier outputs restored from the checkpoint

    counted_calls.clear()
    again = run_workflow(None, resume=run_id, db=db)
    assert again["steps_run"] == [] and counted_calls == []
    with pytest.raises(NotFound, match="no run"):
        run_workflow(None, resume="nope", db=db)


def _bad(body: str) -> str:
    with pytest.raises(InvalidInput) as exc:
        load_workflow(None, text=textwrap.dedent(body))
    return exc.value.message


def test_validation_names_the_step_and_field():
    assert "step 'a' field 'tool'" in _bad("""
        steps: [{id: a, tool: retrieve.bm2, inputs: {collection: c, query: q}}]""")
    msg = _bad("""
        steps:
          - {id: a, tool: retrieve.bm25, inputs: {collection: c, query: "${nowhere.output.hits}"}}""")
    assert "step 'a' field 'query'" in msg and "undefined reference" in msg
    msg = _bad("""
        steps:
          - {id: a, tool: retrieve.bm25, inputs: {collection: c, query: q}}
          - {id: b, tool: retrieve.bm25, inputs: {collection: c, query: "${a.output.nope}"}}""")
    assert "step 'b' field 'query'" in msg and "no field 'nope'" in msg
    msg = _bad("""
        steps:
          - {id: a, tool: retrieve.bm25, inputs: {collection: c, query: q}}
          - {id: b, tool: retrieve.bm25, inputs: {collection: c, query: "${a.output.hits}"}}""")
    assert "step 'b' field 'query'" in msg and "type mismatch" in msg and "array" in msg
    msg = _bad("""
        steps:
          - {id: a, tool: retrieve.bm25, inputs: {collection: "${b.output.collection}", query: q}}
          - {id: b, tool: retrieve.bm25, inputs: {collection: "${a.output.collection}", query: q}}""")
    assert "cycle" in msg and "a -> b -> a" in msg
    assert "has no input 'colection'" in _bad("""
        steps: [{id: a, tool: retrieve.bm25, inputs: {colection: c, query: q}}]""")
    assert "field 'query'" in _bad("""
        steps: [{id: a, tool: retrieve.bm25, inputs: {collection: c}}]""")
    assert "for_each" in _bad("""
        steps: [{id: a, tool: retrieve.bm25, inputs: {collection: c, query: "${item}"}}]""")
    assert "no workflow input 'x'" in _bad("""
        steps: [{id: a, tool: retrieve.bm25, inputs: {collection: "${inputs.x}", query: q}}]""")
    assert "steps" in _bad("name: empty")


def test_valid_workflow_orders_steps_by_dependency():
    wf = load_workflow(None, text=textwrap.dedent("""
        steps:
          - id: b
            tool: retrieve.bm25
            inputs: {collection: "${a.output.collection}", query: "about ${a.output.query}"}
          - {id: a, tool: retrieve.bm25, inputs: {collection: c, query: q, k: 3}}"""))
    assert [s.id for s in wf.steps] == ["a", "b"]


def test_cli_run_reports_json_and_one_line_errors(tmp_path, run_cli):
    wf = tmp_path / "ok.yaml"
    wf.write_text(textwrap.dedent("""
        steps:
          - {id: make, tool: collection.create, inputs: {name: wf_cli, text_model: none, exist_ok: true}}
          - {id: info, tool: collection.info, inputs: {collection: "${make.output.name}"}}"""))
    code, out, err = run_cli("run", str(wf), "--db", str(tmp_path / "r.sqlite"))
    assert code == 0, err
    res = json.loads(out)
    assert res["steps_run"] == ["make", "info"] and res["outputs"]["info"]["name"] == "wf_cli"
    assert "step 1/2 make" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [{id: a, tool: nope.tool, inputs: {}}]")
    code, out, err = run_cli("run", str(bad), "--db", str(tmp_path / "r.sqlite"))
    assert code == 2 and out == "" and "step 'a' field 'tool'" in err
    code, _, err = run_cli("run", "--db", str(tmp_path / "r.sqlite"))
    assert code == 2 and "--resume" in err


@pytest.mark.parametrize("name", ["index_and_evaluate.yaml", "fact_check_claims.yaml", "rag_folder.yaml"])
def test_examples_validate(name):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / name
    if not path.exists():
        pytest.fail(f"example {name} missing")
    assert load_workflow(path).steps
