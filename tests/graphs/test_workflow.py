"""YAML workflows: validation before running (pydantic specs, bounded YAML), graphlib order, SQLite
checkpoints, resume from the failed or interrupted step, the graph.workflow tool, and the CLI glue."""

from __future__ import annotations

import json
import textwrap

import pytest

from vltools.core.context import Context
from vltools.core.errors import InvalidInput, NotFound, Timeout, TooLarge, ToolError
from vltools.core.registry import Registry, get_registry
from vltools.graphs.workflow import load_workflow, load_yaml, run_status, run_workflow

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
    assert exc.value.details["failed_step"] == "more" and f"run {run_id} failed" in msg
    assert exc.value.code == "not_found"  # the step's own error code survives the wrapping
    assert run_status(run_id, db) == ("failed", "more")

    (tmp_path / "extra.jsonl").write_text(json.dumps({"id": "d2", "text": "Glaciers retreat as it warms."}) + "\n")
    counted_calls.clear()
    out = run_workflow(None, resume=run_id, db=db)
    assert out.status == "completed" and out.run_id == run_id and run_status(run_id, db)[0] == "completed"
    assert out.steps_run == ["more", "search"]
    assert counted_calls == ["collection.add", "retrieve.bm25", "retrieve.bm25"]  # create and seed not re-run
    hits = [item["hits"][0]["id"] for item in out.outputs["search"]["items"]]
    assert hits == ["d2", "d1"]
    assert out.outputs["create"]["name"] == "wf_resume"  # earlier outputs restored from the checkpoint

    counted_calls.clear()
    again = run_workflow(None, resume=run_id, db=db)
    assert again.steps_run == [] and counted_calls == []
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
    msg = _bad("""
        nmae: typo
        steps: [{id: a, tool: retrieve.bm25, inputs: {collection: c, query: q}}]""")
    assert "workflow: unknown key 'nmae'" in msg
    assert "step 'a': unknown key 'input'" in _bad("""
        steps: [{id: a, tool: retrieve.bm25, input: {collection: c, query: q}}]""")
    assert "step '#2' field 'tool'" in _bad("""
        steps: [{id: a, tool: retrieve.bm25, inputs: {collection: c, query: q}}, {inputs: {}}]""")
    assert "reserved" in _bad("""
        steps: [{id: item, tool: retrieve.bm25, inputs: {collection: c, query: q}}]""")


def test_valid_workflow_orders_steps_by_dependency():
    wf = load_workflow(None, text=textwrap.dedent("""
        steps:
          - id: b
            tool: retrieve.bm25
            inputs: {collection: "${a.output.collection}", query: "about ${a.output.query}"}
          - {id: a, tool: retrieve.bm25, inputs: {collection: c, query: q, k: 3}}"""))
    assert [s.id for s in wf.steps] == ["a", "b"]
    # independent steps keep file order; a step waits only for what it uses
    wf = load_workflow(None, text=textwrap.dedent("""
        steps:
          - {id: c, tool: retrieve.bm25, inputs: {collection: "${d.output.collection}", query: q}}
          - {id: x, tool: retrieve.bm25, inputs: {collection: c, query: q}}
          - {id: d, tool: retrieve.bm25, inputs: {collection: "${x.output.collection}", query: q}}
          - {id: y, tool: retrieve.bm25, inputs: {collection: c, query: q}}"""))
    assert [s.id for s in wf.steps] == ["x", "d", "c", "y"]


def test_yaml_bombs_and_oversized_files_are_refused():
    laughs = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 9):
        laughs.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")  # 9^9 values from 72 aliases
    bomb = "\n".join(laughs) + "\nsteps: *a8\n"
    assert len(bomb) < 1000
    with pytest.raises(TooLarge, match="expands to more than"):
        load_workflow(None, text=bomb)
    many = "x: &x 1\n" + "".join(f"k{i}: *x\n" for i in range(101)) + "steps: []\n"
    with pytest.raises(TooLarge, match="more than 100 aliases"):
        load_yaml(many)
    with pytest.raises(TooLarge, match="bytes, over the limit"):
        load_yaml("steps: []\n# " + "x" * 300_000)
    with pytest.raises(InvalidInput, match="recursive alias"):
        load_yaml("a: &a [1, *a]\n")
    with pytest.raises(TooLarge, match="nests deeper"):
        load_yaml("[" * 100 + "]" * 100)
    with pytest.raises(InvalidInput, match="not valid YAML"):
        load_yaml("steps: [unclosed")
    # ordinary aliases still work
    wf = load_workflow(None, text=textwrap.dedent("""
        steps:
          - {id: a, tool: retrieve.bm25, inputs: &q {collection: c, query: q}}
          - {id: b, tool: retrieve.bm25, inputs: *q}"""))
    assert [s.inputs for s in wf.steps] == [{"collection": "c", "query": "q"}] * 2


def test_interrupted_run_is_marked_and_resumes(tmp_path, counted_calls):
    """A cancel between steps (the context's cancellation point) stops the run as 'interrupted'."""
    text = textwrap.dedent("""
        steps:
          - {id: make, tool: collection.create, inputs: {name: wf_stop, text_model: none, exist_ok: true}}
          - {id: info, tool: collection.info, inputs: {collection: "${make.output.name}"}}
          - {id: again, tool: collection.info, inputs: {collection: "${make.output.name}"}}""")
    db = tmp_path / "runs.sqlite"
    ctx = Context()
    notes: list[str] = []

    def progress(done, total, note):
        notes.append(note)
        if note.startswith("step 1/3 make done"):
            ctx.cancelled.set()  # e.g. an MCP cancel or Ctrl-C in a server

    ctx = Context(progress=progress)
    with pytest.raises(Timeout) as exc:
        run_workflow(None, text=text, db=db, ctx=ctx)
    run_id = exc.value.details["run_id"]
    assert exc.value.details["status"] == "interrupted" and "interrupted at step 'info'" in exc.value.message
    assert run_status(run_id, db) == ("interrupted", "info")
    assert counted_calls == ["collection.create"] and notes[0] == "step 1/3 make (collection.create)"
    counted_calls.clear()
    out = run_workflow(None, resume=run_id, db=db)
    assert out.steps_run == ["info", "again"] and counted_calls == ["collection.info", "collection.info"]
    assert run_status(run_id, db)[0] == "completed"


def test_graph_workflow_tool_runs_inline_yaml_and_resumes(tmp_path, counted_calls):
    from vltools.core.settings import Settings

    settings = Settings(allowed_roots=[tmp_path], home=tmp_path / "home")
    reg = get_registry()
    assert reg.spec("graph.workflow").effects == "writes"
    assert reg.get("graph.workflow").summary_line == reg.spec("graph.workflow").summary
    text = textwrap.dedent("""
        name: tool-run
        steps:
          - {id: make, tool: collection.create, inputs: {name: wf_tool, text_model: none, exist_ok: true}}
          - id: add
            tool: collection.add
            inputs: {collection: "${make.output.name}", path: "${workflow_dir}/docs.jsonl", upsert: true}""")
    wf_file = tmp_path / "wf.yaml"
    wf_file.write_text(text)
    with pytest.raises(ToolError) as exc:
        reg.call("graph.workflow", {"file": str(wf_file)}, ctx=Context(settings=settings))
    run_id = exc.value.details["run_id"]
    (tmp_path / "docs.jsonl").write_text(json.dumps({"id": "d1", "text": "ice"}) + "\n")
    wf_file.write_text("steps: [{id: other, tool: collection.list}]")  # the tool resumes the stored text
    with pytest.raises(InvalidInput, match="steps changed"):  # the Python API/CLI re-read the file
        run_workflow(None, resume=run_id, ctx=Context(settings=settings))
    counted_calls.clear()
    out = reg.call("graph.workflow", {"resume": run_id}, ctx=Context(settings=settings))
    assert out.run_id == run_id and out.steps_run == ["add"] and out.outputs["add"]["added"] == 1
    assert counted_calls == ["graph.workflow", "collection.add"]
    inline = reg.call("graph.workflow", {"text": text.replace("${workflow_dir}", str(tmp_path))},
                      ctx=Context(settings=settings))
    assert inline.workflow == "tool-run" and inline.steps_run == ["make", "add"] and inline.run_id != run_id
    with pytest.raises(InvalidInput, match="either file or text"):
        reg.call("graph.workflow", {"file": str(wf_file), "text": text}, ctx=Context(settings=settings))
    with pytest.raises(InvalidInput, match="outside the allowed roots"):
        reg.call("graph.workflow", {"file": "/etc/passwd"}, ctx=Context(settings=settings))
    with pytest.raises(InvalidInput):
        reg.call("graph.workflow", {"text": text, "kk": 1}, ctx=Context(settings=settings))


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


def test_cli_ctrl_c_marks_the_run_interrupted_and_prints_the_resume_command(tmp_path, run_cli, monkeypatch):
    wf = tmp_path / "ok.yaml"
    wf.write_text(textwrap.dedent("""
        steps:
          - {id: make, tool: collection.create, inputs: {name: wf_int, text_model: none, exist_ok: true}}
          - {id: info, tool: collection.info, inputs: {collection: "${make.output.name}"}}"""))
    real = Registry.call

    def ctrl_c_at_info(self, name, inp=None, **kw):
        if name == "collection.info":
            raise KeyboardInterrupt
        return real(self, name, inp, **kw)

    monkeypatch.setattr(Registry, "call", ctrl_c_at_info)
    db = tmp_path / "r.sqlite"
    code, out, err = run_cli("run", str(wf), "--db", str(db))
    assert code == 130 and out == ""
    line = [x for x in err.splitlines() if "interrupted; to continue:" in x][0]
    run_id = line.split("]")[0].lstrip("[")
    assert f"vltools run --resume {run_id} --db {db}" in line
    assert run_status(run_id, db) == ("interrupted", "info")
    monkeypatch.setattr(Registry, "call", real)
    code, out, err = run_cli("run", "--resume", run_id, "--db", str(db))
    assert code == 0 and json.loads(out)["steps_run"] == ["info"], err


def test_library_code_prints_nothing(tmp_path, capsys):
    text = "steps: [{id: make, tool: collection.create, inputs: {name: wf_quiet, text_model: none, exist_ok: true}}]"
    run_workflow(None, text=text, db=tmp_path / "r.sqlite")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.mark.parametrize("name", ["index_and_evaluate.yaml", "fact_check_claims.yaml", "rag_folder.yaml"])
def test_examples_validate(name):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / name
    if not path.exists():
        pytest.fail(f"example {name} missing")
    assert load_workflow(path).steps
