"""Backends are typed: the context's accessors return Protocols that the real classes satisfy."""

from __future__ import annotations

import inspect
import typing

import pytest

from vltools.core import protocols
from vltools.core.context import Context


def test_context_accessors_return_the_protocols():
    import vltools.core.context as context_module

    names = {**vars(context_module), **vars(protocols)}  # the accessors name them under TYPE_CHECKING
    hints = {name: typing.get_type_hints(getattr(Context, name), globalns=names)["return"] for name in
             ("text", "clip", "llm", "collection")}
    assert hints == {"text": protocols.TextEncoder, "clip": protocols.ClipBackend, "llm": protocols.LLM,
                     "collection": protocols.Collection}


def _members(proto: type) -> dict[str, object]:
    return {
        name: value for name, value in vars(proto).items()
        if not name.startswith("_") and (callable(value) or isinstance(value, property))
    }


def _implementations() -> list[tuple[type, type]]:
    from vltools.models._llm_base import LLM
    from vltools.models._llm_hf import HFLLM
    from vltools.models._llm_openai import OpenAILLM
    from vltools.models.clip import ClipBackend
    from vltools.models.text import TextEncoder
    from vltools.store.collection import Collection

    return [
        (protocols.TextEncoder, TextEncoder),
        (protocols.ClipBackend, ClipBackend),
        (protocols.LLM, LLM),
        (protocols.LLM, HFLLM),
        (protocols.LLM, OpenAILLM),
        (protocols.Collection, Collection),
    ]


@pytest.mark.parametrize("proto, impl", _implementations(), ids=lambda x: x.__qualname__)
def test_real_classes_have_every_protocol_method_with_its_parameters(proto, impl):
    """A renamed method or a dropped parameter (e.g. should_stop) fails here, not at run time."""
    for name, member in _members(proto).items():
        assert hasattr(impl, name), f"{impl.__qualname__} lacks {name}"
        if isinstance(member, property):
            continue
        want = inspect.signature(member).parameters
        have = inspect.signature(getattr(impl, name)).parameters
        for pname, p in want.items():
            assert pname in have, f"{impl.__qualname__}.{name} lacks parameter {pname}"
            assert have[pname].kind == p.kind, f"{impl.__qualname__}.{name}({pname}) is {have[pname].kind}"


def test_instances_satisfy_the_runtime_checkable_protocols():
    """Attributes included: a text encoder over a fake model, an OpenAI client (no request made)."""
    from vltools.models.llm import get_llm
    from vltools.models.text import TextEncoder

    class FakeST:
        def get_sentence_embedding_dimension(self) -> int:
            return 4

    assert isinstance(TextEncoder("fake", FakeST(), "cpu"), protocols.TextEncoder)
    from vltools.core.settings import Settings

    dead = Settings(llm_endpoints={"dead": {"base_url": "http://127.0.0.1:9/v1"}})
    assert isinstance(get_llm("openai:dead#m", dead), protocols.LLM)
    assert not isinstance(object(), protocols.LLM)
