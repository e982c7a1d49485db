"""Shared plumbing of the graphs: the per-call `Context` travels in the LangGraph config, and
node progress goes both to ``ctx.progress`` (CLI bar, MCP notifications) and to LangGraph's
custom stream (``graph.stream(..., stream_mode="custom")``)."""

from __future__ import annotations

from typing import Any

from vltools.core.context import Context


def ctx_of(config: Any) -> Context:
    return config["configurable"]["vltools_ctx"]


def report(config: Any, done: float, total: float | None, node: str, note: str = "") -> None:
    """Progress of one graph node (also a cancellation point)."""
    ctx = ctx_of(config)
    ctx.progress(done, total, f"{node}: {note}" if note else node)
    try:
        from langgraph.config import get_stream_writer

        get_stream_writer()({"node": node, "done": done, "total": total, "note": note})
    except Exception:  # outside a streaming run there is no writer
        pass


def run_graph(graph: Any, state: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Invoke a compiled graph with ``ctx`` available to its nodes."""
    return graph.invoke(state, {"configurable": {"vltools_ctx": ctx}, "recursion_limit": 100})
