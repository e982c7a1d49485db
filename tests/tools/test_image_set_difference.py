"""image.set_difference (VisDiff, P32): the planted difference ("set A has top hats") ranks first with
the demo CLIP; given candidates are ranked by AUROC; the LLM proposer path; degradation when
caption.zero_shot is not registered; errors; plumbing on a tiny random open_clip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vltools.core.context import Context
from vltools.core.errors import InvalidInput
from vltools.core.registry import get_registry
from vltools.core.settings import Settings
from vltools.tools._set_difference import caption_phrases, propose_from_counts

SEED = 8_140_000


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """Ten pairs of scenes: A = some object + a top hat, B = the same object + another one; a vocabulary."""
    from vltools.world import generate_object_scene
    from vltools.world.concept_table import concept_names

    folder = tmp_path_factory.mktemp("sets")
    rng = np.random.default_rng(0)
    names = [n for n in concept_names("train") if "hat" not in n and "cap" not in n]
    a, b = [], []
    for i in range(10):
        x, y = (names[int(j)] for j in rng.choice(len(names), 2, replace=False))
        pa, pb = folder / f"a{i}.png", folder / f"b{i}.png"
        generate_object_scene(SEED + i, concept_names=[x, "top hat"], image_size=112).image.save(pa)
        generate_object_scene(SEED + i, concept_names=[x, y], image_size=112).image.save(pb)
        a.append(str(pa))
        b.append(str(pb))
    vocabulary = [str(v) for v in rng.choice(names, 40, replace=False)] + ["top hat"]
    settings = Settings(allowed_roots=[folder], home=tmp_path_factory.mktemp("home"), device="cpu")
    return a, b, vocabulary, settings


def call(inp, settings):
    return get_registry().call("image.set_difference", inp, ctx=Context(settings=settings))


@pytest.mark.heavy
def test_the_planted_difference_ranks_first(sets):
    a, b, vocabulary, settings = sets
    out = call({"set_a": a, "set_b": b, "vocabulary": vocabulary, "captioner": "vocabulary"}, settings)
    assert out.proposer == "vocabulary" and "vocabulary asked for" in out.notices[0]
    top = out.differences[0]
    assert top.description == "top hat", out.differences[:3]
    assert top.auroc >= 0.85 and top.mean_a > top.mean_b
    assert [d.auroc for d in out.differences] == sorted((d.auroc for d in out.differences), reverse=True)


@pytest.mark.heavy
def test_given_candidates_are_ranked_by_auroc(sets):
    a, b, _, settings = sets
    out = call({"set_a": a, "set_b": b, "candidates": ["a dog", "a top hat", "a car", "a tree"]}, settings)
    assert out.proposer == "given" and out.differences[0].description == "a top hat"
    # swapping the sets turns the planted difference into the least A-like description
    rev = call({"set_a": b, "set_b": a, "candidates": ["a dog", "a top hat", "a car", "a tree"]}, settings)
    hat = next(d for d in rev.differences if d.description == "a top hat")
    assert hat.auroc <= 0.2 and rev.differences[-1].description == "a top hat"


def test_llm_proposer_reads_captions(sets, monkeypatch, spec, settings):
    """The LLM sees both sets' captions and its lines become candidates (a scripted LLM at the boundary)."""
    a, b, vocabulary, _ = sets
    seen = {}

    class Scripted:
        def generate(self, messages, **kw):
            seen["prompt"] = messages[0]["content"]
            return "1. a top hat\n- two objects\n"

    monkeypatch.setattr(Context, "llm", lambda self, spec=None: Scripted())
    s = settings.model_copy(update={"allowed_roots": [*settings.allowed_roots, *{p.rsplit("/", 1)[0] for p in a}]})
    out = call({"set_a": a, "set_b": b, "vocabulary": vocabulary, "llm": "smollm2", "clip": spec,
                "captioner": "vocabulary"}, s)
    assert out.proposer == "llm"
    assert "Set A captions" in seen["prompt"] and "Set B captions" in seen["prompt"]
    assert sorted(d.description for d in out.differences) == ["a top hat", "two objects"]
    assert all(d.source == "llm" for d in out.differences)


def test_phrase_proposer_counts_document_frequency():
    a = [caption_phrases(["a dog and a top hat"]), caption_phrases(["a cat with a top hat"])]
    b = [caption_phrases(["a dog and a cat"]), caption_phrases(["a cat"])]
    props = propose_from_counts(a, b, 3)
    assert props[0] in ("top hat", "hat", "top")
    assert "cat" not in props


def test_without_caption_zero_shot_the_vocabulary_captions(sets, spec, settings):
    a, b, vocabulary, _ = sets
    if "caption.zero_shot" in get_registry().names():
        pytest.skip("caption.zero_shot is registered here")
    s = settings.model_copy(update={"allowed_roots": [*settings.allowed_roots, *{p.rsplit("/", 1)[0] for p in a}]})
    out = call({"set_a": a[:2], "set_b": b[:2], "vocabulary": vocabulary[:5], "clip": spec}, s)
    assert out.proposer == "vocabulary" and "caption.zero_shot is not registered" in out.notices[0]


def test_nothing_to_propose_from(sets):
    a, b, _, settings = sets
    with pytest.raises(InvalidInput) as err:
        call({"set_a": a, "set_b": b}, settings)
    assert "vocabulary" in err.value.hint


def test_cli_plumbing_on_a_tiny_random_open_clip(sets, spec, run_cli, monkeypatch):
    a, b, vocabulary, _ = sets
    model_dir = spec.split("local-dir:", 1)[1]
    monkeypatch.setenv("VLTOOLS_MODEL_DIRS", json.dumps([model_dir]))
    from vltools.core.settings import reset_settings

    reset_settings()
    try:
        code, out, err = run_cli("call", "image.set_difference", "--json", json.dumps(
            {"set_a": a[:3], "set_b": b[:3], "vocabulary": vocabulary[:10], "clip": spec, "top_k": 4}))
    finally:
        monkeypatch.delenv("VLTOOLS_MODEL_DIRS")
        reset_settings()
    assert code == 0, err
    res = json.loads(out)
    assert 1 <= len(res["differences"]) <= 4 and all(0 <= d["auroc"] <= 1 for d in res["differences"])


@pytest.mark.heavy
@pytest.mark.parametrize("clip", ["demo", "open_clip:ViT-B-32/random"])
def test_cli_on_demo_and_random_vit_b_32(sets, clip, run_cli):
    a, b, vocabulary, _ = sets
    code, out, err = run_cli("call", "image.set_difference", "--json", json.dumps(
        {"set_a": a[:4], "set_b": b[:4], "vocabulary": vocabulary[:12], "clip": clip, "top_k": 3}))
    assert code == 0, err
    assert len(json.loads(out)["differences"]) == 3
