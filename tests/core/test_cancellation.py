"""Cooperative cancellation: should_stop reaches the backends, which stop and free their locks."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tests.core import sample_tools
from tests.core.registries import private_registry
from vltools.core.cancel import current_should_stop, stop_signal
from vltools.core.context import Context
from vltools.core.errors import Timeout
from vltools.core.registry import running_workers


def test_should_stop_after_the_deadline_or_a_cancel():
    ctx = Context(deadline=time.monotonic() + 3600)
    assert not ctx.should_stop()
    child = ctx.child()
    ctx.cancel()
    assert ctx.should_stop() and child.should_stop()
    with pytest.raises(Timeout, match="cancelled"):
        child.check()
    late = Context(deadline=time.monotonic() - 1)
    assert late.should_stop()
    with pytest.raises(Timeout, match="time limit") as exc:
        late.check()
    assert exc.value.details["deadline_passed_by_s"] > 0


def test_the_running_call_is_the_default_stop_signal():
    assert current_should_stop() is None
    own = lambda: True  # noqa: E731
    with stop_signal(lambda: False):
        assert current_should_stop()() is False
        assert current_should_stop(own) is own  # an explicit one wins
    assert current_should_stop() is None


def test_a_timed_out_call_stops_its_work_and_frees_the_backend():
    """The tool spins holding a lock and polls only the ambient stop signal (like HF generation)."""
    reg = private_registry()
    with pytest.raises(Timeout, match="ran past its time limit") as exc:
        reg.call("sample.spin", {"seconds": 300}, timeout=0.5)
    assert exc.value.details["stopped"] is True  # the worker ended within the grace period
    assert not sample_tools.BACKEND_LOCK.locked()
    assert not [t for t in running_workers() if t.name == "vltools:sample.spin"]
    assert reg.call("sample.spin", {"seconds": 0}).text == "spun"  # the next call is not blocked


def test_a_cancelled_call_stops_and_says_so():
    reg = private_registry()
    ctx = Context()
    result: dict = {}

    def run() -> None:
        try:
            reg.call("sample.spin", {"seconds": 300}, ctx=ctx)
        except Timeout as err:
            result["err"] = err

    th = threading.Thread(target=run)
    th.start()
    for _ in range(2000):
        if sample_tools.BACKEND_LOCK.locked():
            break
        time.sleep(0.01)
    ctx.cancel()
    th.join(60)
    assert not th.is_alive() and "was cancelled" in result["err"].message
    assert not sample_tools.BACKEND_LOCK.locked()


class _FakeST:
    """Stands in for a SentenceTransformer: counts encoded batches."""

    def __init__(self) -> None:
        self.batches = 0

    def get_sentence_embedding_dimension(self) -> int:
        return 3

    def encode(self, texts, **kw):
        self.batches += 1
        return np.ones((len(texts), 3), dtype=np.float32)


def test_text_encoder_checks_between_batches():
    from vltools.models.text import TextEncoder

    model = _FakeST()
    enc = TextEncoder("fake", model, "cpu")
    calls = {"n": 0}

    def stop_after_two() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    with pytest.raises(Timeout, match="stopped early"):
        enc.encode([f"t{i}" for i in range(10)], batch_size=2, should_stop=stop_after_two)
    assert model.batches == 2 and not enc._lock.locked()
    with stop_signal(lambda: True):  # the running call's signal, when none is passed
        with pytest.raises(Timeout):
            enc.encode(["a", "b"])
    assert enc.encode(["a", "b"]).shape == (2, 3)


def test_hf_stopping_criteria_follow_should_stop():
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from vltools.models._llm_hf import _stopping_criteria

    flag = {"stop": False}
    criteria = _stopping_criteria(lambda: flag["stop"])
    ids = torch.zeros((1, 4), dtype=torch.long)
    assert not bool(criteria(ids, None).all())
    flag["stop"] = True
    assert bool(criteria(ids, None).all())
