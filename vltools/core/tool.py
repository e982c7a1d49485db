"""The ``@tool`` decorator: a function ``(Input, Context) -> Output`` becomes a registered `Tool`."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from vltools.core.errors import RegistryError

# Every decorated function in imported modules, by tool name. registry.yaml must match it.
DECORATED: dict[str, Tool] = {}


@dataclass(frozen=True)
class Tool:
    """A callable plus the schema metadata the faces read."""

    name: str
    fn: Callable[..., Any]
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    module: str

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.fn) or ""

    @property
    def summary_line(self) -> str:
        """The docstring's first paragraph on one line (registry.yaml's summary; a test keeps them equal)."""
        return " ".join(self.doc.split("\n\n", 1)[0].split())

    @property
    def body(self) -> str:
        """The docstring after its first paragraph: what clients get after the catalogue's summary."""
        parts = self.doc.split("\n\n", 1)
        return parts[1].strip() if len(parts) > 1 else ""

    def description(self, summary: str) -> str:
        """``summary`` (the catalogue's), then the docstring after its first paragraph; a docstring that does
        not start with the summary (a plugin's) follows in full, so nothing is said twice or lost."""
        rest = self.body if self.summary_line == " ".join(summary.split()) else self.doc.strip()
        return summary.strip() + ("\n\n" + rest if rest else "")


def tool(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn(inp: XInput, ctx: Context) -> XOutput`` as tool ``name`` (``family.verb``)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(fn)
        params = list(inspect.signature(fn).parameters)
        if not params:
            raise RegistryError(f"tool {name}: {fn.__qualname__} must take (inp, ctx)")
        inp, out = hints.get(params[0]), hints.get("return")
        for what, model in (("input", inp), ("output", out)):
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise RegistryError(f"tool {name}: {what} annotation of {fn.__qualname__} must be a pydantic model")
        if inp.model_config.get("extra") != "forbid":  # type: ignore[union-attr]
            raise RegistryError(
                f"tool {name}: input model {inp.__qualname__} must reject unknown fields; "  # type: ignore[union-attr]
                "derive it from vltools.schemas.ToolInput (model_config extra='forbid')"
            )
        prior = DECORATED.get(name)
        if prior is not None and prior.fn.__qualname__ != fn.__qualname__:
            raise RegistryError(f"tool {name} is defined twice: {prior.module} and {fn.__module__}")
        t = Tool(name=name, fn=fn, input_model=inp, output_model=out, module=fn.__module__)
        DECORATED[name] = t
        fn.__vltool__ = t  # type: ignore[attr-defined]
        return fn

    return decorate
