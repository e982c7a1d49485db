"""`graph.workflow`: run a YAML workflow through any face (MCP clients included)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vltools.core import Context, tool
from vltools.core.errors import InvalidInput
from vltools.graphs.workflow._run import RUN_ID_PATTERN, WorkflowOutput, WorkflowRun
from vltools.graphs.workflow._yaml import MAX_BYTES


class WorkflowInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str | None = Field(None, description="Path of a workflow YAML file (under the allowed roots).")
    text: str | None = Field(None, max_length=MAX_BYTES, description="The workflow as YAML text, instead of a file.")
    resume: str | None = Field(
        None, pattern=RUN_ID_PATTERN,
        description="Run id of a failed or interrupted run: continue it from its first unfinished step "
        "(file/text may be omitted: the run's own workflow is used).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> WorkflowInput:
        if self.file is not None and self.text is not None:
            raise ValueError("give either file or text, not both")
        if self.file is None and self.text is None and self.resume is None:
            raise ValueError("give a workflow file or text, or resume with a run id")
        return self


@tool("graph.workflow")
def workflow(inp: WorkflowInput, ctx: Context) -> WorkflowOutput:
    """Run a YAML workflow of tool steps - checkpointed to SQLite, resumable from its first unfinished step.

    Each step names a tool and its inputs, which may refer to earlier steps' outputs
    (``${search.output.hits}``) or to workflow variables. The workflow is validated before any step
    runs. A failing or interrupted run raises an error whose details carry ``run_id``; call again
    with ``resume`` set to it. Checkpoints live in ``VLTOOLS_HOME/runs.sqlite``.
    """
    path: Any = None
    if inp.file is not None:
        from vltools.core.paths import resolve_under_roots

        path = resolve_under_roots(inp.file, ctx.settings, what="workflow file")
    registry = getattr(ctx, "registry", None)  # the running registry, where the context carries it
    if registry is None:
        from vltools.core.registry import get_registry

        registry = get_registry()
    if inp.text is not None and not inp.text.strip():
        raise InvalidInput("the workflow text is empty", hint="pass YAML with a 'steps' list")
    # A resumed run uses its stored text unless a file or text is given: a client never makes the
    # server read a path it did not name (and that was not checked against the roots).
    run = WorkflowRun.prepare(path, text=inp.text, resume=inp.resume, ctx=ctx, registry=registry, reread_file=False)
    return run.execute(ctx)
