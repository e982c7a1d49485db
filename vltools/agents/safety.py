"""What an agent may run without asking: the registry's `effects` applied to one tool call.

- ``destructive`` entries run only with an explicit ``confirm``.
- ``writes`` entries write only into the collection or folder the request (or the caller's
  explicit inputs) named as the place to write, never into a folder the request reads from.
- An agent never calls itself.

Shared by `agent.ask`'s plans and the guard node of the tool-calling loop.
"""

from __future__ import annotations

from typing import Any

from vltools.agents.parse import Parsed
from vltools.agents.slots import _fuzzy, field_role
from vltools.core.registry import get_registry

AGENT_KINDS = ("agent",)


def check_call(name: str, args: dict[str, Any], parsed: Parsed, *, confirm: bool,
               given: dict[str, Any] | None = None) -> str:
    """'' when the call may run; otherwise a one-line reason it may not (without ``confirm`` / out of bounds)."""
    reg = get_registry()
    spec = reg.spec(name)
    if spec.kind in AGENT_KINDS:
        return f"{name} is an agent; an agent does not call agents"
    if spec.effects == "destructive" and not confirm:
        return f"{name} is destructive (it deletes or overwrites stored data): it runs only with confirm: true"
    if spec.effects != "writes":
        return ""
    given = given or {}
    props = reg.get(name).input_model.model_json_schema().get("properties", {})
    sources = {_norm(p.text) for p in parsed.paths if p.role == "source"}
    dests = {_norm(p.text) for p in parsed.paths if p.role == "dest"}
    for f, prop in props.items():
        if f not in args or args[f] in (None, "") or (f in given and given[f] == args[f]):
            continue  # the caller's own input is what they asked for
        role = field_role(f, prop)
        value = str(args[f])
        if role.kind == "out_dir":
            if _norm(value) in sources:
                return f"{name} would write into {value!r}, a folder the request reads from"
            if _norm(value) not in dests:
                return f"{name} would write into {value!r}, which the request does not name as the place to write"
        elif role.kind == "collection":
            named = [n for n in parsed.names if n == value or _fuzzy(n, [value])]
            if not named:
                return f"{name} would write into collection {value!r}, which the request does not name"
    return ""


def _norm(path: str) -> str:
    return path.rstrip("/") or "/"
