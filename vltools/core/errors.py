"""The one error type a tool caller sees, with a subclass per code.

Each face (CLI, MCP, LangChain) maps `ToolError` in exactly one place:
CLI exit 2 + one stderr line, MCP ``isError``, LangChain ``ToolException``.
A developer mistake (bad registry entry) is a `RegistryError`, raised loudly at load.
"""

from __future__ import annotations


class ToolError(Exception):
    """A failure the caller can cause and fix: what was wrong and how to fix it."""

    code: str = "error"

    def __init__(self, code: str | None = None, message: str = "", hint: str | None = None):
        # Subclasses fix the code; ``ToolError("not_found", "...")`` also works.
        if code is not None and not message and type(self) is not ToolError:
            code, message = None, code
        self.code = code or type(self).code
        self.message = message
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        """One line: ``code: message (hint: ...)``."""
        text = f"{self.code}: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text.replace("\n", " ")

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "hint": self.hint}


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


class RegistryError(RuntimeError):
    """A developer mistake in registry.yaml or a plugin: raised loudly, never shown as a tool result."""
