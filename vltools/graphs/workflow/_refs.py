"""``${...}`` references in workflow inputs: finding them, typing them from JSON schemas, resolving them.

A value that is exactly ``${step.output.path}`` takes the referenced value with its type; inside a
longer string it is interpolated as text. Roots: ``inputs`` (workflow variables), ``item`` (the
current ``for_each`` item), ``workflow_dir`` (the YAML file's folder) and step ids.
"""

from __future__ import annotations

import json
import re
from typing import Any

from vltools.core.errors import InvalidInput

REF = re.compile(r"\$\{([^}]*)\}")
RESERVED = frozenset({"inputs", "item", "workflow_dir"})


def refs(value: Any) -> list[tuple[str, bool]]:
    """References in a value: (expression, whole) — whole when the value is exactly one reference."""
    if isinstance(value, str):
        found = REF.findall(value)
        whole = len(found) == 1 and value.strip() == "${" + found[0] + "}"
        return [(f.strip(), whole) for f in found]
    if isinstance(value, dict):
        return [r for v in value.values() for r in refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in refs(v)]
    return []


def parts_of(expr: str) -> list[str]:
    return [p for p in expr.split(".") if p != ""]


# -- JSON-schema typing of references ------------------------------------------------------------------
def deref(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = defs.get(node["$ref"].split("/")[-1], {})
    return node


def schema_at(schema: dict[str, Any], path: list[str], defs: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema of ``path`` inside ``schema`` (None: no such field; {} = unknown/any)."""
    node = deref(schema, defs)
    for part in path:
        node = deref(node, defs)
        if "anyOf" in node:
            opts = [deref(o, defs) for o in node["anyOf"] if o.get("type") != "null"]
            node = opts[0] if len(opts) == 1 else {}
        if not node:
            return {}
        if part.isdigit() and node.get("type") == "array":
            node = node.get("items", {})
        elif node.get("type") == "object" or "properties" in node:
            props = node.get("properties")
            if props is None:  # a free-form mapping
                return {}
            if part not in props:  # declared fields are authoritative (shared types allow extras)
                return None
            node = props[part]
        else:
            return None
    return deref(node, defs)


def types(node: dict[str, Any] | None, defs: dict[str, Any]) -> set[str]:
    """JSON types a schema node admits (empty: any)."""
    if not node:
        return set()
    node = deref(node, defs)
    if "anyOf" in node:
        out: set[str] = set()
        for o in node["anyOf"]:
            t = types(o, defs)
            if not t:
                return set()
            out |= t
        return out
    t = node.get("type")
    if isinstance(t, list):
        return set(t)
    return {t} if t else set()


def compatible(src: set[str], dst: set[str]) -> bool:
    if not src or not dst:
        return True
    if "integer" in src:
        src = src | {"number"}
    return bool(src & dst) or ("null" in src and len(src) > 1 and bool((src - {"null"}) & dst))


# -- resolving at run time --------------------------------------------------------------------------
def lookup(expr: str, *, outputs: dict[str, Any], variables: dict[str, Any], workflow_dir: str, item: Any,
           step_id: str) -> Any:
    parts = parts_of(expr)
    root = parts[0]
    if root == "workflow_dir":
        return workflow_dir
    if root == "inputs":
        cur, rest = variables[parts[1]], parts[2:]
    elif root == "item":
        cur, rest = item, parts[1:]
    else:
        cur, rest = outputs[root], parts[2:]
    for part in rest:
        try:
            cur = cur[int(part)] if isinstance(cur, list) else cur[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise InvalidInput(f"step {step_id!r}: ${{{expr}}} has no value at {part!r}") from None
    return cur


def substitute(value: Any, **scope: Any) -> Any:
    """``value`` with every reference resolved (see `lookup` for ``scope``)."""
    if isinstance(value, str):
        found = refs(value)
        if len(found) == 1 and found[0][1]:
            return lookup(found[0][0], **scope)
        return REF.sub(lambda m: _text(lookup(m.group(1).strip(), **scope)), value)
    if isinstance(value, dict):
        return {k: substitute(v, **scope) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, **scope) for v in value]
    return value


def _text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
