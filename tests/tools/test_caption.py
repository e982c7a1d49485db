"""caption.zero_shot (text-only decoder, MacCap + DeCap's memory projection) and caption.rerank (CLIP reward)
on world v2 scenes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import vltools
from vltools.core.errors import InvalidInput

from ..models.tiny_clip import make_tiny_clip


@pytest.fixture(scope="module")
def one_object_scenes(tmp_path_factory):
    """Held-out (never trained on, never used to choose options) one-object world v2 scenes of train
    concepts: (path, concept, names and aliases)."""
    from vltools.world import concepts, generate_object_scene

    table = {c["name"]: c for c in concepts()}
    d = tmp_path_factory.mktemp("caption_scenes")
    out = []
    for k in range(10):
        sc = generate_object_scene(29_900_000 + k, n_objects=1, split="train")
        name = sc.labels["objects"][0]["concept"]
        p = d / f"s{k}.png"
        sc.image.save(p)
        out.append((str(p), name, [name, *table[name]["aliases"]]))
    return out


PREVIOUS = {"objects": False, "regions": True, "prior": 0.0}  # session 3's default decoding


@pytest.fixture(scope="module")
def two_object_scenes(tmp_path_factory):
    """Held-out two-object world v2 scenes of train concepts (seeds no benchmark uses):
    (path, objects as the world labels them)."""
    from vltools.world import generate_object_scene

    d = tmp_path_factory.mktemp("caption_scenes2")
    out = []
    for k in range(10):
        sc = generate_object_scene(29_905_000 + k, n_objects=2, split="train")
        p = d / f"t{k}.png"
        sc.image.save(p)
        out.append((str(p), sc.labels["objects"]))
    return out


def _precision(scenes, **extra) -> float:
    """Mean concept precision of the captions (benchmarks/bench_caption.py's scoring: a concept is named
    by its name or an alias)."""
    import sys

    from vltools.world import concepts

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from bench_caption import score

    table = {c["name"]: c for c in concepts()}
    caps = [vltools.call("caption.zero_shot", {"image": p, "model": "demo", **extra}).caption for p, _ in scenes]
    return float(np.mean([score(c, objs, table)["precision"] for c, (_, objs) in zip(caps, scenes, strict=True)]))


def _names(caption: str, forms: list[str]) -> bool:
    import re

    return any(re.search(rf"\b{re.escape(f)}\b", caption) for f in forms)


def _hits(scenes, **extra) -> int:
    return sum(_names(vltools.call("caption.zero_shot", {"image": p, "model": "demo", **extra}).caption, forms)
               for p, _, forms in scenes)


def test_projection_is_a_softmax_mix_of_the_memory():
    from vltools.models import caption_decoder as cd

    rng = np.random.default_rng(0)
    mem = rng.normal(size=(50, 16)).astype(np.float32)
    mem /= np.linalg.norm(mem, axis=1, keepdims=True)
    v = mem[7] + 0.3 * rng.normal(size=16).astype(np.float32)
    sharp = cd.project(v, mem, 1e-4)
    assert np.allclose(sharp, mem[np.argmax(mem @ v)], atol=1e-4)  # low temperature: the nearest caption
    flat = cd.project(v, mem, 1e4)
    mean = mem.mean(0) / np.linalg.norm(mem.mean(0))
    assert float(flat @ mean) > 0.999  # high temperature: the memory's mean direction
    q, scale = cd.quantize_memory(mem)
    assert q.dtype == np.int8
    back = q.astype(np.float32) * scale[:, None]
    back /= np.linalg.norm(back, axis=1, keepdims=True)
    assert float((back * mem).sum(1).min()) > 0.999


def test_decoder_round_trips_text_embeddings():
    """The committed decoder reconstructs captions from their own (noise-free) text embeddings, and
    guidance against the null condition keeps the conditioned content."""
    from vltools.core.settings import get_settings
    from vltools.models import caption_decoder as cd
    from vltools.models.clip import get_clip

    dec = cd.load(cd.default_path("demo"))
    assert dec.memory is not None and dec.memory.shape[1] == dec.dim
    clip = get_clip("demo", get_settings())
    texts = ["a dog", "two bananas", "a bicycle on the left"]
    emb, _ = clip.encode_texts(texts)
    got = [dec.decode(e, beams=3, n_best=1)[0][0] for e in emb]
    assert got[0] == "a dog" and "banana" in got[1] and "bicycle" in got[2], got
    uncond = dec.decode(np.zeros(dec.dim, dtype=np.float32), beams=3, n_best=1)[0][0]
    guided = dec.decode(emb[0], beams=3, n_best=1, guidance=2.0)[0][0]
    assert "dog" in guided and uncond != guided


def test_zero_shot_names_the_object_of_one_object_scenes(one_object_scenes, run_cli):
    hits = 0
    for path, _name, forms in one_object_scenes:
        out = vltools.call("caption.zero_shot", {"image": path, "model": "demo"})
        assert out.caption == out.candidates[0].caption and 1 <= len(out.candidates) <= 5
        assert [c.score for c in out.candidates] == sorted((c.score for c in out.candidates), reverse=True)
        hits += _names(out.caption, forms)
    # Issue 11: "names its object (or an alias) most of the time" (10 scenes; chance is ~10/598; the
    # gap-shift decoding named 0-1 of them, benchmarks/README.md). Measured 8.
    assert hits >= 7, hits
    code, out, err = run_cli("call", "caption.zero_shot", "--json", json.dumps({"image": one_object_scenes[0][0]}))
    assert code == 0, err
    assert set(json.loads(out)) >= {"caption", "candidates"}


def test_captions_follow_the_image_not_the_prior(one_object_scenes, monkeypatch):
    """Control: with each scene's features swapped for the next scene's, the captions name the wrong
    objects - the naming comes from the image, not from a frequent caption."""
    from PIL import Image

    from vltools.tools import _vqa_engine as eng

    real = eng.region_features
    paths = [str(Path(p).resolve()) for p, _, _ in one_object_scenes]

    def shuffled(clip, image, key, **kw):
        nxt = paths[(paths.index(str(Path(key[0]).resolve())) + 1) % len(paths)]
        return real(clip, Image.open(nxt).convert("RGB"), None, **kw)

    from vltools.tools import caption

    real_objects = caption.object_features

    def shuffled_objects(clip, image):
        k = [np.asarray(Image.open(p).convert("RGB")).tobytes() == np.asarray(image).tobytes() for p in paths]
        return real_objects(clip, Image.open(paths[(k.index(True) + 1) % len(paths)]).convert("RGB"))

    monkeypatch.setattr(eng, "region_features", shuffled)
    monkeypatch.setattr(caption, "object_features", shuffled_objects)
    assert _hits(one_object_scenes) <= 2


def test_memory_projection_beats_the_gap_shift(one_object_scenes):
    """The DeCap projection is what makes the decoder name objects: the old mean-offset shift on the
    same decoder names fewer."""
    assert _hits(one_object_scenes, **PREVIOUS) >= _hits(one_object_scenes, **PREVIOUS, projection="gap") + 3


def test_object_views_drop_objects_the_image_does_not_hold(two_object_scenes, one_object_scenes):
    """Decoding from the object proposals' views and scoring candidates against them (the session-4
    default) names far fewer absent objects than the previous decoding (grid regions, CLIP-S against
    the whole image), and no fewer present ones; the object views, not the fluency prior alone, do it."""
    new = _precision(two_object_scenes)
    assert new >= _precision(two_object_scenes, **PREVIOUS) + 0.25, new  # measured 0.75 vs 0.28
    assert new >= _precision(two_object_scenes, objects=False) + 0.2, new
    assert _hits(one_object_scenes) >= _hits(one_object_scenes, **PREVIOUS)  # measured 8 vs 6


def test_noisy_samples_add_candidates_deterministically(one_object_scenes):
    path = one_object_scenes[0][0]
    plain = vltools.call("caption.zero_shot", {"image": path, "model": "demo", "n": 20})
    sampled = [vltools.call("caption.zero_shot", {"image": path, "model": "demo", "n": 20, "samples": 3})
               for _ in range(2)]
    assert sampled[0] == sampled[1]  # seeded: the tool stays idempotent
    assert len(sampled[0].candidates) > len(plain.candidates)
    # the sampled pool contains the plain one, so its best CLIP reward is at least as high
    assert sampled[0].candidates[0].score >= plain.candidates[0].score


def test_caller_memory_and_fallback(one_object_scenes, tmp_path_factory):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from vltools.models import caption_decoder as cd

    d = tmp_path_factory.mktemp("caption_memory")
    path, name, forms = one_object_scenes[0]
    other = one_object_scenes[1][1]
    mem = d / "memory.txt"
    mem.write_text(f"a {name}\na {other}\ntwo {other}s on the left\n")
    out = vltools.call("caption.zero_shot", {"image": path, "model": "demo", "memory": str(mem)})
    assert _names(out.caption, forms), out.caption
    (d / "empty.txt").write_text("\n \n")
    with pytest.raises(InvalidInput, match="no caption"):
        vltools.call("caption.zero_shot", {"image": path, "model": "demo", "memory": str(d / "empty.txt")})
    src = str(cd.default_path("demo"))
    state = load_file(src)
    with safe_open(src, "pt") as fh:
        meta = dict(fh.metadata())
    for k in ("memory", "memory_scale"):
        state.pop(k)
    save_file(state, str(d / "no_memory.safetensors"), metadata=meta)
    out = vltools.call("caption.zero_shot", {"image": path, "model": "demo",
                                             "decoder": str(d / "no_memory.safetensors")})
    assert out.notice and "no caption memory" in out.notice and out.caption


def test_rerank_prefers_the_true_caption(one_object_scenes):
    wins = 0
    scenes = one_object_scenes[:6]
    for i, (path, name, _) in enumerate(scenes):
        other = scenes[(i + 1) % len(scenes)][1]
        out = vltools.call("caption.rerank", {"image": path, "captions": [f"a {other}", f"a {name}"],
                                              "model": "demo"})
        assert [c.caption for c in out.candidates] in ([f"a {other}", f"a {name}"], [f"a {name}", f"a {other}"])
        wins += out.caption == f"a {name}"
    assert wins >= 5, wins


def test_clear_errors(one_object_scenes, tmp_path_factory, tmp_path):
    spec = f"open_clip:local-dir:{make_tiny_clip(tmp_path_factory.mktemp('tiny_clip'))}"
    with pytest.raises(Exception, match="no caption decoder") as e:
        vltools.call("caption.zero_shot", {"image": one_object_scenes[0][0], "model": spec})
    assert "train_caption_decoder.py" in e.value.hint
    with pytest.raises(InvalidInput, match="does not exist"):
        vltools.call("caption.zero_shot", {"image": one_object_scenes[0][0], "decoder": str(tmp_path / "x.st")})
    with pytest.raises(InvalidInput, match="non-empty"):
        vltools.call("caption.rerank", {"image": one_object_scenes[0][0], "captions": ["a dog", "  "]})
