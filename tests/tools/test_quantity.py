"""Numbers and dates as intervals: granularity and tolerance words decide the relation."""

from __future__ import annotations

import math

import pytest

from vltools.tools.factcheck._quantity import Quantity, extract, relation, same_thing


def one(text: str) -> Quantity:
    qs = extract(text)
    assert len(qs) == 1, qs
    return qs[0]


@pytest.mark.parametrize(
    ("text", "kind", "lo", "hi"),
    [
        ("built in 1990", "year", 1990, 1990),
        ("ice-free in the 2030s", "year", 2030, 2039),
        ("in the late 1990s", "year", 1997, 1999),
        ("by mid-century", "year", 2040, 2060),
        ("by the end of the century", "year", 2090, 2099),
        ("during the 20th century", "year", 1900, 1999),
        ("rose about 8 inches", "number", 7.2, 8.8),
        ("nearly 20 species", "number", 18, 20),
        ("at least 3 metres", "number", 3, math.inf),
        ("up to 3 metres", "number", -math.inf, 3),
        ("1.5 million people", "number", 1.5e6, 1.5e6),
        ("until 2016 ± 3 years", "year", 2013, 2019),
    ],
)
def test_extract_reads_granularity_and_tolerance(text, kind, lo, hi):
    q = one(text)
    assert q.kind == kind
    assert q.lo == pytest.approx(lo) and q.hi == pytest.approx(hi)


def test_more_than_is_open_and_percent_is_a_kind():
    q = one("more than 5% of the ice")
    assert q.kind == "percent" and q.lo > 5 and q.hi == math.inf
    assert not one("5 km").comparable(one("5 percent"))
    assert not one("5 km").comparable(one("5 inches"))


@pytest.mark.parametrize(
    ("evidence", "claim", "op"),
    [
        ("built in 1991", "built in 1990", "alternation"),  # years compare exactly
        ("built in 1990", "built in 1990", "equivalence"),
        ("in the 2030s", "in the summer of 2013", "alternation"),  # 2013 is not in 2030-2039
        ("in 2035", "in the 2030s", "forward_entailment"),
        ("in the 2030s", "in 2035", "reverse_entailment"),  # the claim is more precise
        ("in 2050", "by mid-century", "forward_entailment"),
        ("rose 8 inches", "rose about 8 inches", "forward_entailment"),
        ("rose 8.5 inches", "rose about 8 inches", "forward_entailment"),  # within "about"
        ("rose 8.5 inches", "rose 8 inches", "alternation"),  # no tolerance word: exact
        ("rose 20 inches", "rose about 8 inches", "alternation"),
        ("rose 8 inches", "rose more than 5 inches", "forward_entailment"),
        ("rose 4 inches", "rose more than 5 inches", "alternation"),
        ("rose more than 5 inches", "rose 8 inches", "reverse_entailment"),
        ("rose at least 5 inches", "rose more than 5 inches", "reverse_entailment"),  # 5 itself is in doubt
        ("rose 4 inches", "rose about 9 inches", "alternation"),
    ],
)
def test_relation_follows_the_intervals(evidence, claim, op):
    assert relation(one(evidence), one(claim)) == op


def test_same_thing_needs_a_shared_head():
    a, b, c = one("built in 1990"), one("built in 1991"), one("repainted in 1991")
    a.anchors, b.anchors, c.anchors = ["build"], ["build"], ["repaint"]
    assert same_thing(a, b)
    assert not same_thing(a, c)
    assert not same_thing(a, one("in 1991"))  # nothing known about what it describes
