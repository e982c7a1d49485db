"""The registry: the catalogue in ``registry.yaml`` (plus plugins) joined lazily to the code.

A tool's module is imported only when the tool is first called or described, so listing
the catalogue never imports torch. Every call validates input and output and runs under
a deadline.
"""

from __future__ import annotations

import difflib
import importlib
import json
import logging
import threading
import time
import weakref
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vltools.core.cancel import stop_signal
from vltools.core.context import Context, ProgressCallback
from vltools.core.errors import InternalError, InvalidInput, NotFound, RegistryError, Timeout, ToolError
from vltools.core.limits import check_input_shape
from vltools.core.tool import Tool
from vltools.core.vocab import DataKind, Need, Tag

PLUGIN_GROUP = "vltools.plugins"
STOP_GRACE_S = 2.0  # how long a caller waits for a timed-out or cancelled tool to stop
_POLL_S = 0.05  # how often a waiting caller looks at the cancel flag

log = logging.getLogger("vltools.registry")


class EntrySpec(BaseModel):
    """One catalogue entry of registry.yaml (vocabularies: `vltools.core.vocab`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
    entry: str = Field(pattern=r"^[\w.]+:\w+$", description="module:function")
    kind: Literal["tool", "graph", "agent"] = "tool"
    papers: list[str] = Field(default_factory=list)
    summary: str = Field(min_length=1, description="One line; the tool's docstring starts with it.")
    tags: list[Tag] = Field(default_factory=list)
    needs: list[Need] = Field(default_factory=list, description="Backends/extras the tool needs.")
    examples: list[str] = Field(default_factory=list, description="Example requests (for the router).")
    consumes: list[DataKind] = Field(default_factory=list, description="Kinds of data its input takes.")
    produces: list[DataKind] = Field(default_factory=list, description="Kinds of data its output holds.")
    effects: Literal["read_only", "writes", "destructive"] = Field(
        description="What a call does to stored data: read_only, writes (adds/creates), "
        "destructive (deletes/overwrites)."
    )
    idempotent: bool = Field(False, description="Repeating the call with the same input has no further effect.")
    fidelity: Literal["faithful", "adapted", "baseline"] | None = Field(
        None,
        description="For entries citing papers: faithful (the method as published), adapted (the method with "
        "stated changes), baseline (the baseline the papers improve on).",
    )
    fidelity_note: str | None = Field(None, description="One line: what differs from the paper(s).")
    source: str = Field("vltools", description="Which registry file declared it.")

    @model_validator(mode="after")
    def _fidelity_for_papers(self) -> EntrySpec:
        if self.papers and (self.fidelity is None or not (self.fidelity_note or "").strip()):
            raise ValueError(f"{self.name} cites {', '.join(self.papers)}: give fidelity and a one-line fidelity_note")
        if not self.papers and (self.fidelity is not None or self.fidelity_note is not None):
            raise ValueError(f"{self.name} cites no paper: fidelity and fidelity_note do not apply")
        if self.fidelity_note is not None and "\n" in self.fidelity_note.strip():
            raise ValueError(f"{self.name}: fidelity_note is one line")
        for field in ("tags", "needs", "consumes", "produces"):
            values = getattr(self, field)
            if len(set(values)) != len(values):
                raise ValueError(f"{self.name}: {field} lists a value twice")
        return self

    @property
    def mcp_name(self) -> str:
        return self.name.replace(".", "_")


class _RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = 1
    tools: list[EntrySpec]


def paper_titles() -> dict[str, str]:
    """Paper id -> title, from the copy of papers.md shipped in the package."""
    return json.loads(resources.files("vltools").joinpath("papers.json").read_text())


def format_validation(name: str, err: ValidationError) -> str:
    """One line naming each invalid field (at most five), for every face's error message."""
    parts = []
    for e in err.errors()[:5]:
        loc = ".".join(str(x) for x in e["loc"]) or "input"
        parts.append(f"{loc}: {e['msg']}")
    more = f" (+{err.error_count() - 5} more)" if err.error_count() > 5 else ""
    return f"invalid input for {name}: " + "; ".join(parts) + more


class Registry:
    """Entries by name; tools resolved on first use."""

    def __init__(self, entries: list[EntrySpec]):
        self.entries: dict[str, EntrySpec] = {}
        for e in entries:
            if e.name in self.entries:
                raise RegistryError(f"{e.name} declared twice ({self.entries[e.name].source} and {e.source})")
            self.entries[e.name] = e
        self._tools: dict[str, Tool] = {}
        self._lock = threading.Lock()

    # -- loading ----------------------------------------------------------------------
    @staticmethod
    def read_file(text: str, source: str) -> list[EntrySpec]:
        try:
            raw = yaml.safe_load(text) or {}
            raw["tools"] = raw.get("tools") or []
            data = _RegistryFile.model_validate(raw)
        except (ValidationError, yaml.YAMLError, AttributeError) as err:
            raise RegistryError(f"bad registry file {source}: {err}") from err
        return [e.model_copy(update={"source": source}) for e in data.tools]

    @classmethod
    def load(cls, *, plugins: bool = True) -> Registry:
        text = resources.files("vltools").joinpath("registry.yaml").read_text()
        entries = cls.read_file(text, "vltools")
        if plugins:
            for ep in metadata.entry_points(group=PLUGIN_GROUP):
                target = ep.load()
                path = Path(target() if callable(target) else target)
                entries += cls.read_file(path.read_text(), f"plugin:{ep.name}")
        return cls(entries)

    # -- lookup -----------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self.entries)

    def spec(self, name: str) -> EntrySpec:
        if name in self.entries:
            return self.entries[name]
        by_mcp = {e.mcp_name: e for e in self.entries.values()}
        if name in by_mcp:
            return by_mcp[name]
        close = difflib.get_close_matches(name, self.names(), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "run `vltools list` to see the tools"
        raise NotFound(f"no tool named {name!r}", hint=hint)

    def list(self, tag: str | None = None) -> list[EntrySpec]:
        return [e for e in sorted(self.entries.values(), key=lambda e: e.name) if tag is None or tag in e.tags]

    def get(self, name: str) -> Tool:
        """Resolve a tool (imports its module on first use)."""
        spec = self.spec(name)
        with self._lock:
            if spec.name in self._tools:
                return self._tools[spec.name]
            module, _, attr = spec.entry.partition(":")
            try:
                fn = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as err:
                raise RegistryError(f"{spec.name}: entry {spec.entry} does not resolve: {err}") from err
            t = getattr(fn, "__vltool__", None)
            if not isinstance(t, Tool) or t.name != spec.name:
                raise RegistryError(f"{spec.name}: {spec.entry} is not decorated with @tool({spec.name!r})")
            self._tools[spec.name] = t
            return t

    def describe(self, name: str) -> dict[str, Any]:
        """Schemas, papers (with titles), tags and needs of one entry."""
        spec = self.spec(name)
        t = self.get(spec.name)
        titles = paper_titles()
        return {
            "name": spec.name,
            "mcp_name": spec.mcp_name,
            "kind": spec.kind,
            "summary": spec.summary,
            "description": t.body,
            "papers": [{"id": p, "title": titles.get(p, "?")} for p in spec.papers],
            "effects": spec.effects,
            "idempotent": spec.idempotent,
            "fidelity": spec.fidelity,
            "fidelity_note": spec.fidelity_note,
            "tags": spec.tags,
            "needs": spec.needs,
            "consumes": spec.consumes,
            "produces": spec.produces,
            "examples": spec.examples,
            "input_schema": t.input_model.model_json_schema(),
            "output_schema": t.output_model.model_json_schema(),
        }

    # -- calling ----------------------------------------------------------------------
    def validate_input(self, name: str, inp: Any) -> BaseModel:
        t = self.get(name)
        check_input_shape(inp)  # depth, lone surrogates, NaN: before anything recurses into it
        # Outputs of one tool feed the next without glue: models anywhere in the input
        # (e.g. a retriever's hits given as a reranker's passages) are validated as data.
        inp = _plain(inp)
        if inp is None:
            inp = {}
        if not isinstance(inp, dict):
            raise InvalidInput(f"input for {t.name} must be a JSON object, got {type(inp).__name__}")
        try:
            return t.input_model.model_validate(inp)
        except ValidationError as err:
            raise InvalidInput(
                format_validation(t.name, err), hint=f"see `vltools describe {t.name}` for the schema"
            ) from None

    def call(
        self,
        name: str,
        inp: Any = None,
        *,
        ctx: Context | None = None,
        progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> BaseModel:
        """Validate ``inp``, run the tool under a deadline, validate and return its output.

        The context (given or made here) gets this registry, so the tool's nested
        ``ctx.call``s run here too. A top-level call (no deadline on ``ctx`` yet) runs in a worker
        thread under ``timeout`` (default settings.timeout_s); a nested call runs inline under the
        outer deadline. A bare exception from the tool becomes `InternalError`.
        """
        t = self.get(name)
        model = self.validate_input(t.name, inp)
        if ctx is None:
            ctx = Context(progress=progress)
        ctx.tool_name = t.name
        ctx.registry = self
        nested = ctx.deadline is not None
        if not nested:
            limit = timeout if timeout is not None else ctx.settings.timeout_s
            ctx.deadline = time.monotonic() + limit
        out = _invoke(t, model, ctx) if nested else _run_with_deadline(t, model, ctx)
        return _validate_output(t, out)


def _plain(value: Any) -> Any:
    """Pydantic models (at any depth of dicts/lists) as plain data."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _validate_output(t: Tool, out: Any) -> BaseModel:
    try:
        if isinstance(out, t.output_model):
            return t.output_model.model_validate(out.model_dump())
        if isinstance(out, BaseModel):
            out = out.model_dump()
        return t.output_model.model_validate(out)
    except ValidationError as err:  # a bug in the tool, not the caller's fault
        raise InternalError(
            f"{t.name} produced invalid output: {err}", hint="this is a bug in the tool, not in your input"
        ) from err


def _invoke(t: Tool, model: BaseModel, ctx: Context) -> Any:
    """Run the tool in this thread with ``ctx``'s stop signal; a bug becomes `InternalError`."""
    try:
        with stop_signal(ctx.should_stop):
            return t.fn(model, ctx)
    except (ToolError, RegistryError):
        raise
    except Exception as err:
        log.debug("tool %s raised %s", t.name, type(err).__name__, exc_info=True)
        raise InternalError(
            f"{t.name} failed unexpectedly: {type(err).__name__}: {err}",
            hint="this is a bug in the tool, not in your input; please report it (set VLTOOLS_LOG_LEVEL=DEBUG "
            "or run the CLI with --debug for the traceback)",
            details={"tool": t.name, "exception": type(err).__name__},
        ) from err


# Worker threads still running a tool (e.g. abandoned after a timeout): the CLI waits for them
# or leaves with os._exit, because interpreter shutdown under a thread inside torch aborts.
_WORKERS: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


def running_workers() -> list[threading.Thread]:
    """Tool worker threads of this process that are still alive."""
    return [th for th in list(_WORKERS) if th.is_alive()]


def _run_with_deadline(t: Tool, model: BaseModel, ctx: Context) -> Any:
    """Run in a worker thread; at the deadline or on cancel, signal the tool to stop and wait briefly.

    The tool's backends poll ``ctx.should_stop`` (between tokens, batches, progress calls), so
    the worker normally ends, releasing model locks, within `STOP_GRACE_S`; the caller then
    raises `Timeout`. A caller interrupted itself (KeyboardInterrupt) cancels the tool the same way.
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["out"] = _invoke(t, model, ctx)
        except BaseException as err:  # re-raised in the caller's thread
            box["err"] = err
        finally:
            done.set()

    th = threading.Thread(target=target, name=f"vltools:{t.name}", daemon=True)
    _WORKERS.add(th)
    th.start()
    try:
        while not done.wait(_POLL_S if ctx.deadline is None else max(0.0, min(_POLL_S, ctx.remaining() or 0.0))):
            if ctx.should_stop():
                break
    except BaseException:  # KeyboardInterrupt / SystemExit in the caller's thread
        ctx.cancel()
        done.wait(STOP_GRACE_S)
        raise
    stopped_itself = done.is_set() and isinstance(box.get("err"), Timeout) and ctx.should_stop()
    if not done.is_set() or stopped_itself:
        # The same answer whether the worker noticed the stop before or after this thread woke up.
        timed_out = not ctx.cancelled.is_set()
        ctx.cancel()
        stopped = done.wait(STOP_GRACE_S)
        if not stopped:
            log.info("%s did not stop within %.1fs of its cancellation; abandoning its thread", t.name, STOP_GRACE_S)
        if timed_out:
            raise Timeout(
                f"{t.name} ran past its time limit",
                hint="raise the timeout (--timeout or VLTOOLS_TIMEOUT_S) or pass a smaller input",
                details={"tool": t.name, "stopped": stopped},
            )
        raise Timeout(
            f"{t.name} was cancelled",
            hint="the caller cancelled the call",
            details={"tool": t.name, "stopped": stopped},
        )
    if "err" in box:
        raise box["err"]
    return box.get("out")


_REGISTRY: Registry | None = None
_REG_LOCK = threading.Lock()


def get_registry() -> Registry:
    """The process-wide registry (vltools' own entries plus plugins)."""
    global _REGISTRY
    with _REG_LOCK:
        if _REGISTRY is None:
            _REGISTRY = Registry.load()
        return _REGISTRY
