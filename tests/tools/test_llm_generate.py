"""llm.generate: input rules, and a real answer from the bundled SmolLM2."""

from __future__ import annotations

import pytest

import vltools
from vltools.core.errors import InvalidInput


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"prompt": "hi", "messages": [{"role": "user", "content": "hi"}]},
        {"prompt": "   "},
        {"prompt": "hi", "max_tokens": 0},
        {"messages": []},
        {"messages": [{"role": "robot", "content": "hi"}]},
    ],
)
def test_bad_input_is_a_clear_error(bad):
    with pytest.raises(InvalidInput):
        vltools.call("llm.generate", bad)


def test_unknown_llm_spec():
    with pytest.raises(InvalidInput) as exc:
        vltools.call("llm.generate", {"prompt": "hi", "llm": "nonsense:model"})
    assert "nonsense" in str(exc.value)


@pytest.mark.heavy
def test_smollm2_answers_and_reports_cost():
    out = vltools.call(
        "llm.generate",
        {"prompt": "What is the capital of France? Answer with one word.", "max_tokens": 8, "system": "Be brief."},
    )
    assert "paris" in out.text.lower()
    assert out.llm == "smollm2" and out.stats.generated_tokens >= 1 and out.stats.prompt_tokens > 5
    assert out.finish_reason in {"stop", "length"}
