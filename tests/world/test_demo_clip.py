"""The demo CLIP as shipped: loads offline through open_clip, keeps the MiniLM text tower, and really
classifies freshly generated held-out world scenes; world.generate writes a dataset."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from vltools.core.context import Context
from vltools.core.errors import Conflict, InvalidInput
from vltools.core.registry import get_registry
from vltools.core.settings import Settings


@pytest.fixture(scope="module")
def demo():
    pytest.importorskip("open_clip")
    from vltools.models.clip_demo import load_demo

    switches = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    before = {k: os.environ.pop(k, None) for k in switches}  # conftest sets them; load without them
    try:
        loaded = load_demo("cpu")
        assert [k for k in switches if k in os.environ] == []  # no process-wide offline switch: local paths only
    finally:
        os.environ.update({k: v for k, v in before.items() if v is not None})
    return loaded


def test_world_generate_writes_images_videos_and_labels(tmp_path):
    settings = Settings(allowed_roots=[tmp_path], home=tmp_path / "home")
    seen = []
    ctx = Context(settings=settings, progress=lambda d, t, n: seen.append((d, t)))
    out = get_registry().call(
        "world.generate", {"out_dir": str(tmp_path / "ds"), "images": 4, "videos": 1, "seed": 3}, ctx=ctx
    )
    out = out if isinstance(out, dict) else out.model_dump()
    assert out["images"] == 4 and out["videos"] == 1
    recs = [json.loads(x) for x in open(out["labels"])]
    assert [r["kind"] for r in recs] == ["image"] * 4 + ["video"]
    for r in recs:
        assert os.path.getsize(tmp_path / "ds" / r["file"]) > 0
    assert recs[-1]["events"] and recs[-1]["events"][0]["end"] > recs[-1]["events"][0]["start"]
    assert seen[-1] == (5, 5)
    # deterministic: the same call elsewhere gives identical files and labels
    out2 = get_registry().call(
        "world.generate", {"out_dir": str(tmp_path / "ds2"), "images": 4, "videos": 0, "seed": 3}, ctx=ctx
    )
    out2 = out2 if isinstance(out2, dict) else out2.model_dump()
    for a, b in zip(out["image_files"], out2["image_files"], strict=True):
        assert open(a, "rb").read() == open(b, "rb").read()
    with pytest.raises(Conflict):
        get_registry().call("world.generate", {"out_dir": str(tmp_path / "ds"), "images": 1}, ctx=ctx)
    with pytest.raises(InvalidInput):
        get_registry().call("world.generate", {"out_dir": "/proc/nope", "images": 1}, ctx=ctx)


@pytest.mark.heavy
def test_demo_weights_are_a_package_resource_and_training_scripts_are_not_in_the_package():
    import importlib.util
    import tomllib
    from pathlib import Path

    from vltools.models.clip_demo import WEIGHTS_FILE, weights_resource

    res = weights_resource()
    assert res.is_file() and res.name == WEIGHTS_FILE == "demo_shapes_clip.safetensors"
    assert Path(str(res)).parent.name == "weights" and Path(str(res)).parent.parent.name == "models"
    repo = Path(__file__).resolve().parents[2]
    data = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["vltools"]
    assert "models/weights/*" in data
    for name in ("vltools.world.train_demo", "vltools.world.eval_demo"):
        assert importlib.util.find_spec(name) is None
    assert (repo / "scripts" / "train_demo_clip.py").is_file() and (repo / "scripts" / "eval_demo_clip.py").is_file()
    import ast

    for py in (repo / "vltools").rglob("*.py"):  # the package never imports the scripts
        for node in ast.walk(ast.parse(py.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.startswith("scripts") or n.endswith(("_demo_clip", "train_demo", "eval_demo"))
                           for n in names), (py, names)


@pytest.mark.heavy
def test_demo_loads_offline_with_locked_minilm_text_tower(demo):
    import torch

    model, preprocess, tokenizer = demo
    assert type(model).__name__ == "CustomTextCLIP"
    assert all(not p.requires_grad for p in model.text.parameters())
    # the text tower is MiniLM itself: its embedding equals sentence-transformers' (mean pooled, normalised)
    from sentence_transformers import SentenceTransformer

    from vltools.models.clip_demo import minilm_dir

    st = SentenceTransformer(str(minilm_dir()), device="cpu")
    texts = ["a red circle", "two small blue stars on the left"]
    ref = st.encode(texts, normalize_embeddings=True)
    with torch.no_grad():
        ours = torch.nn.functional.normalize(model.encode_text(tokenizer(texts)), dim=-1).numpy()
    assert np.allclose(ours, ref, atol=1e-4)


@pytest.mark.heavy
def test_demo_classifies_fresh_held_out_scenes(demo):
    import torch

    from vltools.world import vocab
    from vltools.world.scene import generate_scene

    model, preprocess, tokenizer = demo
    classes = [(c, s) for c in vocab.COLOUR_NAMES for s in vocab.SHAPES]
    with torch.no_grad():
        T = model.encode_text(tokenizer([f"a {c} {s}" for c, s in classes]))
        T = torch.nn.functional.normalize(T, dim=-1)
        scenes = [generate_scene(77_000_000 + k, single=True) for k in range(24)]  # seeds never used in training
        X = model.encode_image(torch.stack([preprocess(sc.image) for sc in scenes]))
        X = torch.nn.functional.normalize(X, dim=-1)
    pred = (X @ T.T).argmax(1).tolist()
    truth = [(sc.labels["objects"][0]["colour"], sc.labels["objects"][0]["shape"]) for sc in scenes]
    right = sum(classes[p] == t for p, t in zip(pred, truth, strict=True))
    colour_right = sum(classes[p][0] == t[0] for p, t in zip(pred, truth, strict=True))
    assert colour_right >= 20, (pred, truth)
    assert right >= 16, [(classes[p], t) for p, t in zip(pred, truth, strict=True)]


@pytest.mark.heavy
def test_demo_encodes_100_images(demo):
    import torch

    from vltools.world.scene import generate_scene

    model, preprocess, _ = demo
    with torch.no_grad():
        X = model.encode_image(torch.stack([preprocess(generate_scene(k).image) for k in range(100)]))
    assert X.shape == (100, 384) and torch.isfinite(X).all()
