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
    claim = "Surface temperatures in Brazil are rising."
    out = vltools.call("natlog.prove", {"claim": claim, "evidence": [RISING], "operator_model": False})
    assert out.verdict == "NOT ENOUGH INFO"  # strict natural logic: "Brazil" is an insertion
    assert "Brazil" in " ".join(out.uncovered)
    # The learnt model judges the open span instead (CLIMATE-FEVER's annotators accept such claims), and says so.
    learnt = vltools.call("natlog.prove", {"claim": claim, "evidence": [RISING]})
    if learnt.decided_by == "model":
        assert any(s.origin == "model" and "Brazil" in s.claim_span for s in learnt.proof)


def test_bad_claims_are_clear_errors():
    with pytest.raises(InvalidInput, match="empty"):
        vltools.call("natlog.prove", {"claim": "   ", "evidence": [RISING]})
    with pytest.raises(TooLarge, match="characters"):
        vltools.call("natlog.prove", {"claim": "warm " * 20_000, "evidence": [RISING]})
    with pytest.raises(InvalidInput):
        vltools.call("natlog.prove", {"claim": "x", "evidence": []})


def prove(claim: str, evidence: str):
    return vltools.call("natlog.prove", {"claim": claim, "evidence": [evidence]})


def test_years_compare_exactly():
    out = prove("The bridge was built in 1990.", "The bridge was built in 1991.")
    assert out.verdict == "REFUTES"  # was SUPPORTED: years within about ±10 counted as equal
    step = next(s for s in out.proof if s.claim_span == "1990")
    assert (step.evidence_span, step.operator, step.origin) == ("1991", "alternation", "rule")
    assert prove("The bridge was built in 1990.", "The bridge was built in 1990.").verdict == "SUPPORTS"


def test_a_mismatch_of_numbers_about_different_things_is_not_a_refutation():
    # 1991 dates the repainting, not the building: the parse tells, so the claim's year stays open.
    assert prove("The bridge was repainted in 1991.", "The bridge was built in 1990.").verdict == "NOT ENOUGH INFO"
    # The year that describes the building decides, not the equal year of the repainting.
    out = prove("The bridge was built in 2005.", "The bridge was built in 1990 and repainted in 2005.")
    assert out.verdict == "REFUTES"
    assert any(s.claim_span == "2005" and s.evidence_span == "1990" for s in out.proof)


def test_decades_and_tolerance_words():
    arctic = prove("Scientists project that the Arctic will be ice-free in the summer of 2013.",
                   "Projections suggest the Arctic Ocean will be free of summer sea ice in the 2030s.")
    assert arctic.verdict == "REFUTES"
    assert prove("The Arctic will be ice-free in summer in the 2030s.",
                 "The Arctic will be free of summer sea ice in 2035.").verdict == "SUPPORTS"
    sea = "Global sea level rose {} in the last century."
    assert prove(sea.format("about 8 inches"), sea.format("8 inches")).verdict == "SUPPORTS"
    assert prove(sea.format("about 8 inches"), sea.format("20 inches")).verdict == "REFUTES"
    assert prove(sea.format("more than 5 inches"), sea.format("8 inches")).verdict == "SUPPORTS"
    assert prove(sea.format("more than 5 inches"), sea.format("4 inches")).verdict == "REFUTES"
    assert prove(sea.format("8 inches"), sea.format("more than 5 inches")).verdict == "NOT ENOUGH INFO"


def test_fell_against_rose_refutes():
    out = prove("Global temperatures fell last year.", "Global temperatures rose last year.")
    assert out.verdict == "REFUTES"
    step = next(s for s in out.proof if s.claim_span == "fell")
    assert (step.evidence_span, step.operator, step.source) == ("rose", "alternation", "rule: direction")


def test_the_operator_model_judges_each_sentence_and_reports_parts():
    # Two CLIMATE-FEVER sentences; the model judges each pair, the proof names its source.
    out = vltools.call("natlog.prove", {"claim": "Surface temperatures are rising.", "evidence": [RISING, WARMEST]})
    assert out.decided_by in ("model", "rules")
    assert [s.evidence_index for s in out.sentences] == [0, 1]
    assert all(abs(sum(s.probabilities.values()) - 1) < 1e-3 for s in out.sentences)
    assert out.sentences[0].probabilities["SUPPORTS"] > out.sentences[1].probabilities["SUPPORTS"]
    assert {p.claim_span: p.evidence_index for p in out.parts}["temperatures"] == 0
    assert all(s.origin in ("model", "wordnet", "rule", "embedding", "llm") for s in out.proof)
    assert out.states[-1] == out.verdict
    rules = vltools.call("natlog.prove", {"claim": "Surface temperatures are rising.", "evidence": [RISING],
                                          "operator_model": False})
    assert rules.decided_by == "rules" and rules.sentences is None
    assert all(s.origin != "model" for s in rules.proof)


def test_a_claim_number_the_evidence_does_not_state_is_never_supported():
    out = prove("The bridge was repainted in 1991.", "The bridge was built in 1990.")
    assert out.verdict != "SUPPORTS"


def test_uncalibrated_encoder_falls_back_to_the_rules_with_a_notice(monkeypatch):
    from vltools.tools.factcheck import _operator_model as om

    model = dict(om.load())
    model["encoders"] = {"some-other-encoder": model["encoders"]["minilm"]}
    monkeypatch.setattr(om, "load", lambda: model)
    out = prove("Surface temperatures are rising.", RISING)
    assert out.decided_by == "rules" and "no operator model is calibrated" in out.notices[0]
