"""The tool contract: ``@tool``, `Context`, `ToolError`, settings, shared types and the registry."""

from vltools.core.context import Context
from vltools.core.errors import (
    BackendUnavailable,
    Conflict,
    Corrupt,
    InternalError,
    InvalidInput,
    NotFound,
    RegistryError,
    Timeout,
    TooLarge,
    ToolError,
    Unsupported,
)
from vltools.core.registry import Registry
from vltools.core.settings import Settings, get_settings
from vltools.core.tool import Tool, tool

__all__ = [
    "BackendUnavailable",
    "Conflict",
    "Context",
    "Corrupt",
    "InternalError",
    "InvalidInput",
    "NotFound",
    "Registry",
    "RegistryError",
    "Settings",
    "Timeout",
    "Tool",
    "ToolError",
    "TooLarge",
    "Unsupported",
    "get_settings",
    "tool",
]
