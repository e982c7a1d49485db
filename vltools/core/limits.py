"""Shape limits every tool input passes before its schema sees it.

Checked iteratively (a deeply nested input cannot exhaust the stack here): nesting depth, strings
that are not valid Unicode (lone surrogates, which JSON can carry but no file system, tokenizer or
database accepts), and non-finite numbers (NaN and infinity, which JSON does not have and which
break every comparison). Each failure is an `InvalidInput` naming where in the input it is.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel

from vltools.core.errors import InvalidInput

MAX_DEPTH = 32  # the deepest tool schema nests lists of objects of lists a few levels deep
_SURROGATE_FREE = "utf-8"


def _where(path: list[str | int]) -> str:
    return ".".join(str(p)[:40] for p in path[:8]) + ("..." if len(path) > 8 else "") or "input"


def _bad_text(s: str) -> bool:
    try:
        s.encode(_SURROGATE_FREE)
    except UnicodeEncodeError:
        return True
    return False


def check_input_shape(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise `InvalidInput` when ``value`` nests deeper than ``max_depth``, holds a string with a lone
    surrogate, or a NaN/infinite float. Pydantic models inside are taken as already validated."""
    stack: list[tuple[Any, int, list[str | int]]] = [(value, 0, [])]
    while stack:
        v, depth, path = stack.pop()
        if isinstance(v, str):
            if _bad_text(v):
                raise InvalidInput(
                    f"{_where(path)} holds text that is not valid Unicode (a lone surrogate such as \\ud800)",
                    hint="send UTF-8 text",
                )
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise InvalidInput(f"{_where(path)} is {v}; NaN and infinity are not accepted", hint="give a number")
        elif isinstance(v, dict | list | tuple):
            if depth >= max_depth:
                raise InvalidInput(
                    f"the input nests deeper than {max_depth} levels (at {_where(path)})",
                    hint="flatten the input; no tool takes structures this deep",
                )
            if isinstance(v, dict):
                for k, item in v.items():
                    if isinstance(k, str) and _bad_text(k):
                        raise InvalidInput(f"a key in {_where(path)} is not valid Unicode", hint="send UTF-8 text")
                    stack.append((item, depth + 1, [*path, k if isinstance(k, str | int) else "?"]))
            else:
                stack.extend((item, depth + 1, [*path, i]) for i, item in enumerate(v))
        elif isinstance(v, BaseModel):
            continue


__all__ = ["MAX_DEPTH", "check_input_shape"]
