"""natlog.*: WordNet operators, the NatLog automaton, proofs on real sentences."""

from __future__ import annotations

import pytest

import vltools
from vltools.core.errors import InvalidInput, TooLarge
from vltools.tools.factcheck._natlog import NEI, REFUTES, SUPPORTS, TRANSITIONS, run_automaton, tokenize

pytestmark = pytest.mark.heavy  # loads WordNet (and MiniLM for proofs)

# Real sentences from CLIMATE-FEVER's evidence pool (Wikipedia).
RISING = "Currently, surface temperatures are rising by about 0.2 °C per decade."
WARMEST = "The U.S. had its warmest March–May on record in 2012."


def test_automaton_follows_natlog_semantics():
    assert run_automaton(["equivalence", "forward_entailment"]) == [SUPPORTS, SUPPORTS]
    assert run_automaton(["equivalence", "alternation"])[-1] == REFUTES
    assert run_automaton(["negation", "negation"])[-1] == SUPPORTS  # double negation
    assert run_automaton(["alternation", "reverse_entailment"])[-1] == REFUTES  # refuted, claim more specific
    assert run_automaton(["reverse_entailment", "alternation"])[-1] == NEI  # NEI is absorbing
    assert run_automaton(["alternation", "forward_entailment"])[-1] == NEI
    assert all(TRANSITIONS[NEI][op] == NEI for op in TRANSITIONS[NEI])


def test_tokenizer_reads_numbers_years_and_negation():
    toks = {t.lower: t for t in tokenize("Ice didn't melt in 1998; 3.5% of 2,000 km in the 20th century")}
    assert toks["n't"].negation
    assert toks["1998"].number == (1998.0, "year")
    assert toks["3.5%"].number == (3.5, "percent")
    assert toks["2,000"].number == (2000.0, "number")
    assert toks["20th"].number is None


@pytest.mark.parametrize(
    ("evidence", "claim", "operator", "relation"),
    [
        ("require", "need", "equivalence", "synonym"),
        ("poodle", "dog", "forward_entailment", "hypernym"),
        ("dog", "poodle", "reverse_entailment", "hyponym"),
        ("rising", "falling", "alternation", "antonym"),
        ("warm", "cool", "alternation", "antonym"),
        ("cat", "dog", "alternation", "co-hyponym"),
        ("temperature", "pressure", "independence", "none"),
    ],
)
def test_relate_reads_wordnet(evidence, claim, operator, relation):
    out = vltools.call("natlog.relate", {"evidence_word": evidence, "claim_word": claim})
    assert (out.operator, out.relation) == (operator, relation)


def test_antonym_refutes_with_the_pair_in_the_proof():
    claim = RISING.replace("rising", "falling")
    out = vltools.call("natlog.prove", {"claim": claim, "evidence": [RISING]})
    assert out.verdict == "REFUTES"
    pairs = [(s.claim_span, s.evidence_span, s.operator, s.source) for s in out.proof]
    assert ("falling", "rising", "alternation", "antonym") in pairs
    assert out.states[0] == "SUPPORTS" and out.states[-1] == "REFUTES"


def test_same_sentence_supports_and_extra_evidence_is_a_deletion():
    out = vltools.call("natlog.prove", {"claim": "The U.S. had its warmest March–May in 2012.", "evidence": [WARMEST]})
    assert out.verdict == "SUPPORTS"
    assert any(s.kind == "deletion" and "record" in s.evidence_span for s in out.proof)


def test_negation_and_number_mismatch_refute():
    neg = vltools.call("natlog.prove", {"claim": "The U.S. did not have its warmest March–May on record in 2012.",
                                        "evidence": [WARMEST]})
    assert neg.verdict == "REFUTES" and any(s.operator == "negation" for s in neg.proof)
    year = vltools.call("natlog.prove", {"claim": "The U.S. had its warmest March–May on record in 1998.",
                                         "evidence": [WARMEST]})
    assert year.verdict == "REFUTES"
    assert any(s.source == "number mismatch" and s.claim_span == "1998" for s in year.proof)


def test_claim_more_specific_than_evidence_is_not_enough_info():
    out = vltools.call("natlog.prove", {"claim": "Surface temperatures in Brazil are rising.", "evidence": [RISING]})
    assert out.verdict == "NOT ENOUGH INFO"
    assert "Brazil" in " ".join(out.uncovered)


def test_bad_claims_are_clear_errors():
    with pytest.raises(InvalidInput, match="empty"):
        vltools.call("natlog.prove", {"claim": "   ", "evidence": [RISING]})
    with pytest.raises(TooLarge, match="characters"):
        vltools.call("natlog.prove", {"claim": "warm " * 20_000, "evidence": [RISING]})
    with pytest.raises(InvalidInput):
        vltools.call("natlog.prove", {"claim": "x", "evidence": []})
