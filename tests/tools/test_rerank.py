"""rerank.*: plumbing (windows, permutation parsing, setwise selection), every bad input, and real
behaviour with the bundled SmolLM2 on Cranfield queries (ICR moves relevant passages up)."""

from __future__ import annotations

import json
import random

import pytest

import vltools
from vltools.core.errors import InvalidInput
from vltools.tools.rerank._common import LABELS, parse_permutation, sliding_window

from ..models.test_llm import use_persistent_model_cache

METHODS = ["rerank.listwise", "rerank.first", "rerank.icr", "rerank.rank_r1", "rerank.pointwise"]
PASSAGES = [
    {"id": "jet", "text": "Jet engines compress air, burn fuel and expel hot gas to produce thrust."},
    {"id": "bread", "text": "Bread dough rises because yeast ferments sugar into carbon dioxide."},
    {"id": "wing", "text": "A wing produces lift from the pressure difference between its surfaces."},
]


@pytest.fixture(scope="module")
def smollm2():
    import torch

    use_persistent_model_cache()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread is much faster than two on the busy 2-core test machine
    from vltools.models.llm import get_llm

    yield get_llm("smollm2")
    torch.set_num_threads(threads)


# -- plumbing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("n,window,stride", [(1, 4, 2), (5, 20, 10), (7, 4, 2), (23, 20, 10), (30, 5, 5), (9, 3, 1)])
def test_sliding_window_always_returns_a_permutation(n, window, stride):
    rng = random.Random(n * 100 + window)
    seen_windows = []

    def shuffle(sub):
        seen_windows.append(list(sub))
        out = list(sub)
        rng.shuffle(out)
        return out

    order, windows = sliding_window(list(range(n)), window, stride, shuffle)
    assert sorted(order) == list(range(n))
    assert windows == max(1, len(seen_windows))
    assert all(len(w) <= window for w in seen_windows)


def test_sliding_window_bubbles_the_best_item_to_the_top():
    # rank_fn sorts by value: the largest item at the bottom must reach the top through overlapping windows
    order, windows = sliding_window(list(range(25)), 6, 3, lambda sub: sorted(sub, reverse=True))
    assert order[0] == 24 and windows > 1


def test_sliding_window_rejects_a_rank_fn_that_loses_items():
    with pytest.raises(AssertionError):
        sliding_window(list(range(5)), 5, 2, lambda sub: sub[:-1])


@pytest.mark.parametrize(
    "text,n,expected",
    [
        ("B > A > C", 3, [1, 0, 2]),
        ("[C] > [A] > [B]", 3, [2, 0, 1]),
        ("", 3, [0, 1, 2]),
        ("I cannot rank these passages, sorry!", 4, [0, 1, 2, 3]),
        ("[B] > [B] > [Z] > [A]", 3, [1, 0, 2]),
        ("2 > 3 > 2 > 9", 3, [1, 2, 0]),
        ("The answer: D, then B", 4, [3, 1, 0, 2]),
        ("\x00\ufffd[[[ >>> ]]] " * 50, 5, [0, 1, 2, 3, 4]),
    ],
)
def test_parse_permutation_survives_garbage(text, n, expected):
    perm, repairs = parse_permutation(text, n)
    assert perm == expected
    assert sorted(perm) == list(range(n))
    assert set(repairs) == {"duplicates", "unknown", "missing"}


def test_parse_permutation_counts_repairs():
    perm, repairs = parse_permutation("[B] > [B] > [Z] > [A]", 3)
    assert repairs == {"duplicates": 1, "unknown": 1, "missing": 1}


@pytest.mark.parametrize("method", ["heap", "bubble"])
def test_setwise_selection_sorts_the_top_k_with_a_scripted_judge(method):
    from vltools.tools.rerank import rank_r1 as r1

    relevance = [3, 9, 1, 7, 0, 8, 2, 6, 5, 4, 11, 10]

    class Judge:
        calls = 0

        def best(self, group):
            Judge.calls += 1
            return max(range(len(group)), key=lambda j: relevance[group[j]])

    fn = r1._heap_top if method == "heap" else r1._bubble_top
    order = fn(list(range(len(relevance))), 3, 4, Judge())
    assert sorted(order) == list(range(len(relevance)))
    assert [relevance[i] for i in order[:4]] == [11, 10, 9, 8]


@pytest.mark.parametrize("method", ["heap", "bubble"])
def test_rank_r1_unparsable_answers_keep_the_input_order_and_are_counted(method):
    """A scripted model that never answers in tags: every comparison falls back, counted, input order kept."""
    from vltools.core.context import Context
    from vltools.models.llm import Completion, Usage
    from vltools.schemas import Passage
    from vltools.tools.rerank import rank_r1 as r1
    from vltools.tools.rerank._common import Item, Run

    class Mumbler:
        spec = "scripted"

        def complete(self, messages, **kw):
            return Completion("I think the documents are all about aircraft.", Usage(1, 50, 9))

    inp = r1.RankR1Input(query="q", passages=[{"id": f"p{i}", "text": f"t{i}"} for i in range(9)])
    items = [Item(i, Passage(id=f"p{i}", text=f"t{i}"), f"t{i}") for i in range(9)]
    run = Run(inp=inp, ctx=Context(), method="rank_r1", llm=Mumbler(), items=items, truncated=0, usage=Usage())
    judge = r1._Judge(run, 32)
    order = (r1._heap_top if method == "heap" else r1._bubble_top)(list(range(9)), 3, 4, judge)
    assert order == list(range(9))
    assert judge.fallbacks == len(judge.comparisons) > 0
    assert all(c.fallback and c.reasoning for c in judge.comparisons)
    assert run.usage.generated_tokens == 9 * len(judge.comparisons)


def test_rank_r1_answer_parsing():
    from vltools.tools.rerank.rank_r1 import parse_answer

    assert parse_answer("<think>doc 2 talks about jets</think> <answer>[2]</answer>", 3)[:2] == (
        1,
        "doc 2 talks about jets",
    )
    assert parse_answer("<think>hmm</think> the best is [3]", 3)[0] == 2
    assert parse_answer("<answer>[7]</answer>", 3)[0] is None
    assert parse_answer("no idea at all", 3)[0] is None


# -- bad input (no model needed) --------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_bad_inputs_are_clear_errors(method):
    cases = [
        ({"query": "jets", "passages": []}, "no passages"),
        ({"query": "jets", "passages": [{"id": str(i), "text": "x"} for i in range(5000)]}, "at most 1000"),
        ({"query": "  \n\t ", "passages": PASSAGES}, "whitespace"),
        ({"query": "jets", "passages": [PASSAGES[0], PASSAGES[0]]}, "twice"),
        ({"query": "jets", "ranking": {"query": "jets", "hits": []}}, "no passages"),
    ]
    for inp, words in cases:
        with pytest.raises(InvalidInput) as exc:
            vltools.call(method, inp)
        assert words in exc.value.message
    with pytest.raises(InvalidInput) as exc:
        vltools.call(method, {"query": "jets", "passages": PASSAGES, "llm": "gpt-17"})
    assert "unknown LLM spec" in exc.value.message and "smollm2" in exc.value.hint


# -- real model ---------------------------------------------------------------------------------


@pytest.mark.heavy
def test_first_identifiers_are_single_tokens_and_windows_permute(smollm2):
    assert all(smollm2.is_single_token(c) for c in LABELS)
    passages = [{"id": f"p{i}", "text": f"passage number {i} about wings and lift"} for i in range(7)]
    out = vltools.call("rerank.first", {"query": "wing lift", "passages": passages, "window": 4, "stride": 2})
    assert sorted(h.id for h in out.hits) == sorted(p["id"] for p in passages)
    assert [h.rank for h in out.hits] == list(range(1, 8))
    assert out.windows == 3 and out.stats.forward_passes == 3 and out.stats.generated_tokens == 0


@pytest.mark.heavy
def test_long_passage_is_truncated_and_reported(smollm2):
    big = {"id": "big", "text": "supersonic flow over a blunt body " * 30_000}  # ~1 MB
    out = vltools.call("rerank.first", {"query": "blunt body", "passages": [big, *PASSAGES], "max_passage_tokens": 32})
    assert out.truncated_passages == 1 and out.max_passage_tokens == 32
    assert len(out.hits) == 4 and any("truncated" in n for n in out.notes)
    assert out.stats.prompt_tokens < 600
    assert next(h for h in out.hits if h.id == "big").text == big["text"]  # the full text comes back


@pytest.mark.heavy
def test_listwise_pointwise_and_rank_r1_return_every_passage_once(smollm2):
    ranking = {"query": "how do jet engines make thrust", "hits": [{**p, "score": 1.0} for p in PASSAGES]}
    lw = vltools.call("rerank.listwise", {"ranking": ranking, "window": 2, "stride": 1})
    assert sorted(h.id for h in lw.hits) == sorted(p["id"] for p in PASSAGES)
    assert lw.windows == 2 and len(lw.responses) == 2 and lw.stats.generated_tokens > 0
    assert lw.query == ranking["query"]
    pw = vltools.call("rerank.pointwise", {"ranking": ranking, "k": 2})
    assert len(pw.hits) == 2 and all(-1 <= h.score <= 1 for h in pw.hits)
    assert pw.stats.forward_passes == 3
    r1 = vltools.call("rerank.rank_r1", {"ranking": ranking, "depth": 2, "num_child": 1, "think_tokens": 24})
    assert sorted(h.id for h in r1.hits) == sorted(p["id"] for p in PASSAGES)
    assert r1.comparisons and r1.fallbacks == sum(c.fallback for c in r1.comparisons)
    assert all(c.winner in c.ids and isinstance(c.reasoning, str) for c in r1.comparisons)
    bubble = vltools.call(
        "rerank.rank_r1", {"ranking": ranking, "depth": 1, "num_child": 2, "think_tokens": 16, "method": "bubble"}
    )
    assert sorted(h.id for h in bubble.hits) == sorted(p["id"] for p in PASSAGES)


def _cranfield_sets(shared_data, n_queries: int, n_relevant: int, n_passages: int, seed: int):
    """Per query: its most relevant judged abstracts plus random unjudged Cranfield abstracts, shuffled."""
    root = shared_data / "cranfield"
    docs = {d["id"]: d for d in map(json.loads, (root / "corpus.jsonl").open()) if d["text"]}
    queries = [json.loads(line) for line in (root / "queries.jsonl").open()][:n_queries]
    qrels: dict[str, dict[str, int]] = {}
    for line in (root / "qrels.tsv").read_text().splitlines()[1:]:
        q, d, r = line.split()
        qrels.setdefault(q, {})[d] = int(r)
    rng = random.Random(seed)
    ids = sorted(docs, key=int)
    sets = []
    for q in queries:
        judged = qrels[q["id"]]
        relevant = [d for d, r in sorted(judged.items(), key=lambda x: -x[1]) if r > 0 and d in docs][:n_relevant]
        others = [d for d in rng.sample(ids, 3 * n_passages) if d not in judged][: n_passages - len(relevant)]
        passages = [{"id": d, "text": docs[d]["text"]} for d in relevant + others]
        rng.shuffle(passages)
        sets.append((q["text"], passages, set(relevant)))
    return sets


def _mrr(ids: list[str], relevant: set[str]) -> float:
    return next((1 / (i + 1) for i, d in enumerate(ids) if d in relevant), 0.0)


@pytest.mark.heavy
def test_icr_moves_relevant_cranfield_passages_up(smollm2, shared_data):
    """Cranfield queries 1-8, each with its 2 most relevant abstracts hidden among 6 random ones (shuffled):
    ICR puts a relevant abstract near the top far more often than the shuffled order does."""
    shuffled_mrr, icr_mrr = [], []
    for query, passages, relevant in _cranfield_sets(shared_data, 8, 2, 8, seed=7):
        shuffled_mrr.append(_mrr([p["id"] for p in passages], relevant))
        out = vltools.call("rerank.icr", {"query": query, "passages": passages, "max_passage_tokens": 48})
        assert out.stats.forward_passes == 3 and out.windows == 1 and out.calibrated  # prefix, query, N/A
        assert sorted(h.id for h in out.hits) == sorted(p["id"] for p in passages)
        icr_mrr.append(_mrr([h.id for h in out.hits], relevant))
    shuffled, icr = sum(shuffled_mrr) / len(shuffled_mrr), sum(icr_mrr) / len(icr_mrr)
    assert icr > shuffled + 0.3, (icr, shuffled)
