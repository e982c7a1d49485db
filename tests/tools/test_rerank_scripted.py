"""Every reranker against the scripted model (vltools.testing.scripted_llm), a perfect judge that
knows each passage's grade: a correct reranker returns the passages best first. These tests fail
when a ranking is reversed, when identifiers are mapped to the wrong passages, or when sliding
windows are merged wrongly."""

from __future__ import annotations

import pytest

import vltools
from vltools.testing.scripted_llm import ScriptedLLM, installed

# passage i has grade i; the input order is worst first, so "keep the input order" and "reverse the
# ranking" both fail, and every identifier's passage has a different grade.
N = 7
RELEVANCE = {f"topic{i}": float(i) for i in range(N)}
PASSAGES = [{"id": f"p{i}", "text": f"a passage about topic{i} and nothing else"} for i in range(N)]
BEST_FIRST = [f"p{i}" for i in reversed(range(N))]
QUERY = "which passage is the best one"


@pytest.fixture()
def scripted():
    with installed(ScriptedLLM(RELEVANCE)) as llm:
        yield llm


def call(name: str, **extra):
    return vltools.call(name, {"query": QUERY, "passages": PASSAGES, "llm": "scripted", **extra})


def ids(out) -> list[str]:
    return [h.id for h in out.hits]


@pytest.mark.parametrize("name", ["rerank.listwise", "rerank.first", "rerank.pointwise", "rerank.icr"])
def test_one_window_rerankers_put_the_best_passage_first(scripted, name):
    out = call(name)
    assert ids(out) == BEST_FIRST
    assert [h.rank for h in out.hits] == list(range(1, N + 1))
    scores = [h.score for h in out.hits]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]  # scores agree with the order


@pytest.mark.parametrize("method", ["heap", "bubble"])
def test_rank_r1_sorts_best_first_and_its_reasoning_names_the_winner(scripted, method):
    out = call("rerank.rank_r1", depth=N, num_child=2, method=method)
    assert ids(out) == BEST_FIRST
    assert out.fallbacks == 0 and out.comparisons
    for c in out.comparisons:
        assert c.winner == max(c.ids, key=lambda i: int(i[1:]))  # the best passage of each set won
        assert f"[{c.ids.index(c.winner) + 1}]" in c.answer


def test_rank_r1_sets_hold_up_to_twenty_documents(scripted):
    passages = [{"id": f"d{i}", "text": f"text about topic{i % N} number{i}"} for i in range(25)]
    out = vltools.call(
        "rerank.rank_r1", {"query": QUERY, "passages": passages, "llm": "scripted", "depth": 3, "num_child": 19}
    )
    assert max(len(c.ids) for c in out.comparisons) == 20
    assert [int(h.id[1:]) % N for h in out.hits[:3]] == [6, 6, 6]  # d6 / d13 / d20 are the best
    prompts = [m for kind, m, _ in scripted.calls if kind == "complete"]
    assert any("[20]" in m[-1]["content"] for m in prompts)


# sliding windows: 9 passages of grades 0..8 (worst first), window 4, stride 2, from the bottom up.
# A perfect judge sorts each window: [5:9] -> [3:7] -> [1:5] -> [0:3]; worked by hand:
#   [0,1,2,3,4,8,7,6,5] -> [0,1,2,8,7,4,3,6,5] -> [0,8,7,2,1,4,3,6,5] -> [8,7,0,2,1,4,3,6,5]
WINDOWED = [8, 7, 0, 2, 1, 4, 3, 6, 5]


@pytest.mark.parametrize("name", ["rerank.listwise", "rerank.first"])
def test_sliding_windows_merge_as_rankgpt_does(name):
    relevance = {f"topic{i}": float(i) for i in range(9)}
    passages = [{"id": f"p{i}", "text": f"a passage about topic{i}"} for i in range(9)]
    with installed(ScriptedLLM(relevance)):
        out = vltools.call(
            name, {"query": QUERY, "passages": passages, "llm": "scripted", "window": 4, "stride": 2}
        )
    assert out.windows == 4
    assert [int(h.id[1:]) for h in out.hits] == WINDOWED


def test_first_prefills_the_bracket_and_reads_identifier_logits(scripted):
    call("rerank.first")
    kind, messages, extra = scripted.calls[-1]
    assert kind == "next_token_after" and extra["prefill"] == "["
    assert extra["candidates"] == list("ABCDEFG")
    prompt = messages[-1]["content"]
    assert "alphabetical identifier" in prompt and "[A] a passage about topic0" in prompt


def test_icr_needs_its_calibration_pass_to_beat_the_position_bias(scripted):
    # the scripted attention favours later prompt positions in both passes; only calibration removes it
    best_first_input = PASSAGES[::-1]  # the bias favours the worst passages, placed last
    calibrated = vltools.call("rerank.icr", {"query": QUERY, "passages": best_first_input, "llm": "scripted"})
    raw = vltools.call(
        "rerank.icr", {"query": QUERY, "passages": best_first_input, "llm": "scripted", "calibrate": False}
    )
    assert ids(calibrated) == BEST_FIRST
    assert ids(raw) == BEST_FIRST[::-1]
    kind, prefix, extra = scripted.calls[-2]
    assert kind == "prefix_attentions" and extra["suffixes"] == [" " + QUERY, " N/A"]
    assert calibrated.stats.forward_passes == 3  # one prefix pass, then the query and "N/A" against its cache


def test_icr_outlier_tokens_are_masked():
    import numpy as np

    from vltools.tools.rerank.icr import calibrated_scores

    query = np.ones(25)
    cal = np.zeros(25)
    cal[24] = 9.0  # one sink-like token in passage 2 (tokens 5..24)
    s = calibrated_scores(query, cal, [(0, 5), (5, 25)])
    assert s[0] == pytest.approx(5.0)
    assert s[1] == pytest.approx(19.0)  # the outlier (1 - 9 = -8 < mean - 2 std) is dropped, not subtracted
    assert calibrated_scores(query, None, [(0, 5), (5, 25)]).tolist() == [5.0, 20.0]


def test_pointwise_scores_follow_p_yes(scripted):
    out = call("rerank.pointwise")
    by_id = {h.id: h.score for h in out.hits}
    assert by_id["p0"] == pytest.approx(0.0)  # grade 0: P(yes) = P(no)
    assert by_id["p6"] > by_id["p1"] > 0
