"""The one error type a tool caller sees, with a subclass per code.

Each face (CLI, MCP, LangChain) maps `ToolError` in exactly one place:
CLI exit 2 + one stderr line, MCP ``isError`` (with the error as structured content),
LangChain ``ToolException``. A bug inside a tool reaches callers as `InternalError`.
A developer mistake (bad registry entry) is a `RegistryError`, raised loudly at load.
"""

from __future__ import annotations

from typing import Any


class ToolError(Exception):
    """A failure the caller can cause and fix: what was wrong and how to fix it.

    Args:
        code: the error code (subclasses fix it; ``NotFound("...")`` is the usual form).
        message: what was wrong, one line.
        hint: how to fix it (keyword only).
        details: machine-readable facts (ids, names, limits) that clients should not parse
            out of the message; JSON-ready values only.
    """

    code: str = "error"

    def __init__(
        self,
        code: str | None = None,
        message: str = "",
        *,
        hint: str | None = None,
        details: dict[str, Any] | None = None,
    ):
        # Subclasses fix the code and take the message alone: ``NotFound("...", hint=...)``;
        # ``ToolError("not_found", "...")`` names the code.
        if type(self) is not ToolError:
            if code is not None and message:
                raise TypeError(f"{type(self).__name__} takes the message only; pass hint=/details= as keywords")
            if code is not None:
                code, message = None, code
        self.code = code or type(self).code
        self.message = message
        self.hint = hint
        self.details: dict[str, Any] = dict(details or {})
        super().__init__(self.render())

    def render(self) -> str:
        """One line: ``code: message (hint: ...)``."""
        text = f"{self.code}: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text.replace("\n", " ")

    def to_dict(self) -> dict[str, Any]:
        """``{"code", "message", "hint", "details"}``: what the faces send as structured error content."""
        return {"code": self.code, "message": self.message, "hint": self.hint, "details": dict(self.details)}


class InvalidInput(ToolError):
    code = "invalid_input"


class NotFound(ToolError):
    code = "not_found"


class Unsupported(ToolError):
    code = "unsupported"


class TooLarge(ToolError):
    code = "too_large"


class Timeout(ToolError):
    code = "timeout"


class BackendUnavailable(ToolError):
    code = "backend"


class Conflict(ToolError):
    code = "conflict"


class Corrupt(ToolError):
    """Stored data is damaged (e.g. a collection file); the message names the file, the hint the repair."""

    code = "corrupt"


class InternalError(ToolError):
    """A bug in a tool (an unexpected exception or an output that breaks its schema), not the caller's fault."""

    code = "internal"


class RegistryError(RuntimeError):
    """A developer mistake in registry.yaml or a plugin: raised loudly, never shown as a tool result."""
