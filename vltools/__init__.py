"""vltools: capabilities from recent CLIP, retrieval, reranking, fact-verification and video
papers as typed tools, served as a Python API, an MCP server and LangChain/LangGraph tools.

    import vltools
    vltools.call("retrieve.bm25", {"collection": "docs", "query": "jet engines", "k": 5})

Importing this package loads no torch, transformers, open_clip or faiss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vltools.core.errors import ToolError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from vltools.core.context import ProgressCallback
    from vltools.core.registry import EntrySpec, Registry

__version__ = "0.1.0"
__all__ = ["ToolError", "as_langchain_tools", "call", "list_tools", "registry"]


def registry() -> Registry:
    """The process-wide registry: ``.entries`` (catalogue) and ``.describe(name)`` (schemas)."""
    from vltools.core.registry import get_registry

    return get_registry()


def list_tools(*, tag: str | None = None) -> list[EntrySpec]:
    """Catalogue entries, optionally filtered by tag."""
    return registry().list(tag)


def call(
    name: str,
    input: dict[str, Any] | BaseModel | None = None,  # noqa: A002 - the documented field name
    *,
    progress: ProgressCallback | None = None,
    timeout: float | None = None,
) -> BaseModel:
    """Validate ``input`` against tool ``name``'s schema, run it, return its validated output.

    Raises:
        ToolError: bad input, a missing collection or model, a timeout, ...
    """
    return registry().call(name, input, progress=progress, timeout=timeout)


def as_langchain_tools(*, names: list[str] | None = None, tags: list[str] | None = None) -> list[Any]:
    """Registry tools as LangChain ``StructuredTool``s (errors become ``ToolException``)."""
    from vltools.langchain_tools import as_langchain_tools as _impl

    return _impl(names=names, tags=tags)
