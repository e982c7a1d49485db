"""The spaCy language layer behind vqa.zero_shot and t2v: questions, prompts, scene graphs (no model)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from vltools.tools import _vl_language as lang


@pytest.mark.parametrize(
    ("question", "kind", "subtype", "noun", "attrs", "extra"),
    [
        ("Is there a police car?", "yesno", "presence", "police car", [], {}),
        ("Is there a brown dog in the picture?", "yesno", "presence", "dog", ["brown"], {}),
        ("Is there not a teal triangle?", "yesno", "presence", "triangle", ["teal"], {"negated": True}),
        ("Is no circle present?", "yesno", "presence", "circle", [], {"negated": True}),
        ("is a rectangle present?", "yesno", "presence", "rectangle", [], {}),
        ("what is the color of the circle?", "what", None, "circle", [], {"asked": "colour"}),
        ("Does this image not contain a gray shape?", "yesno", "presence", "", ["gray"], {"negated": True}),
        ("Is the circle red?", "yesno", "attribute", "circle", [], {"asserted": ["red"]}),
        ("Is the dog on the left?", "yesno", "attribute", "dog", [], {"position": "left"}),
        ("Is the red circle above the blue square?", "yesno", "relation", "circle", ["red"],
         {"relation": "above"}),
        ("Is the paperclip to the right of the police car?", "yesno", "relation", "paperclip", [],
         {"relation": "right of"}),
        ("How many red circles are there?", "count", None, "circle", ["red"], {}),
        ("How many objects are there?", "count", None, "", [], {}),
        ("Where is the tropical drink?", "where", None, "drink", ["tropical"], {}),
        ("What color is the shape?", "what", None, "", [], {"asked": "colour"}),
        ("Which animal is this?", "what", None, None, None, {"asked": "animal"}),
        ("What is on the left?", "what", None, None, None, {"location": "left"}),
    ],
)
def test_question_types_and_targets(question, kind, subtype, noun, attrs, extra):
    q = lang.parse_question(question)
    assert (q.kind, q.subtype) == (kind, subtype)
    if noun is None:
        assert q.target is None
    else:
        assert q.target.noun == noun and q.target.attributes == attrs
    for k, v in extra.items():
        assert getattr(q, k) == v, (k, getattr(q, k))
    if "negated" not in extra:
        assert q.negated is False


def test_event_questions_carry_the_verb_and_direction():
    q = lang.parse_question("Does the athletic shoe move to the left?")
    assert q.subtype == "event" and q.action.type == "move" and q.action.direction == "left"
    assert q.target.position is None  # 'to the left' is where it goes, not where it is
    t = lang.parse_question("Does the lemon turn red?")
    assert t.action.type == "turn" and t.action.value == "red"


def test_the_issue_prompt_gives_the_dog_its_colour_the_beach_the_running_and_the_direction():
    g = lang.scene_graph("a brown dog runs across a sunny beach to the left")
    dog, beach = g["entities"]
    assert (dog["noun"], dog["attributes"], beach["noun"], beach["attributes"]) == ("dog", ["brown"], "beach",
                                                                                    ["sunny"])
    ev = g["events"][0]
    assert (ev["verb"], ev["type"], ev["direction"], ev["object"]) == ("run", "move", "left", beach["id"])
    qs = lang.questions_from_graph(g)
    texts = [q["question"] for q in qs]
    assert texts[:2] == ["Is there a dog?", "Is the dog brown?"]
    assert "Is there a beach?" in texts and "Is the beach sunny?" in texts
    assert "Does the brown dog run across the sunny beach?" in texts
    assert "Does the brown dog run to the left?" in texts
    by_text = {q["question"]: q for q in qs}
    assert by_text["Is the dog brown?"]["depends_on"] == [by_text["Is there a dog?"]["id"]]
    assert by_text["Does the brown dog run to the left?"]["temporal"]


def test_events_in_order_give_before_questions_and_appearing_things_are_temporal():
    g = lang.scene_graph("the athletic shoe moves up quickly, then the athletic shoe turns red, "
                         "then some pancakes appear in the bottom left")
    assert [e["type"] for e in g["events"]] == ["move", "turn", "appear"]
    assert g["events"][1]["value"] == "red"
    assert len(g["entities"]) == 2  # 'the athletic shoe' again is the same entity
    qs = lang.questions_from_graph(g)
    order = [q for q in qs if q["kind"] == "order"]
    assert [q["question"] for q in order] == [
        "Does the shoe move up before the shoe turn red?", "Does the shoe turn red before the pancake appear?"]
    assert all(len(q["depends_on"]) == 2 for q in order)


def test_a_verb_read_as_a_noun_is_repaired():
    g = lang.scene_graph("a pink heart moves to the left")  # the tagger reads 'heart moves' as one noun
    assert [e["noun"] for e in g["entities"]] == ["heart"]
    assert [(e["type"], e["direction"]) for e in g["events"]] == [("move", "left")]
    g = lang.scene_graph("a light bulb moves up, then the light bulb turns red")
    assert [(e["type"], e["direction"], e["value"]) for e in g["events"]] == [("move", "up", None),
                                                                            ("turn", None, "red")]


def test_counts_relations_and_positions():
    g = lang.scene_graph("two radishes to the left of a bus, and a cat in the top right")
    rad, bus, cat = g["entities"]
    assert rad["count"] == 2 and rad["noun"] == "radish" and cat["position"] == "top right"
    assert g["relations"] == [{"subject": rad["id"], "predicate": "left of", "object": bus["id"]}]
    texts = [q["question"] for q in lang.questions_from_graph(g)]
    assert "Are there two radishes?" in texts and "Is the cat in the top right?" in texts
    assert "Are the radishes left of the bus?" in texts


def test_no_object_gives_no_question():
    for prompt in ("and then, quickly!", "it is very nice"):
        assert lang.questions_from_graph(lang.scene_graph(prompt)) == []


def test_no_world_word_list_in_the_language_code():
    """The language layer must not carry the test world's shapes or colours (issue 11)."""
    from vltools.world import vocab

    src = Path(lang.__file__).read_text()
    strings = {n.value.lower() for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Constant)
               and isinstance(n.value, str)}
    words = set(vocab.SHAPES) | set(vocab.COLOUR_NAMES)
    assert not (words & strings), words & strings


@pytest.mark.parametrize(
    ("prompt", "nouns", "events"),
    [
        # The small English model reads these verbs as nouns ('teapot moves', 'poodle moves') or the
        # noun before them as the verb ('cat face/VBP moves/NNS'); the clause is re-read with its predicate.
        ("a teapot moves to the left", ["teapot"], [("move", "move", "left", None)]),
        ("a snail moves to the left", ["snail"], [("move", "move", "left", None)]),
        ("a safety vest moves to the right", ["safety vest"], [("move", "move", "right", None)]),
        ("a poodle moves to the left, then the poodle turns red", ["poodle"],
         [("move", "move", "left", None), ("turn", "turn", None, "red")]),
        ("a cat face moves to the left, then the cat face turns red", ["cat face"],
         [("move", "move", "left", None), ("turn", "turn", None, "red")]),
        ("a croissant turns blue, then the croissant moves down", ["croissant"],
         [("turn", "turn", None, "blue"), ("move", "move", "down", None)]),
        ("two wolves move to the right, then the wolves turn blue", ["wolf"],
         [("move", "move", "right", None), ("turn", "turn", None, "blue")]),
        ("a dog runs across a sunny beach to the left", ["dog", "beach"], [("run", "move", "left", None)]),
        ("the car drives right then the cat jumps", ["car", "cat"],
         [("drive", "move", "right", None), ("jump", "action", None, None)]),
    ],
)
def test_verbs_the_tagger_reads_as_nouns_are_reread(prompt, nouns, events):
    g = lang.scene_graph(prompt)
    assert [e["noun"] for e in g["entities"]] == nouns
    assert [(e["verb"], e["type"], e["direction"], e["value"]) for e in g["events"]] == events
    assert all(e["subject"] == g["entities"][0]["id"] for e in g["events"][:1])
    if len(g["events"]) > 1:
        assert g["events"][1]["after_previous"]


def test_the_reread_keeps_the_words_and_asks_the_motion_question():
    doc = lang._doc("a teapot moves to the left")
    assert [t.text for t in doc] == ["a", "teapot", "moves", "to", "the", "left"]
    assert (doc[2].pos_, doc[2].lemma_, doc[2].tag_) == ("VERB", "move", "VBZ")
    assert doc[1].dep_ == "nsubj" and doc[1].head.i == 2
    texts = [q["question"] for q in lang.questions_from_graph(lang.scene_graph("a teapot moves to the left"))]
    assert texts == ["Is there a teapot?", "Does the teapot move to the left?"]


@pytest.mark.parametrize("caption", ["two dogs and a cat", "a dog on a sunny beach", "a picture of houses",
                                     "a bowl of soup on a table", "three red apples"])
def test_noun_phrases_without_a_verb_stay_noun_phrases(caption):
    assert lang.scene_graph(caption)["events"] == []


@pytest.mark.parametrize(
    ("question", "noun", "attrs", "count"),
    [
        ("Is there a croissant?", "croissant", [], None),  # tagged JJ
        ("Is there a sled?", "sled", [], None),  # tagged VBN
        ("Is there a red rose?", "rose", ["red"], None),  # tagged VB
        ("Are there two stew?", "stew", [], 2),  # tagged JJ
    ],
)
def test_a_determined_argument_the_tagger_reads_as_adjective_or_verb_is_a_noun(question, noun, attrs, count):
    q = lang.parse_question(question)
    assert (q.kind, q.subtype) == ("yesno", "presence")
    assert (q.target.noun, q.target.attributes, q.target.count) == (noun, attrs, count)


def test_predicate_adjectives_stay_attributes():
    q = lang.parse_question("Is the car red?")
    assert (q.subtype, q.target.noun, q.asserted) == ("attribute", "car", ["red"])
    assert [e.noun for e in lang.parse_text("a dog is happy and the sun is bright").entities] == ["dog", "sun"]


@pytest.mark.parametrize(
    ("question", "noun", "count", "asserted"),
    [
        ("Is the dog brown?", "dog", None, ["brown"]),  # read as the noun phrase 'the dog brown'
        ("Is the monkey blue?", "monkey", None, ["blue"]),  # 'monkey blue' with no head noun
        ("Is the tiger blue?", "tiger", None, ["blue"]),  # 'blue' an apposition
        ("Are the two cats purple?", "cat", 2, ["purple"]),  # 'purple' the main verb
    ],
)
def test_a_copular_question_misread_by_the_tagger_is_reread_as_its_statement(question, noun, count, asserted):
    q = lang.parse_question(question)
    assert (q.kind, q.subtype, q.asserted) == ("yesno", "attribute", asserted)
    assert (q.target.noun, q.target.count) == (noun, count)


@pytest.mark.parametrize("question", ["Is the dog on the left?", "Is no circle present?", "Is this a dog?",
                                      "Is the red circle above the blue square?"])
def test_the_statement_reread_leaves_positions_presence_and_relations_alone(question):
    q = lang.parse_question(question)
    assert q.subtype != "attribute" or q.position is not None
