"""HTML forms generated from a tool's input JSON Schema, and form data turned back into typed input.

Each top-level property becomes one field: text, number, checkbox, select (enums), a textarea with
one item per line (lists of strings/numbers), or a JSON textarea (objects, lists of objects,
anything else). Empty fields are left out so the tool's defaults apply; the registry validates
the result, so its error names the field exactly as for any other face.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from vltools.core.errors import InvalidInput


@dataclass
class FormField:
    name: str
    widget: str  # text | textarea | number | checkbox | select | lines | json
    required: bool
    description: str
    default: Any
    options: list[Any]
    step: str = "any"
    item_type: str = "string"  # for lines: string | integer | number


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The schema of a property without ``null`` alternatives and ``$ref``s; (schema, nullable)."""
    nullable = False
    if "anyOf" in schema:
        alts = [a for a in schema["anyOf"] if a.get("type") != "null"]
        nullable = len(alts) < len(schema["anyOf"])
        if len(alts) == 1:
            merged = {**{k: v for k, v in schema.items() if k != "anyOf"}, **alts[0]}
            schema = merged
    if "$ref" in schema:
        target = defs.get(schema["$ref"].rsplit("/", 1)[-1], {})
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema, nullable


def form_fields(schema: dict[str, Any]) -> list[FormField]:
    """One `FormField` per top-level property of an input JSON Schema, in schema order."""
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    fields: list[FormField] = []
    for name, raw in schema.get("properties", {}).items():
        prop, _ = _resolve(raw, defs)
        t = prop.get("type")
        default = raw.get("default", prop.get("default"))
        desc = raw.get("description", prop.get("description", ""))
        f = FormField(name, "json", name in required, desc, default, [])
        if "enum" in prop:
            f.widget, f.options = "select", list(prop["enum"])
        elif t == "boolean":
            f.widget = "checkbox"
        elif t in ("integer", "number"):
            f.widget, f.step = "number", ("1" if t == "integer" else "any")
        elif t == "string":
            f.widget = "textarea" if (prop.get("maxLength") or 0) > 2000 else "text"
        elif t == "array":
            items, _ = _resolve(prop.get("items", {}), defs)
            if items.get("type") in ("string", "integer", "number") and "enum" not in items:
                f.widget, f.item_type = "lines", items["type"]
        fields.append(f)
    return fields


def _number(text: str, kind: str, name: str) -> int | float:
    try:
        return int(text) if kind == "integer" else float(text)
    except ValueError:
        raise InvalidInput(f"{name}: {text!r} is not a{'n integer' if kind == 'integer' else ' number'}") from None


def parse_form(fields: list[FormField], form: dict[str, str], *, raw_json: str = "") -> dict[str, Any]:
    """Form values -> tool input (empty fields omitted). ``raw_json``, when given, is the whole input."""
    if raw_json.strip():
        try:
            data = json.loads(raw_json)
        except json.JSONDecodeError as err:
            raise InvalidInput(f"the JSON input is not valid JSON: {err}") from None
        if not isinstance(data, dict):
            raise InvalidInput("the JSON input must be an object")
        return data
    out: dict[str, Any] = {}
    for f in fields:
        if f.widget == "checkbox":
            present = form.get(f.name) is not None
            if present or f.default is not None:
                out[f.name] = present
            continue
        text = (form.get(f.name) or "").strip()
        if not text:
            continue
        if f.widget == "number":
            out[f.name] = _number(text, "integer" if f.step == "1" else "number", f.name)
        elif f.widget == "lines":
            items = [line.strip() for line in text.splitlines() if line.strip()]
            out[f.name] = [_number(i, f.item_type, f.name) for i in items] if f.item_type != "string" else items
        elif f.widget == "json":
            try:
                out[f.name] = json.loads(text)
            except json.JSONDecodeError as err:
                raise InvalidInput(f"{f.name}: not valid JSON ({err.msg})", hint="e.g. [\"a\", \"b\"] or {}") from None
        else:
            out[f.name] = text
    return out
