"""Bounded YAML loading for workflow files that may come from untrusted clients (MCP).

``yaml.safe_load`` constructs no objects, but it still expands aliases: a few hundred bytes of
nested anchors (the "billion laughs") describe billions of nodes, which later code would walk.
Before anything is constructed, this loader bounds the text size, the number of aliases, the
nesting depth and the size of the document with every alias expanded, and refuses recursive
aliases. Every refusal is a `TooLarge` or `InvalidInput` naming the limit.
"""

from __future__ import annotations

from typing import Any

import yaml

from vltools.core.errors import InvalidInput, TooLarge

MAX_BYTES = 256 * 1024  # a workflow is a page of YAML; this is generous
MAX_ALIASES = 100
MAX_NODES = 50_000  # nodes of the document with every alias expanded
MAX_DEPTH = 64


class _BoundedLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that counts aliases while composing (before any expansion)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise TooLarge(
                    f"the workflow YAML uses more than {MAX_ALIASES} aliases (*name)",
                    hint="write the values out, or use workflow inputs and ${...} references",
                )
        return super().compose_node(parent, index)


def _expanded_size(root: yaml.Node) -> int:
    """Nodes of the document with aliases expanded, computed on the shared node graph (linear time)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    # iterative post-order walk: (node, depth, children visited?)
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, expanded = stack.pop()
        key = id(node)
        if expanded:
            active.discard(key)
            children = _children(node)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[key] > MAX_NODES:
                raise TooLarge(
                    f"the workflow YAML expands to more than {MAX_NODES} values (aliases of aliases)",
                    hint="write a smaller workflow; aliases must not multiply the document",
                )
            continue
        if key in sizes:
            continue
        if key in active:
            raise InvalidInput("the workflow YAML has a recursive alias (a value that contains itself)")
        if depth > MAX_DEPTH:
            raise TooLarge(f"the workflow YAML nests deeper than {MAX_DEPTH} levels")
        active.add(key)
        stack.append((node, depth, True))
        for child in _children(node):
            if id(child) in active:
                raise InvalidInput("the workflow YAML has a recursive alias (a value that contains itself)")
            if id(child) not in sizes:
                stack.append((child, depth + 1, False))
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load_yaml(text: str) -> Any:
    """Parse one YAML document within the bounds above; `InvalidInput` for malformed YAML."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_BYTES:
        raise TooLarge(
            f"the workflow YAML is {size} bytes, over the limit of {MAX_BYTES}",
            hint="split the work into smaller workflows",
        )
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node)
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        raise InvalidInput(f"workflow: not valid YAML: {err}") from None
    except RecursionError:
        raise TooLarge(f"the workflow YAML nests deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()
