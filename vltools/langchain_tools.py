"""The LangChain/LangGraph face: registry tools as ``StructuredTool``s.

    tools = vltools.as_langchain_tools(tags=["retrieval"])
    graph_builder.add_node("tools", ToolNode(tools))

- ``name`` is the MCP-style name (``retrieve_bm25``): chat-model tool names cannot contain dots.
- ``args_schema`` is the tool's pydantic input model, so the model sees the same JSON Schema as
  MCP clients; ``description`` is the catalogue summary plus the tool's docstring.
- A `ToolError` (a bug inside a tool included: the registry's `InternalError`) becomes a
  ``ToolException`` whose text is the one-line message plus the error's ``details`` as JSON when
  it has any; invalid arguments are answered with the registry's message naming the field; both
  with ``handle_tool_error``/``handle_validation_error`` set, so a ``ToolNode`` returns a
  ``ToolMessage`` with ``status="error"`` and the graph goes on.
- Nested calls of a tool run on the registry the tools were built from.
- The result is the output model as a JSON-ready dict (``response_format="content"``), or with
  ``response_format="content_and_artifact"`` the JSON text as content and the output model as
  the message's artifact.
- Inside a LangGraph run, progress goes to the custom stream (``stream_mode="custom"``) as
  ``{"tool": name, "done": ..., "total": ..., "note": ...}``.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import threading
from typing import Any, Literal

from langchain_core.tools import StructuredTool, ToolException
from pydantic import ValidationError

from vltools.core.errors import InvalidInput, ToolError
from vltools.core.registry import EntrySpec, Registry, format_validation, get_registry
from vltools.core.tool import Tool

log = logging.getLogger("vltools.langchain")

MAX_DESCRIPTION_CHARS = 1024  # OpenAI-style APIs reject longer tool descriptions


def _format_validation(name: str, err: ValidationError) -> str:
    return InvalidInput(format_validation(name, err), hint="fix the named argument and call again").render()


def _progress_sink(name: str) -> Any:
    """A progress callback writing to LangGraph's custom stream, or None outside a graph run."""
    try:
        from langgraph.config import get_stream_writer

        writer = get_stream_writer()
    except Exception:  # not inside a LangGraph run (or langgraph missing)
        return None

    # The writer reads the run's config from context variables, and the registry runs the tool
    # in a thread of its own: call it inside a copy of this (the run's) context.
    run_ctx = contextvars.copy_context()
    lock = threading.Lock()

    def progress(done: float, total: float | None, note: str) -> None:
        with lock:
            run_ctx.run(writer, {"tool": name, "done": done, "total": total, "note": note})

    return progress


def _description(spec: EntrySpec, t: Tool) -> str:
    text = t.description(spec.summary)
    if len(text) > MAX_DESCRIPTION_CHARS:
        text = text[: MAX_DESCRIPTION_CHARS - 3].rstrip() + "..."
    return text


def make_tool(
    spec: EntrySpec,
    *,
    registry: Registry | None = None,
    response_format: Literal["content", "content_and_artifact"] = "content",
) -> StructuredTool:
    """One registry entry as a ``StructuredTool``."""
    reg = registry or get_registry()
    t = reg.get(spec.name)
    name = spec.name

    def invoke(kwargs: dict[str, Any], sink: Any) -> Any:
        try:
            out = reg.call(name, kwargs, progress=sink)
        except ToolError as err:
            text = err.render()
            if err.details:
                text += " details: " + json.dumps(err.details, ensure_ascii=False, default=str)
            raise ToolException(text) from err
        data = out.model_dump(mode="json")
        if response_format == "content_and_artifact":
            return json.dumps(data, ensure_ascii=False), out
        return data

    def run(**kwargs: Any) -> Any:
        return invoke(kwargs, _progress_sink(name))

    async def arun(**kwargs: Any) -> Any:
        # The stream writer is looked up here, in the run's context; the tool runs in a thread.
        return await asyncio.to_thread(invoke, kwargs, _progress_sink(name))

    return StructuredTool(
        name=spec.mcp_name,
        description=_description(spec, t),
        args_schema=t.input_model,
        func=run,
        coroutine=arun,
        response_format=response_format,
        handle_tool_error=True,
        handle_validation_error=lambda err: _format_validation(name, err),
        metadata={"vltools_name": spec.name, "papers": spec.papers, "tags": spec.tags},
        tags=list(spec.tags),
    )


def as_langchain_tools(
    names: list[str] | None = None,
    tags: list[str] | None = None,
    *,
    registry: Registry | None = None,
    response_format: Literal["content", "content_and_artifact"] = "content",
) -> list[StructuredTool]:
    """Registry tools as ``StructuredTool``s.

    Args:
        names: registry names (``retrieve.bm25``) or MCP-style names (``retrieve_bm25``);
            an unknown name raises `NotFound` with close matches.
        tags: keep entries carrying any of these tags (combined with ``names`` as a union).
        registry: a registry other than the process one (tests, plugins).
        response_format: ``content`` (dict result) or ``content_and_artifact``.
    """
    reg = registry or get_registry()
    if names is None and tags is None:
        specs = reg.list()
    else:
        chosen: dict[str, EntrySpec] = {}
        for n in names or []:
            s = reg.spec(n)
            chosen[s.name] = s
        for tag in tags or []:
            for s in reg.list(tag):
                chosen[s.name] = s
        specs = [chosen[k] for k in sorted(chosen)]
    return [make_tool(s, registry=reg, response_format=response_format) for s in specs]
