"""Scripted multi-step workflows: YAML files of registry tool steps, run as a checkpointed LangGraph graph.

- `_yaml`: bounded YAML loading (size, aliases, expanded size: no "billion laughs").
- `_spec`: pydantic specs of the file (unknown keys rejected), reference and type checks against
  each tool's schemas, dependency order with `graphlib`.
- `_refs`: ``${...}`` references, typed from JSON schemas and resolved at run time.
- `_run`: the LangGraph graph, SQLite checkpoints, run statuses, resume.
- `_tool`: the registered ``graph.workflow`` tool (MCP clients run workflows through it).

The CLI (``vltools run FILE.yaml [--resume RUN_ID]``) prints progress and the resume command;
nothing here prints.
"""

from vltools.graphs.workflow._run import WorkflowOutput, WorkflowRun, compile_workflow, run_status, run_workflow
from vltools.graphs.workflow._spec import Step, StepSpec, Workflow, WorkflowSpec, load_workflow
from vltools.graphs.workflow._tool import WorkflowInput, workflow
from vltools.graphs.workflow._yaml import load_yaml

__all__ = [
    "Step",
    "StepSpec",
    "Workflow",
    "WorkflowInput",
    "WorkflowOutput",
    "WorkflowRun",
    "WorkflowSpec",
    "compile_workflow",
    "load_workflow",
    "load_yaml",
    "run_status",
    "run_workflow",
    "workflow",
]
