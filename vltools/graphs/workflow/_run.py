"""Running a workflow: one LangGraph node per step, checkpointed to SQLite, resumable.

Each step calls its tool through the context (``ctx.call``), so deadlines, cancellation and the
running registry reach every step, and reports progress with ``ctx.progress``. A run is recorded
in the ``vltools_runs`` table of the checkpoint database with its status: ``running``,
``completed``, ``failed`` (a step raised a `ToolError`) or ``interrupted`` (timeout, cancel,
Ctrl-C). A failed or interrupted run resumes from its first unfinished step without re-running
the steps that finished. Nothing here prints: the CLI turns progress and errors into lines.
"""

from __future__ import annotations

import copy
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, Field

from vltools.core.context import Context
from vltools.core.errors import InvalidInput, NotFound, Timeout, ToolError
from vltools.graphs.workflow import _refs
from vltools.graphs.workflow._spec import Step, Workflow, load_workflow

RunStatus = Literal["running", "completed", "failed", "interrupted"]
RUN_ID_PATTERN = r"^[0-9A-Za-z_\-]{1,64}$"


class WorkflowOutput(BaseModel):
    """What a finished (or already finished) run returns."""

    run_id: str = Field(description="The run's id (resume a failed or interrupted run with it).")
    workflow: str = Field(description="The workflow's name.")
    status: Literal["completed"] = Field(description="Always completed: failures and interruptions are errors.")
    steps: list[str] = Field(description="Step ids in run order.")
    steps_run: list[str] = Field(description="Steps run by this call (a resumed run skips finished ones).")
    outputs: dict[str, Any] = Field(description="Each step's output by step id (for_each steps: {items: [...]}).")


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {**a, **b}


def _concat(a: list[str], b: list[str]) -> list[str]:
    return a + b


class _State(TypedDict, total=False):
    outputs: Annotated[dict[str, Any], _merge]
    ran: Annotated[list[str], _concat]


def _on_a_registry(ctx: Context | None) -> Context:
    """``ctx`` (or a new context) running on a registry: the process one if none is set, for runs
    started from Python rather than through ``Registry.call``."""
    ctx = ctx or Context()
    if ctx.registry is None:
        from vltools.core.registry import get_registry

        ctx.registry = get_registry()
    return ctx


def resume_hint(run_id: str) -> str:
    return f"fix the cause, then resume with `vltools run --resume {run_id}` (or graph.workflow resume={run_id!r})"


def _with_run(err: ToolError, message: str, hint: str, **details: Any) -> ToolError:
    """The same error (same class and code) with the run named in its message, hint and details."""
    out = copy.copy(err)
    out.message, out.hint = message, hint
    out.details = {**(getattr(err, "details", None) or {}), **details}  # type: ignore[attr-defined]
    out.args = (out.render(),)
    return out


# -- the runs table ----------------------------------------------------------------------------------
def default_db(ctx: Context) -> Path:
    return ctx.settings.home / "runs.sqlite"


def _open_db(db: str | Path) -> sqlite3.Connection:
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(db), check_same_thread=False)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS vltools_runs (run_id TEXT PRIMARY KEY, file TEXT, workflow TEXT, "
        "signature TEXT, status TEXT, failed_step TEXT, created REAL, updated REAL)"
    )
    conn.commit()
    return conn


def _set_status(conn: sqlite3.Connection, run_id: str, status: RunStatus, step: str | None = None) -> None:
    conn.execute("UPDATE vltools_runs SET status=?, failed_step=?, updated=? WHERE run_id=?",
                 (status, step, time.time(), run_id))
    conn.commit()


def run_status(run_id: str, db: str | Path) -> tuple[RunStatus, str | None]:
    """(status, failed or interrupted step) of a recorded run; NotFound if there is none."""
    conn = _open_db(db)
    try:
        row = conn.execute("SELECT status, failed_step FROM vltools_runs WHERE run_id=?", (run_id,)).fetchone()
    finally:
        conn.close()
    if row is None:
        raise NotFound(f"no run {run_id!r} in {db}")
    return row[0], row[1]


# -- the graph ------------------------------------------------------------------------------------------
def _node(wf: Workflow, step: Step, index: int, ctx: Context) -> Any:
    total = len(wf.steps)
    label = f"step {index}/{total} {step.id}"

    def run(state: _State) -> dict[str, Any]:
        outputs = state.get("outputs", {})
        scope = {"outputs": outputs, "variables": wf.variables, "workflow_dir": wf.workflow_dir, "step_id": step.id}
        ctx.progress(index - 1, total, f"{label} ({step.tool})")
        items = [None] if step.for_each is None else _refs.substitute(step.for_each, item=None, **scope)
        if not isinstance(items, list):
            raise InvalidInput(f"step {step.id!r}: for_each must give a list, got {type(items).__name__}")
        results = []
        for n, item in enumerate(items):
            inp = _refs.substitute(step.inputs, item=item, **scope)
            try:
                out = ctx.call(step.tool, inp)
            except ToolError as err:
                raise _with_run(err, f"step {step.id!r} ({step.tool}) failed: {err.message}", err.hint or "",
                                step=step.id) from err
            results.append(out.model_dump(mode="json"))
            if step.for_each is not None:
                ctx.progress(index - 1 + (n + 1) / len(items), total, f"{label}: item {n + 1}/{len(items)} done")
        ctx.progress(index, total, f"{label} done")
        return {"outputs": {step.id: results[0] if step.for_each is None else {"items": results}}, "ran": [step.id]}

    return run


def compile_workflow(wf: Workflow, ctx: Context, checkpointer: Any = None) -> Any:
    """The workflow as a compiled LangGraph graph: one node per step, in dependency order."""
    from langgraph.graph import END, START, StateGraph

    g = StateGraph(_State)
    prev = START
    for i, step in enumerate(wf.steps, 1):
        g.add_node(step.id, _node(wf, step, i, ctx))
        g.add_edge(prev, step.id)
        prev = step.id
    g.add_edge(prev, END)
    return g.compile(checkpointer=checkpointer)


# -- runs ------------------------------------------------------------------------------------------------
class WorkflowRun:
    """A validated workflow with its run id recorded; `execute` runs (or resumes) it.

    Preparing first lets a caller know the run id before any step runs (the CLI prints the
    resume command when the run is interrupted by Ctrl-C).
    """

    def __init__(self, wf: Workflow, run_id: str, db: Path, *, resumed: bool) -> None:
        self.workflow, self.run_id, self.db, self.resumed = wf, run_id, db, resumed

    @classmethod
    def prepare(cls, path: str | Path | None = None, *, text: str | None = None, resume: str | None = None,
                db: str | Path | None = None, ctx: Context | None = None, registry: Any = None,
                reread_file: bool = True) -> WorkflowRun:
        """Validate the workflow and record a new run (or find the run to resume).

        Resuming without ``path``/``text`` re-reads the run's file when ``reread_file`` (and it still
        exists), else uses the text stored when the run started.

        Raises:
            NotFound: no such file, or no run ``resume`` in the database.
            InvalidInput: an invalid workflow, or one whose steps changed since the run started.
        """
        ctx = _on_a_registry(ctx)
        db_path = Path(db) if db else default_db(ctx)
        conn = _open_db(db_path)
        try:
            if resume:
                row = conn.execute("SELECT file, workflow, signature FROM vltools_runs WHERE run_id=?",
                                   (resume,)).fetchone()
                if row is None:
                    known = [r[0] for r in conn.execute(
                        "SELECT run_id FROM vltools_runs ORDER BY created DESC LIMIT 5")]
                    raise NotFound(f"no run {resume!r} in {db_path}",
                                   hint=f"recent runs: {', '.join(known) or 'none'}")
                if text is None and path is None:
                    path = row[0]  # names the workflow and its ${workflow_dir}
                    if not (reread_file and row[0] and Path(row[0]).is_file()):
                        text = row[1]  # the text stored when the run started (the file is not read)
                wf = load_workflow(path, text=text, registry=registry)
                if wf.signature != row[2]:
                    raise InvalidInput(f"the workflow's steps changed since run {resume} started",
                                       hint="start a new run (without resume)")
                return cls(wf, resume, db_path, resumed=True)
            wf = load_workflow(path, text=text, registry=registry)
            run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
            conn.execute("INSERT INTO vltools_runs VALUES (?,?,?,?,?,?,?,?)",
                         (run_id, str(Path(path).resolve()) if path else None, wf.text, wf.signature, "running",
                          None, time.time(), time.time()))
            conn.commit()
            return cls(wf, run_id, db_path, resumed=False)
        finally:
            conn.close()

    def execute(self, ctx: Context) -> WorkflowOutput:
        """Run the steps not yet finished, checkpointing after each.

        Raises:
            Timeout: the run was cancelled or ran out of time (status ``interrupted``).
            ToolError: a step failed (status ``failed``); the message names the run and the step.
            KeyboardInterrupt: re-raised after the run is marked ``interrupted`` (other exceptions: ``failed``).
        """
        from langgraph.checkpoint.sqlite import SqliteSaver

        wf, run_id = self.workflow, self.run_id
        conn = _open_db(self.db)
        try:
            graph = compile_workflow(wf, ctx, SqliteSaver(conn))
            config = {"configurable": {"thread_id": run_id}, "recursion_limit": max(25, 2 * len(wf.steps) + 5)}
            args: Any = {"outputs": {}, "ran": []}
            before: set[str] = set()
            if self.resumed:
                snap = graph.get_state(config)
                if snap.values and not snap.next:
                    ctx.logger.info("workflow run %s already completed; nothing to resume", run_id)
                    _set_status(conn, run_id, "completed")
                    return self._result("completed", [], snap.values.get("outputs", {}))
                if snap.values:
                    args, before = None, set(snap.values.get("ran", []))
            _set_status(conn, run_id, "running")
            try:
                final = graph.invoke(args, config)
            except ToolError as err:
                snap = graph.get_state(config)
                step = snap.next[0] if snap.next else None
                status: RunStatus = "interrupted" if isinstance(err, Timeout) else "failed"
                _set_status(conn, run_id, status, step)
                what = "interrupted" if status == "interrupted" else "failed"
                hint = (err.hint + "; " if err.hint else "") + resume_hint(run_id)
                raise _with_run(err, f"run {run_id} {what} at step {step!r}: {err.message}", hint,
                                run_id=run_id, failed_step=step, status=status) from err
            except BaseException as err:  # Ctrl-C (interrupted) or a bug (failed): never left "running"
                snap = graph.get_state(config)
                status = "failed" if isinstance(err, Exception) else "interrupted"
                _set_status(conn, run_id, status, snap.next[0] if snap.next else None)
                raise
            _set_status(conn, run_id, "completed")
            ran = [s for s in final.get("ran", []) if s not in before]
            return self._result("completed", ran, final.get("outputs", {}))
        finally:
            conn.close()

    def _result(self, status: Literal["completed"], ran: list[str], outputs: dict[str, Any]) -> WorkflowOutput:
        wf = self.workflow
        return WorkflowOutput(run_id=self.run_id, workflow=wf.name, status=status, steps=[s.id for s in wf.steps],
                              steps_run=ran, outputs=outputs)


def run_workflow(path: str | Path | None = None, *, text: str | None = None, resume: str | None = None,
                 db: str | Path | None = None, ctx: Context | None = None) -> WorkflowOutput:
    """Run (or resume) a workflow with SQLite checkpoints (Python API; the CLI and `graph.workflow` use it too).

    Raises:
        ToolError: an invalid workflow (before anything runs), or a failing/interrupted step; then
            ``details`` has ``run_id`` and ``failed_step`` and the run can be resumed.
    """
    ctx = _on_a_registry(ctx)
    run = WorkflowRun.prepare(path, text=text, resume=resume, db=db, ctx=ctx)
    return run.execute(ctx)
