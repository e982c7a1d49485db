"""Fuzz every registry tool's input schema (hypothesis + hypothesis-jsonschema): valid-shaped,
mutated and malformed inputs through ``Registry.call``; the only accepted failure is a `ToolError`.

Bounded for CI (``FUZZ_EXAMPLES`` inputs per tool, derandomised, short per-call deadline). The LLM
is a stub, CLIP and the text encoder are the bundled demo/MiniLM models (see ``_fuzz``). The
deeper run is ``benchmarks/bench_fuzz.py``. Parametrised over ``get_registry()``, so tools added
later are fuzzed too.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings

from vltools.core.registry import get_registry

from ._fuzz import Tally, build_world, ensure_collections, input_strategy

FUZZ_EXAMPLES = int(os.environ.get("VLTOOLS_FUZZ_EXAMPLES", "12"))
CALL_TIMEOUT_S = 3.0


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    settings, strings = build_world(tmp_path_factory.mktemp("fuzz"))
    return settings, strings


@pytest.mark.parametrize("name", get_registry().names())
def test_fuzz_tool_inputs_raise_only_tool_errors(name, world):
    settings, strings = world
    ensure_collections(settings)
    tally = Tally()

    @hsettings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
               suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(inp=input_strategy(name, strings))
    def fuzz(inp):
        tally.run(name, inp, settings, timeout=CALL_TIMEOUT_S)

    fuzz()
    assert tally.tried(name) >= FUZZ_EXAMPLES
    assert not tally.raw[name], tally.raw[name]
