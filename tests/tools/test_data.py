"""data.* tools on world v2 caption files with a planted property each report must find: a skewed concept
distribution (curate_metaclip, cluster_topics), near-identical duplicate captions (cluster_topics,
rewrite_captions), mislabelled pairs (caption_quality, enrich_captions, source_mixture)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import vltools
from vltools.core.errors import Conflict, InvalidInput
from vltools.core.registry import get_registry

CONCEPTS = ["dog", "banana", "train", "guitar", "sunflower", "hammer"]  # world v2 train concepts


@pytest.fixture
def call(run_cli):
    """Run a tool through `vltools call` (in-process CLI); its JSON parsed back into the tool's output model.
    A ToolError comes back as the exception the Python API raises, so tests can match either way."""

    def run(name: str, inp: dict):
        code, out, err = run_cli("call", name, "--json", json.dumps(inp))
        if code != 0:
            vltools.call(name, inp)  # re-raise the same error as a typed exception
            raise AssertionError(f"CLI failed but the API did not: {err}")
        return get_registry().get(name).output_model.model_validate_json(out)

    return run


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def scene_rows(folder: Path, names: list[str], per: int, seed: int, size: int = 64, **kw) -> list[dict]:
    """One single-object world scene per (concept, k): {"image", "text", "concept"}."""
    from vltools.world.objects import generate_object_scene

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for ci, name in enumerate(names):
        for k in range(per):
            sc = generate_object_scene(seed + ci * 1000 + k, concept_names=[name], n_objects=1, image_size=size, **kw)
            p = folder / f"{name.replace(' ', '_')}_{k}.png"
            sc.image.save(p)
            rows.append({"image": str(p), "text": sc.captions[k % min(3, len(sc.captions))], "concept": name})
    return rows


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """48 image-caption pairs (6 concepts x 8) and the same file with 6 captions swapped across concepts."""
    root = tmp_path_factory.mktemp("data_pairs")
    rows = scene_rows(root / "img", CONCEPTS, 8, 51_000_000)
    rng = random.Random(0)
    bad = sorted(rng.sample(range(len(rows)), 6))
    swapped = [dict(r) for r in rows]
    for a, b in zip(bad, bad[1:] + bad[:1], strict=True):
        if rows[a]["concept"] == rows[b]["concept"]:
            continue
        swapped[a]["text"] = rows[b]["text"]
    planted = [i for i in bad if swapped[i]["text"] != rows[i]["text"]]
    assert len(planted) >= 4
    return root, write_jsonl(root / "clean.jsonl", rows), write_jsonl(root / "swapped.jsonl", swapped), planted


# -- data.curate_metaclip ------------------------------------------------------------------------------------
def skewed_captions() -> list[dict]:
    """200 world captions: 'dog' in 120 of them (the planted head), the other concepts ~16 each."""
    from vltools.world.objects import generate_object_scene

    rows = []
    for k in range(200):
        name = "dog" if k < 120 else CONCEPTS[1 + k % 5]
        sc = generate_object_scene(52_000_000 + k, concept_names=[name], n_objects=1, image_size=32)
        rows.append({"text": sc.captions[k % len(sc.captions)], "source": "world"})
    rows.append({"text": "a blurry picture of nothing in particular"})
    return rows


def test_curate_metaclip_caps_the_planted_head(tmp_path, run_cli, call):
    data = write_jsonl(tmp_path / "skewed.jsonl", skewed_captions())
    inp = {"data": str(data), "out": str(tmp_path / "curated.jsonl"), "entries": CONCEPTS + ["zebra"], "t": 20}
    code, out, err = run_cli("call", "data.curate_metaclip", "--json", json.dumps(inp))
    assert code == 0, err
    rep = json.loads(out)
    assert rep["head_entries"] == ["dog"] and rep["unmatched"] == 1
    assert rep["before"]["top"][0] == ["dog", 120] and rep["before"]["head_share"] > 0.55
    after = dict(rep["after"]["top"])
    assert 8 <= after["dog"] <= 40  # kept with probability 20/120
    assert all(after[c] == dict(rep["before"]["top"])[c] for c in CONCEPTS[1:])  # tail entries kept whole
    assert rep["after"]["entropy"] > rep["before"]["entropy"] + 0.1
    lines = [json.loads(ln) for ln in (tmp_path / "curated.jsonl").read_text().splitlines()]
    assert len(lines) == rep["after"]["records"] and all(r["entries"] and r["source"] == "world" for r in lines)
    with pytest.raises(Conflict):  # never over an existing output unless asked
        call("data.curate_metaclip", inp)
    again = call("data.curate_metaclip", {**inp, "overwrite": True})
    assert again.after.top == [tuple(x) for x in rep["after"]["top"]]  # seeded: same selection


def test_curate_needs_entries(tmp_path, call):
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": "a dog"}])
    with pytest.raises(InvalidInput, match="no entries"):
        call("data.curate_metaclip", {"data": str(data), "out": str(tmp_path / "o.jsonl")})


# -- data.cluster_topics ----------------------------------------------------------------------------------------
def test_cluster_topics_names_skewed_topics_and_finds_planted_duplicates(tmp_path, call):
    from vltools.world.objects import generate_object_scene

    rows = []
    for k in range(90):  # topics dog 50%, banana 33%, train 17% (varied phrasings)
        name = "dog" if k < 45 else "banana" if k < 75 else "train"
        sc = generate_object_scene(53_000_000 + k, concept_names=[name], n_objects=1, image_size=32)
        rows.append({"text": sc.captions[k % len(sc.captions)]})
    planted = ["A guitar on a wooden stage at night", "a hammer lying next to some nails on a workbench"]
    for text in planted:  # near-identical copies: case, punctuation, spacing
        rows += [{"text": text}, {"text": text.upper() + "."}, {"text": "  " + text.lower() + " !"}]
    out = call("data.cluster_topics", {"data": str(write_jsonl(tmp_path / "p.jsonl", rows)),
                                               "out": str(tmp_path / "topics.jsonl")})
    by_term = {t.terms[0]: t for t in out.topics}
    assert {"dog", "banana", "train"} <= set(by_term)
    assert by_term["dog"].count >= 40 and by_term["banana"].count >= 27 and by_term["train"].count >= 13
    assert by_term["dog"].count > by_term["banana"].count > by_term["train"].count
    ann = [json.loads(ln) for ln in (tmp_path / "topics.jsonl").read_text().splitlines()]
    for start in (90, 93):  # each planted triple is one duplicate group, holding nothing else
        g = ann[start]["duplicate_group"]
        assert g is not None and ann[start + 1]["duplicate_group"] == g == ann[start + 2]["duplicate_group"]
        assert sum(r["duplicate_group"] == g for r in ann) == 3
    assert ann[90]["duplicate_group"] != ann[93]["duplicate_group"]
    assert out.duplicate_texts >= 4 and out.duplicate_groups >= 2


# -- data.rewrite_captions ------------------------------------------------------------------------------------------
def test_rewrite_rules_keep_meaning_and_add_diversity(tmp_path, call):
    from vltools.world.objects import generate_object_scene

    rows = []
    for k in range(12):
        sc = generate_object_scene(54_000_000 + k, split="train", n_objects=2, image_size=32)
        rows.append({"text": sc.captions[0]})
    rows += [{"text": rows[0]["text"].upper()}, {"text": rows[0]["text"] + "."}, {"text": rows[1]["text"] + " "}]
    out = call("data.rewrite_captions", {"data": str(write_jsonl(tmp_path / "c.jsonl", rows)),
                                                 "out": str(tmp_path / "r.jsonl"), "n": 3})
    assert out.input_duplicate_groups == 2 and out.input_unique == pytest.approx(12 / 15, abs=1e-3)
    assert out.pool_unique > out.input_unique and out.bigrams_after > 1.5 * out.bigrams_before
    assert out.lexical_change > 0.2
    assert out.rewrites >= 30 and out.similarity_mean > 0.75 and out.similarity_min >= 0.6
    lines = [json.loads(ln) for ln in (tmp_path / "r.jsonl").read_text().splitlines()]
    for r in lines:  # the objects named stay named
        from vltools.tools.data._io import words

        nouns = {w for w in words(r["text"]) if len(w) > 3} - {"left", "right", "bottom", "centre", "middle"}
        for rw in r["rewrites"]:
            assert rw.lower() != r["text"].lower()
            assert nouns <= set(words(rw)) | {"centre", "little", "large", "small", "big"}, (r["text"], rw)


def test_rewrite_llm_mode_filters_rewrites_that_change_the_meaning(tmp_path, call):
    from vltools.testing.scripted_llm import ScriptedLLM, installed

    def respond(messages):
        text = messages[-1]["content"].rsplit("Caption: ", 1)[1].split("\nRewrite:")[0]
        if "dog" in text:
            return "Rewrite: the stock market fell sharply on monday"  # meaning lost: must be rejected
        return f"Rewrite: {text} in the picture"

    rows = [{"text": "a dog on the grass"}, {"text": "a red bicycle next to a tree"}]
    with installed(ScriptedLLM({}, respond=respond)) as llm:
        out = call("data.rewrite_captions", {"data": str(write_jsonl(tmp_path / "c.jsonl", rows)),
                                                     "out": str(tmp_path / "r.jsonl"), "mode": "llm",
                                                     "llm": llm.spec, "n": 1})
    lines = [json.loads(ln) for ln in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert lines[0]["rewrites"] == [] and lines[1]["rewrites"] == ["a red bicycle next to a tree in the picture"]
    assert out.rejected == 1 and out.rewrites == 1


# -- data.caption_quality ---------------------------------------------------------------------------------------------
def test_caption_quality_flags_the_planted_mislabelled_pairs(pairs, tmp_path, call):
    root, clean, swapped, planted = pairs
    out = call("data.caption_quality", {"data": str(swapped), "concepts": CONCEPTS,
                                                "out": str(tmp_path / "q.jsonl")})
    flagged = {p.row for p in out.flagged_pairs}
    hit = len(flagged & set(planted))
    assert hit >= len(planted) - 1, (flagged, planted)
    assert len(flagged) <= 2 * len(planted)
    ref = call("data.caption_quality", {"data": str(clean)})
    assert ref.flagged < out.flagged and ref.mean_clip_score > out.mean_clip_score
    rows = [json.loads(ln) for ln in (tmp_path / "q.jsonl").read_text().splitlines()]
    assert [i for i, r in enumerate(rows) if not r["keep"]] == sorted(flagged)
    assert out.coverage is not None and out.coverage < ref.coverage if ref.coverage is not None else True


# -- data.enrich_captions ------------------------------------------------------------
def test_enrich_adds_visual_concepts_and_finds_unrelated_alt_text(pairs, tmp_path, call):
    root, clean, swapped, planted = pairs
    rows = [json.loads(ln) for ln in swapped.read_text().splitlines()]
    for i in range(0, len(rows), 4):  # vague alt text on a quarter of the rows
        if i not in planted:
            rows[i]["text"] = "my holiday snapshot"
    data = write_jsonl(tmp_path / "alt.jsonl", rows)
    out = call("data.enrich_captions", {"data": str(data), "out": str(tmp_path / "e.jsonl"),
                                                "concepts": CONCEPTS, "top_k": 1, "min_prob": 0.0})
    vague = [i for i in range(0, len(rows), 4) if i not in planted]
    missing = set(out.missing_rows)
    assert len(missing & set(planted)) >= len(planted) - 1
    assert len(missing & set(vague)) >= len(vague) - 1
    lines = [json.loads(ln) for ln in (tmp_path / "e.jsonl").read_text().splitlines()]
    right = sum(lines[i]["visual_concepts"][0] == rows[i]["concept"] for i in vague)
    assert right >= 0.8 * len(vague)
    for i in vague:
        assert lines[i]["enriched"] == f"my holiday snapshot, with {lines[i]['visual_concepts'][0]}"


# -- data.source_mixture ------------------------------------------------------------
@pytest.mark.heavy
def test_source_mixture_finds_the_noisy_source(tmp_path, call):
    from vltools.world.concept_table import concept_names

    new = concept_names("heldout")[::18][:5]  # concepts the demo CLIP was not trained on
    rows = []
    for src, seed in (("clean", 55_000_000), ("web", 56_000_000), ("noisy", 57_000_000)):
        part = scene_rows(tmp_path / src, new, 8, seed, size=96)
        for r in part:
            rows.append({"image": r["image"], "text": f"a photo of a {r['concept']}", "source": src})
        if src == "noisy":  # every caption names another concept
            for r in rows[-len(part):]:
                r["text"] = f"a photo of a {new[(new.index(r['text'][len('a photo of a '):]) + 1) % len(new)]}"
    data = write_jsonl(tmp_path / "mix.jsonl", rows)

    def folder(name, seed, **kw):
        for r in scene_rows(tmp_path / name / "_all", new, 6, seed, size=96, **kw):
            d = tmp_path / name / r["concept"].replace(" ", "_")
            d.mkdir(exist_ok=True)
            Path(r["image"]).rename(d / Path(r["image"]).name)
        (tmp_path / name / "_all").rmdir()
        return str(tmp_path / name)

    # shifted: another background and larger objects than any training image
    tests = {"heldout": folder("test", 58_000_000),
             "shifted": folder("shift", 59_000_000, background="indoor", scale=(0.35, 0.45))}
    out = call("data.source_mixture", {"data": str(data), "test_sets": tests, "steps": 150})
    acc = {r.model: r.accuracy for r in out.results}
    assert out.pairs == 40 and out.sources == {"clean": 40, "noisy": 40, "web": 40}
    for name in tests:
        assert out.worst_source[name] == "noisy"
        assert acc["source:clean"][name] > acc["base"][name] + 0.2
        assert out.effect["noisy"][name] < 0  # the mixture is better without it
