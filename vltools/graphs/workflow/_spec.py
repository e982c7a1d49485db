"""Workflow files: pydantic specs (unknown keys rejected), reference checks against tool schemas, order.

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

Before anything runs a workflow is validated: unknown keys, unknown tools, unknown input fields,
undefined references, references to fields the producing tool does not output, type mismatches,
missing required inputs and dependency cycles are `InvalidInput` errors naming the step and field.
Steps run in dependency order (`graphlib`), file order where the dependencies allow.
"""

from __future__ import annotations

import graphlib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vltools.core.errors import InvalidInput, NotFound
from vltools.graphs.workflow import _refs
from vltools.graphs.workflow._yaml import load_yaml

ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*$"


class StepSpec(BaseModel):
    """One step of a workflow file."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, pattern=ID_PATTERN, max_length=64,
                           description="Step id, used in ${ID.output...} references (default: stepN).")
    tool: str = Field(min_length=1, description="Registry tool or graph to run, e.g. retrieve.bm25.")
    inputs: dict[str, Any] = Field(default_factory=dict, description="The tool's input; values may hold ${...}.")
    for_each: list[Any] | str | None = Field(
        None, description="Run the step once per item (a list, or one reference to a list); ${item} is the item."
    )


class WorkflowSpec(BaseModel):
    """A workflow file: variables and steps."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200, description="Workflow name (default: the file's stem).")
    description: str | None = Field(None, description="What the workflow does.")
    inputs: dict[str, Any] = Field(default_factory=dict, description="Workflow variables: ${inputs.NAME}.")
    steps: list[StepSpec] = Field(min_length=1, max_length=200, description="The steps.")


@dataclass
class Step:
    """A validated step: its tool's canonical name and the steps whose outputs it uses."""

    id: str
    tool: str
    inputs: dict[str, Any]
    for_each: Any = None
    deps: set[str] = field(default_factory=set)


@dataclass
class Workflow:
    """A validated workflow, steps in run order."""

    name: str
    steps: list[Step]
    variables: dict[str, Any]
    path: Path | None
    text: str

    @property
    def signature(self) -> str:
        """Identity of the step sequence: a resumed run must have the same one."""
        return hashlib.sha256(json.dumps([(s.id, s.tool) for s in self.steps]).encode()).hexdigest()[:16]

    @property
    def workflow_dir(self) -> str:
        return str((self.path.parent if self.path else Path.cwd()).resolve())


def _err(step: str | None, fld: str | None, msg: str, hint: str | None = None) -> InvalidInput:
    where = ("workflow" if step is None else f"step {step!r}") + (f" field {fld!r}" if fld else "")
    return InvalidInput(f"{where}: {msg}", hint=hint)


def _spec_error(err: ValidationError, doc: Any) -> InvalidInput:
    """The first pydantic error as "step 'ID' field 'F': ..." (or "workflow: ...")."""
    e = err.errors()[0]
    loc = list(e["loc"])
    step = fld = None
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        raw = doc["steps"][loc[1]] if isinstance(doc, dict) and isinstance(doc.get("steps"), list) else None
        sid = raw.get("id") if isinstance(raw, dict) else None
        step = str(sid) if isinstance(sid, str) and sid else f"#{loc[1] + 1}"
        loc = loc[2:]
    if loc:
        fld = str(loc[0])
    if e["type"] == "extra_forbidden":
        keys = "id, tool, inputs, for_each" if step else "name, description, inputs, steps"
        return _err(step, None, f"unknown key {fld!r}", hint=f"valid keys: {keys}")
    if e["type"] == "missing" and step is None and fld == "steps":
        return _err(None, None, "needs a non-empty 'steps' list", hint="see examples/*.yaml")
    return _err(step, fld, e["msg"])


def load_workflow(path: str | Path | None = None, *, text: str | None = None, registry: Any = None) -> Workflow:
    """Parse and validate a workflow (a file, or YAML ``text``) against ``registry`` (default: the global one).

    Raises:
        NotFound: the file does not exist.
        TooLarge: the YAML is over the size/alias bounds (see `_yaml`).
        InvalidInput: anything else wrong, naming the step and field at fault.
    """
    if registry is None:
        from vltools.core.registry import get_registry

        registry = get_registry()
    p = Path(path) if path is not None else None
    if text is None:
        if p is None or not p.is_file():
            raise NotFound(f"workflow file {str(p)!r} not found", hint="give the path of a workflow YAML file")
        text = p.read_text(encoding="utf-8")
    doc = load_yaml(text)
    if not isinstance(doc, dict):
        raise _err(None, None, "needs a mapping with a non-empty 'steps' list", hint="see examples/*.yaml")
    try:
        spec = WorkflowSpec.model_validate(doc)
    except ValidationError as err:
        raise _spec_error(err, doc) from None
    steps: list[Step] = []
    for i, raw in enumerate(spec.steps, 1):
        sid = raw.id or f"step{i}"
        if sid in _refs.RESERVED:
            raise _err(sid, None, "'inputs', 'item' and 'workflow_dir' are reserved, not step ids")
        if any(s.id == sid for s in steps):
            raise _err(sid, None, "duplicate step id")
        try:
            entry = registry.spec(raw.tool)
        except NotFound as err:
            raise _err(sid, "tool", f"unknown tool {raw.tool!r}", hint=err.hint) from None
        steps.append(Step(sid, entry.name, raw.inputs, raw.for_each))
    wf = Workflow(spec.name or (p.stem if p else "workflow"), steps, spec.inputs, p, text)
    _check_references(wf, registry)
    wf.steps = _order(wf.steps)
    return wf


def _output_schema(registry: Any, step: Step) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = registry.get(step.tool).output_model.model_json_schema()
    defs = schema.get("$defs", {})
    if step.for_each is not None:
        schema = {"type": "object", "properties": {"items": {"type": "array", "items": schema}}}
    return schema, defs


def _check_references(wf: Workflow, registry: Any) -> None:
    by_id = {s.id: s for s in wf.steps}
    for step in wf.steps:
        in_schema = registry.get(step.tool).input_model.model_json_schema()
        in_defs = in_schema.get("$defs", {})
        props = in_schema.get("properties", {})
        for fld in step.inputs:
            if fld not in props:
                raise _err(step.id, fld, f"{step.tool} has no input {fld!r}", hint=f"its inputs: {', '.join(props)}")
        for fld in in_schema.get("required", []):
            if fld not in step.inputs:
                raise _err(step.id, fld, f"required input of {step.tool} is missing")
        for fld, value in [*step.inputs.items(), ("for_each", step.for_each)]:
            for expr, whole in _refs.refs(value):
                src = _ref_schema(wf, by_id, step, fld, expr, registry)
                if fld == "for_each":
                    if whole and src and not _refs.compatible(_refs.types(src[0], src[1]), {"array"}):
                        raise _err(step.id, "for_each", f"${{{expr}}} is not a list")
                    continue
                dst_types = _refs.types(props[fld], in_defs)
                if whole and src is not None:
                    src_types = _refs.types(src[0], src[1])
                    if not _refs.compatible(src_types, dst_types):
                        raise _err(step.id, fld, f"type mismatch: {step.tool}.{fld} expects "
                                   f"{'/'.join(sorted(dst_types))} but ${{{expr}}} is {'/'.join(sorted(src_types))}")
                elif not whole and not _refs.compatible({"string"}, dst_types):
                    raise _err(step.id, fld, f"text with ${{{expr}}} inside is a string, but {step.tool}.{fld} "
                               f"expects {'/'.join(sorted(dst_types))}",
                               hint="make the value exactly one reference to pass it with its type")


def _ref_schema(wf: Workflow, by_id: dict[str, Step], step: Step, fld: str, expr: str,
                registry: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
    parts = _refs.parts_of(expr)
    if not parts:
        raise _err(step.id, fld, "empty reference ${}")
    root = parts[0]
    if root == "workflow_dir":
        return {"type": "string"}, {}
    if root == "inputs":
        if len(parts) < 2 or parts[1] not in wf.variables:
            name = parts[1] if len(parts) > 1 else ""
            raise _err(step.id, fld, f"undefined reference ${{{expr}}}: no workflow input {name!r}",
                       hint=f"define it under 'inputs:' ({list(wf.variables)})")
        return None
    if root == "item":
        if step.for_each is None or fld == "for_each":
            raise _err(step.id, fld, "${item} is only defined inside a step with for_each")
        return None
    if root not in by_id:
        raise _err(step.id, fld, f"undefined reference ${{{expr}}}: no step {root!r}",
                   hint=f"steps: {', '.join(by_id)}")
    if root == step.id:
        raise _err(step.id, fld, f"cycle: the step refers to its own output (${{{expr}}})")
    if len(parts) < 2 or parts[1] != "output":
        raise _err(step.id, fld, f"bad reference ${{{expr}}}", hint=f"write ${{{root}.output.FIELD}}")
    step.deps.add(root)
    schema, defs = _output_schema(registry, by_id[root])
    node = _refs.schema_at(schema, parts[2:], defs)
    if node is None:
        raise _err(step.id, fld, f"bad reference ${{{expr}}}: {by_id[root].tool} outputs no field "
                   f"{'.'.join(parts[2:])!r}", hint=f"see `vltools describe {by_id[root].tool}`")
    return node, defs


def _order(steps: list[Step]) -> list[Step]:
    """Dependency order by `graphlib.TopologicalSorter`, file order among the steps that are ready."""
    index = {s.id: i for i, s in enumerate(steps)}
    sorter = graphlib.TopologicalSorter({s.id: s.deps for s in steps})
    try:
        sorter.prepare()
    except graphlib.CycleError as err:
        cycle = list(reversed(err.args[1][:-1]))  # graphlib lists predecessors first; "a -> b": a uses b
        start = min(range(len(cycle)), key=lambda k: index[cycle[k]])
        cycle = cycle[start:] + cycle[:start] + [cycle[start]]
        raise _err(cycle[0], None, f"dependency cycle: {' -> '.join(cycle)}",
                   hint="a step may only use the outputs of steps that do not use its own") from None
    ready: list[str] = []
    order: list[str] = []
    while sorter.is_active():
        ready.extend(sorter.get_ready())
        ready.sort(key=index.__getitem__)
        nxt = ready.pop(0)
        order.append(nxt)
        sorter.done(nxt)
    by_id = {s.id: s for s in steps}
    return [by_id[i] for i in order]
