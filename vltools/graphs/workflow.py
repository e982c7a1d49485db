"""Scripted multi-step workflows: a YAML list of tool steps compiled to a LangGraph graph.

    name: search-then-evaluate
    inputs: {collection: docs}              # workflow variables: ${inputs.collection}
    steps:
      - id: search
        tool: retrieve.bm25
        inputs: {collection: "${inputs.collection}", query: "wing flutter", k: 5}
      - id: check
        tool: graph.fact_check
        for_each: ["claim one", "claim two"]   # optional: run once per item -> output.items
        inputs: {claim: "${item}", collection: "${inputs.collection}"}

A value that is exactly ``${step.output.path}`` takes the referenced value with its type;
inside a longer string it is interpolated. ``${workflow_dir}`` is the YAML file's folder.
Before anything runs the workflow is validated: unknown tools, unknown input fields, undefined
references, references to fields the producing tool does not output, type mismatches, missing
required inputs and dependency cycles are errors naming the step and field. Each step is a node
checkpointed to SQLite (LangGraph's ``SqliteSaver``); ``--resume RUN_ID`` continues a failed run
from the failed step without re-running the ones that succeeded.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import sys
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

import yaml

from vltools.core.errors import InvalidInput, NotFound, ToolError

_REF = re.compile(r"\$\{([^}]*)\}")
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_RESERVED = {"inputs", "item", "workflow_dir"}


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {**a, **b}


def _concat(a: list[str], b: list[str]) -> list[str]:
    return a + b


class _State(TypedDict, total=False):
    outputs: Annotated[dict[str, Any], _merge]
    ran: Annotated[list[str], _concat]


# -- parsing and validation ---------------------------------------------------------------------
class Step:
    def __init__(self, sid: str, tool: str, inputs: dict[str, Any], for_each: Any = None):
        self.id, self.tool, self.inputs, self.for_each = sid, tool, inputs, for_each
        self.deps: set[str] = set()


class Workflow:
    def __init__(self, name: str, steps: list[Step], variables: dict[str, Any], path: Path | None, text: str):
        self.name, self.steps, self.variables, self.path, self.text = name, steps, variables, path, text

    @property
    def signature(self) -> str:
        return hashlib.sha256(json.dumps([(s.id, s.tool) for s in self.steps]).encode()).hexdigest()[:16]


def _err(step: str | None, field: str | None, msg: str, hint: str | None = None) -> InvalidInput:
    where = "workflow" if step is None else f"step {step!r}" + (f" field {field!r}" if field else "")
    return InvalidInput(f"{where}: {msg}", hint=hint)


def _refs(value: Any) -> list[tuple[str, bool]]:
    """References in a value: (expression, whole) — whole when the value is exactly one reference."""
    if isinstance(value, str):
        found = _REF.findall(value)
        whole = len(found) == 1 and value.strip() == "${" + found[0] + "}"
        return [(f.strip(), whole) for f in found]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def _schema_at(schema: dict[str, Any], path: list[str], defs: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema of ``path`` inside ``schema`` (None: no such field; {} = unknown/any)."""
    node = _deref(schema, defs)
    for part in path:
        node = _deref(node, defs)
        if "anyOf" in node:
            opts = [_deref(o, defs) for o in node["anyOf"] if o.get("type") != "null"]
            node = opts[0] if len(opts) == 1 else {}
        if not node:
            return {}
        if part.isdigit() and node.get("type") == "array":
            node = node.get("items", {})
        elif node.get("type") == "object" or "properties" in node:
            props = node.get("properties")
            if props is None:  # a free-form mapping
                return {}
            if part not in props:  # declared fields are authoritative (shared types allow extras)
                return None
            node = props[part]
        else:
            return None
    return _deref(node, defs)


def _deref(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = defs.get(node["$ref"].split("/")[-1], {})
    return node


def _types(node: dict[str, Any] | None, defs: dict[str, Any]) -> set[str]:
    if not node:
        return set()
    node = _deref(node, defs)
    if "anyOf" in node:
        out: set[str] = set()
        for o in node["anyOf"]:
            t = _types(o, defs)
            if not t:
                return set()
            out |= t
        return out
    t = node.get("type")
    if isinstance(t, list):
        return set(t)
    return {t} if t else set()


def _compatible(src: set[str], dst: set[str]) -> bool:
    if not src or not dst:
        return True
    if "integer" in src:
        src = src | {"number"}
    return bool(src & dst) or ("null" in src and len(src) > 1 and bool((src - {"null"}) & dst))


def load_workflow(path: str | Path | None = None, *, text: str | None = None) -> Workflow:
    """Parse and validate a workflow; raises `InvalidInput` naming the step and field at fault."""
    from vltools.core.registry import get_registry

    p = Path(path) if path is not None else None
    if text is None:
        if p is None or not p.is_file():
            raise NotFound(f"workflow file {str(p)!r} not found", hint="give the path of a workflow YAML file")
        text = p.read_text(encoding="utf-8")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise _err(None, None, f"not valid YAML: {err}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list) or not doc["steps"]:
        raise _err(None, None, "needs a non-empty 'steps' list", hint="see examples/*.yaml")
    unknown = set(doc) - {"name", "description", "inputs", "steps"}
    if unknown:
        raise _err(None, None, f"unknown top-level keys {sorted(unknown)}", hint="use name, description, inputs, steps")
    variables = doc.get("inputs") or {}
    if not isinstance(variables, dict):
        raise _err(None, None, "'inputs' must be a mapping of workflow variables")
    reg = get_registry()
    steps: list[Step] = []
    for i, raw in enumerate(doc["steps"], 1):
        if not isinstance(raw, dict):
            raise _err(f"#{i}", None, "a step must be a mapping with id, tool and inputs")
        sid = str(raw.get("id") or f"step{i}")
        if not _ID.match(sid) or sid in _RESERVED:
            raise _err(sid, None, "ids are letters, digits, _ or -, and not 'inputs', 'item' or 'workflow_dir'")
        if any(s.id == sid for s in steps):
            raise _err(sid, None, "duplicate step id")
        bad = set(raw) - {"id", "tool", "inputs", "for_each"}
        if bad:
            raise _err(sid, None, f"unknown keys {sorted(bad)}", hint="a step has id, tool, inputs, for_each")
        name = raw.get("tool")
        if not isinstance(name, str):
            raise _err(sid, "tool", "missing tool name")
        try:
            spec = reg.spec(name)
        except NotFound as err:
            raise _err(sid, "tool", f"unknown tool {name!r}", hint=err.hint) from None
        inputs = raw.get("inputs") or {}
        if not isinstance(inputs, dict):
            raise _err(sid, "inputs", "must be a mapping of input fields")
        steps.append(Step(sid, spec.name, inputs, raw.get("for_each")))
    wf = Workflow(str(doc.get("name") or (p.stem if p else "workflow")), steps, variables, p, text)
    _check_references(wf)
    wf.steps = _toposort(wf.steps)
    return wf


def _output_schema(reg: Any, step: Step) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = reg.get(step.tool).output_model.model_json_schema()
    defs = schema.get("$defs", {})
    if step.for_each is not None:
        schema = {"type": "object", "properties": {"items": {"type": "array", "items": schema}}}
    return schema, defs


def _check_references(wf: Workflow) -> None:
    from vltools.core.registry import get_registry

    reg = get_registry()
    by_id = {s.id: s for s in wf.steps}
    for step in wf.steps:
        in_schema = reg.get(step.tool).input_model.model_json_schema()
        in_defs = in_schema.get("$defs", {})
        props = in_schema.get("properties", {})
        for field in step.inputs:
            if field not in props:
                raise _err(step.id, field, f"{step.tool} has no input {field!r}",
                           hint=f"its inputs: {', '.join(props)}")
        for field in in_schema.get("required", []):
            if field not in step.inputs:
                raise _err(step.id, field, f"required input of {step.tool} is missing")
        checks = [(f, v) for f, v in step.inputs.items()] + [("for_each", step.for_each)]
        for field, value in checks:
            for expr, whole in _refs(value):
                src = _ref_schema(wf, by_id, step, field, expr, reg)
                if field == "for_each":
                    if whole and src and not _compatible(_types(src[0], src[1]), {"array"}):
                        raise _err(step.id, "for_each", f"${{{expr}}} is not a list")
                    continue
                dst = props[field]
                if whole and src is not None:
                    st, dt = _types(src[0], src[1]), _types(dst, in_defs)
                    if not _compatible(st, dt):
                        raise _err(step.id, field, f"type mismatch: {step.tool}.{field} expects "
                                   f"{'/'.join(sorted(dt))} but ${{{expr}}} is {'/'.join(sorted(st))}")
                elif not whole and not _compatible({"string"}, _types(dst, in_defs)):
                    raise _err(step.id, field, f"text with ${{{expr}}} inside is a string, but {step.tool}.{field} "
                               f"expects {'/'.join(sorted(_types(dst, in_defs)))}",
                               hint="make the value exactly one reference to pass it with its type")


def _ref_schema(wf: Workflow, by_id: dict[str, Step], step: Step, field: str, expr: str,
                reg: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
    parts = [p for p in expr.split(".") if p != ""]
    if not parts:
        raise _err(step.id, field, "empty reference ${}")
    root = parts[0]
    if root == "workflow_dir":
        return {"type": "string"}, {}
    if root == "inputs":
        if len(parts) < 2 or parts[1] not in wf.variables:
            name = parts[1] if len(parts) > 1 else ""
            raise _err(step.id, field, f"undefined reference ${{{expr}}}: no workflow input {name!r}",
                       hint=f"define it under 'inputs:' ({list(wf.variables)})")
        return None
    if root == "item":
        if step.for_each is None or field == "for_each":
            raise _err(step.id, field, "${item} is only defined inside a step with for_each")
        return None
    if root not in by_id:
        raise _err(step.id, field, f"undefined reference ${{{expr}}}: no step {root!r}",
                   hint=f"steps: {', '.join(by_id)}")
    if root == step.id:
        raise _err(step.id, field, f"cycle: the step refers to its own output (${{{expr}}})")
    if len(parts) < 2 or parts[1] != "output":
        raise _err(step.id, field, f"bad reference ${{{expr}}}", hint=f"write ${{{root}.output.FIELD}}")
    step.deps.add(root)
    schema, defs = _output_schema(reg, by_id[root])
    node = _schema_at(schema, parts[2:], defs)
    if node is None:
        raise _err(step.id, field, f"bad reference ${{{expr}}}: {by_id[root].tool} outputs no field "
                   f"{'.'.join(parts[2:])!r}", hint=f"see `vltools describe {by_id[root].tool}`")
    return node, defs


def _toposort(steps: list[Step]) -> list[Step]:
    """Steps in file order where possible; raises on a dependency cycle, naming it."""
    by_id = {s.id: s for s in steps}
    state: dict[str, int] = {}
    order: list[Step] = []

    def visit(s: Step, trail: list[str]) -> None:
        if state.get(s.id) == 2:
            return
        if state.get(s.id) == 1:
            cyc = trail[trail.index(s.id):] + [s.id]
            raise _err(s.id, None, f"dependency cycle: {' -> '.join(cyc)}", hint="a step may only use earlier outputs")
        state[s.id] = 1
        for d in sorted(s.deps, key=lambda x: [t.id for t in steps].index(x)):
            visit(by_id[d], trail + [s.id])
        state[s.id] = 2
        order.append(s)

    for s in steps:
        visit(s, [])
    return order


# -- running ------------------------------------------------------------------------------------------
def _lookup(expr: str, outputs: dict[str, Any], wf: Workflow, item: Any, step: Step) -> Any:
    parts = [p for p in expr.split(".") if p != ""]
    root = parts[0]
    if root == "workflow_dir":
        return str((wf.path.parent if wf.path else Path.cwd()).resolve())
    if root == "inputs":
        cur, rest = wf.variables[parts[1]], parts[2:]
    elif root == "item":
        cur, rest = item, parts[1:]
    else:
        cur, rest = outputs[root], parts[2:]
    for part in rest:
        try:
            cur = cur[int(part)] if isinstance(cur, list) else cur[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise InvalidInput(f"step {step.id!r}: ${{{expr}}} has no value at {part!r}") from None
    return cur


def _substitute(value: Any, outputs: dict[str, Any], wf: Workflow, item: Any, step: Step) -> Any:
    if isinstance(value, str):
        refs = _refs(value)
        if len(refs) == 1 and refs[0][1]:
            return _lookup(refs[0][0], outputs, wf, item, step)
        return _REF.sub(lambda m: _text(_lookup(m.group(1).strip(), outputs, wf, item, step)), value)
    if isinstance(value, dict):
        return {k: _substitute(v, outputs, wf, item, step) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, outputs, wf, item, step) for v in value]
    return value


def _text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def _say(line: str) -> None:
    sys.stderr.write(line.rstrip() + "\n")
    sys.stderr.flush()


def _node(wf: Workflow, step: Step, index: int, run_id: str, progress: Any) -> Any:
    from vltools.core.registry import get_registry

    def run(state: _State) -> dict[str, Any]:
        outputs = state.get("outputs", {})
        label = f"[{run_id}] step {index}/{len(wf.steps)} {step.id} ({step.tool})"
        _say(f"{label} ...")
        t0 = time.monotonic()
        items = [None] if step.for_each is None else _substitute(step.for_each, outputs, wf, None, step)
        if not isinstance(items, list):
            raise InvalidInput(f"step {step.id!r}: for_each must give a list, got {type(items).__name__}")
        results = []
        for n, item in enumerate(items):
            inp = _substitute(step.inputs, outputs, wf, item, step)
            try:
                out = get_registry().call(step.tool, inp, progress=progress)
            except ToolError as err:
                raise ToolError(
                    err.code, f"step {step.id!r} ({step.tool}) failed: {err.message}", hint=err.hint,
                    details=err.details,
                ) from err
            results.append(out.model_dump(mode="json"))
            if step.for_each is not None:
                _say(f"{label} item {n + 1}/{len(items)} done")
        value = results[0] if step.for_each is None else {"items": results}
        _say(f"{label} done in {time.monotonic() - t0:.1f}s")
        return {"outputs": {step.id: value}, "ran": [step.id]}

    return run


def compile_workflow(wf: Workflow, run_id: str, checkpointer: Any = None, progress: Any = None) -> Any:
    """The workflow as a compiled LangGraph graph: one node per step, in dependency order."""
    from langgraph.graph import END, START, StateGraph

    g = StateGraph(_State)
    prev = START
    for i, step in enumerate(wf.steps, 1):
        g.add_node(step.id, _node(wf, step, i, run_id, progress))
        g.add_edge(prev, step.id)
        prev = step.id
    g.add_edge(prev, END)
    return g.compile(checkpointer=checkpointer)


def _open_db(db: str | Path) -> sqlite3.Connection:
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(db), check_same_thread=False)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS vltools_runs (run_id TEXT PRIMARY KEY, file TEXT, workflow TEXT, "
        "signature TEXT, status TEXT, failed_step TEXT, created REAL, updated REAL)"
    )
    conn.commit()
    return conn


def run_workflow(path: str | Path | None = None, *, resume: str | None = None, db: str | Path | None = None,
                 progress: Any = None) -> dict[str, Any]:
    """Run (or resume) a workflow with SQLite checkpoints; returns run_id, status, steps_run, outputs.

    Raises:
        ToolError: an invalid workflow (before anything runs) or a failing step (the run can be resumed).
    """
    from langgraph.checkpoint.sqlite import SqliteSaver

    from vltools.core.settings import get_settings

    db_path = Path(db) if db else get_settings().home / "runs.sqlite"
    conn = _open_db(db_path)
    try:
        if resume:
            row = conn.execute("SELECT file, workflow, signature, status FROM vltools_runs WHERE run_id=?",
                               (resume,)).fetchone()
            if row is None:
                known = [r[0] for r in conn.execute("SELECT run_id FROM vltools_runs ORDER BY created DESC LIMIT 5")]
                raise NotFound(f"no run {resume!r} in {db_path}", hint=f"recent runs: {', '.join(known) or 'none'}")
            file = Path(path) if path else (Path(row[0]) if row[0] else None)
            wf = load_workflow(file) if file and file.is_file() else load_workflow(None, text=row[1])
            if wf.signature != row[2]:
                raise InvalidInput(f"the workflow's steps changed since run {resume} started",
                                   hint="start a new run (without --resume)")
            run_id = resume
        else:
            wf = load_workflow(path)
            run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
            conn.execute("INSERT INTO vltools_runs VALUES (?,?,?,?,?,?,?,?)",
                         (run_id, str(Path(path).resolve()) if path else None, wf.text, wf.signature, "running",
                          None, time.time(), time.time()))
            conn.commit()
        saver = SqliteSaver(conn)
        graph = compile_workflow(wf, run_id, saver, progress)
        config = {"configurable": {"thread_id": run_id}}
        if resume:
            snap = graph.get_state(config)
            if not snap.next:
                _say(f"[{run_id}] already completed; nothing to resume")
                return _result(run_id, wf, "completed", [], snap.values.get("outputs", {}))
            _say(f"[{run_id}] resuming at step {snap.next[0]!r}")
            args: Any = None
        else:
            _say(f"[{run_id}] running {wf.name!r}: {len(wf.steps)} steps; checkpoints in {db_path}")
            args = {"outputs": {}, "ran": []}
        before = set(graph.get_state(config).values.get("ran", [])) if resume else set()
        try:
            final = graph.invoke(args, config)
        except ToolError as err:
            snap = graph.get_state(config)
            failed = snap.next[0] if snap.next else "?"
            conn.execute("UPDATE vltools_runs SET status='failed', failed_step=?, updated=? WHERE run_id=?",
                         (failed, time.time(), run_id))
            conn.commit()
            _say(f"[{run_id}] failed at step {failed!r}; fix the cause, then: vltools run --resume {run_id}")
            hint = (err.hint + "; " if err.hint else "") + f"then resume with `vltools run --resume {run_id}`"
            details = {**err.details, "run_id": run_id, "failed_step": failed}
            raise ToolError(err.code, f"run {run_id}: {err.message}", hint=hint, details=details) from err
        conn.execute("UPDATE vltools_runs SET status='completed', failed_step=NULL, updated=? WHERE run_id=?",
                     (time.time(), run_id))
        conn.commit()
        ran = [s for s in final.get("ran", []) if s not in before]
        _say(f"[{run_id}] completed")
        return _result(run_id, wf, "completed", ran, final.get("outputs", {}))
    finally:
        conn.close()


def _result(run_id: str, wf: Workflow, status: str, ran: list[str], outputs: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": run_id, "workflow": wf.name, "status": status, "steps_run": ran,
            "steps": [s.id for s in wf.steps], "outputs": outputs}


def run_workflow_cli(args: Any) -> int:
    """``vltools run FILE.yaml [--resume RUN_ID] [--db PATH]``: results JSON on stdout, progress on stderr."""
    if not args.file and not args.resume:
        raise InvalidInput("give a workflow file, or --resume RUN_ID", hint="vltools run examples/rag_folder.yaml")
    result = run_workflow(args.file, resume=args.resume, db=args.db)
    sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()
    return 0
