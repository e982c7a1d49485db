"""Question parsing, statements and scene graphs behind vqa.zero_shot and t2v (pure Python, fast)."""

from __future__ import annotations

import pytest

from vltools.tools import _vl_language as lang


@pytest.mark.parametrize(
    ("question", "kind", "target", "tests", "negated"),
    [
        ("what is the red shape?", "shape", {"colour": "red"}, [], False),
        ("what is the color of the triangle?", "colour", {"shape": "triangle"}, [], False),
        ("what colour is the shape?", "colour", {}, [], False),
        ("how many red circles are there?", "count", {"shape": "circle", "colour": "red"}, [], False),
        ("where is the blue star?", "position", {"shape": "star", "colour": "blue"}, [], False),
        ("is there a red circle?", "yesno", {"shape": "circle", "colour": "red"},
         [("shape", "circle"), ("colour", "red")], False),
        ("is there not a black shape in the image?", "yesno", {"colour": "black"}, [("colour", "black")], True),
        ("is no rectangle present?", "yesno", {"shape": "rectangle"}, [("shape", "rectangle")], True),
        ("does the image not contain a gray shape?", "yesno", {"colour": "gray"}, [("colour", "gray")], True),
        ("is the circle red?", "yesno", {"shape": "circle", "colour": "red"}, [("colour", "red")], False),
        ("are there two circles?", "yesno", {"shape": "circle", "count": 2}, [("shape", "circle"), ("count", 2)],
         False),
        ("is the star in the top left?", "yesno", {"shape": "star", "position": "top left"},
         [("position", "top left")], False),
        ("what is in the image?", "other", {}, [], False),
    ],
)
def test_parse_question(question, kind, target, tests, negated):
    p = lang.parse_question(question)
    assert p.kind == kind
    assert p.target.to_dict() == target
    assert p.tests == tests
    assert p.negated is negated


def test_relations_and_events():
    p = lang.parse_question("Is the red circle above the green square?")
    assert (p.relation, p.target.colour, p.other.shape) == ("above", "red", "square")
    assert lang.parse_question("does the red circle move to the left?").event == "move:left"
    assert lang.parse_question("Does the blue square disappear?").event == "disappear"
    assert lang.parse_question("does the circle turn green?").event == "turn:green"
    assert lang.parse_question("does the star not move up?").negated


def test_statements_and_alternatives():
    obj = lang.Obj(shape="circle", colour="red")
    assert lang.statement(obj) == "there is a red circle"
    assert lang.statement(lang.Obj(shape="cross", count=2)) == "there are two crosses"
    alts = lang.alternatives(obj, "colour", "red")
    assert lang.statement(alts[0]) == "there is a red circle"
    assert len(alts) == len(lang.COLOURS) and all(a.shape == "circle" for a in alts)
    assert lang.with_value(lang.Obj(shape="star"), "position", "top right").phrase() == "a star in the top right"


def test_scene_graph_and_questions():
    g = lang.parse_scene_graph("two small blue squares on the left and a green star above them, then the star "
                               "moves to the right")
    ents = {e["id"]: e for e in g["entities"]}
    assert ents["e1"] == {"id": "e1", "shape": "square", "colour": "blue", "size": "small", "count": 2,
                          "position": "left"}
    assert ents["e2"]["shape"] == "star" and ents["e2"]["colour"] == "green"
    assert g["relations"] == [{"subject": "e2", "predicate": "above", "object": "e1"}]
    assert g["events"] == [{"subject": "e2", "type": "move", "direction": "right"}]
    qs = lang.questions_from_graph(g)
    texts = [q["question"] for q in qs]
    assert "Is there a square?" in texts and "Are there two blue squares?" in texts
    assert "Is the green star above the small blue squares?" in texts
    assert "Does the green star move to the right?" in texts
    by_text = {q["question"]: q for q in qs}
    assert by_text["Is the square blue?"]["depends_on"] == [by_text["Is there a square?"]["id"]]
    assert by_text["Does the green star move to the right?"]["temporal"]
    # Every generated question is understood by the VQA parser.
    for q in texts:
        assert lang.parse_question(q).kind == "yesno", q


def test_prompt_without_visual_words_gives_no_graph():
    g = lang.parse_scene_graph("a beautiful sunset over the sea")
    assert g == {"entities": [], "relations": [], "events": []}
