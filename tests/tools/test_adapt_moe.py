"""adapt.upcycle_moe (P37, CLIP-MoE): plumbing on a tiny random open_clip ViT (checkpoint layout, reload,
progress, cancellation, no overwrite, refusals), the MoE layer itself, and, heavy, the demo CLIP upcycled:
loadable by image.classify, with experts that differ and a router that routes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vltools.core.context import Context
from vltools.core.errors import Conflict, InvalidInput, Timeout
from vltools.core.registry import get_registry

from .test_adapt import make_folder

FAST = {"stage_epochs": 2, "router_epochs": 2, "clusters": 3}


def call(name, inp, settings, ctx=None):
    return get_registry().call(name, inp, ctx=ctx or Context(settings=settings))


@pytest.fixture
def folder(root):
    return make_folder(root / "data", ["apple", "bicycle", "guitar"], 4, 48_000_000, size=40)


def _moe_layers(spec, settings):
    from vltools.models.clip import get_clip
    from vltools.models.clip._moe import moe_class

    model = get_clip(spec, settings).model
    return model, [m for m in model.modules() if isinstance(m, moe_class())]


def test_upcycle_writes_an_moe_checkpoint_that_tools_load(folder, settings, spec):
    notes = []
    ctx = Context(settings=settings, progress=lambda d, t, n: notes.append((d, t, n)))
    out = call("adapt.upcycle_moe", {"data": str(folder), "model": spec, "name": "moe", "eval_fraction": 0.25,
                                     **FAST}, settings, ctx)
    path = Path(out.path)
    assert out.model == f"open_clip:local-dir:{path}" and path.parent == settings.home / "models"
    cfg = json.loads((path / "open_clip_config.json").read_text())
    assert cfg["vltools_moe"]["layers"] == [{"path": "visual.transformer.resblocks.0.mlp", "experts": 4, "top_k": 2,
                                             "kind": "token", "dim": 32}]
    assert out.kind == "token" and out.experts == 4 and out.top_k == 2
    assert [s.stage for s in out.stages] == [0, 1, 2, 3] and out.stages[1].kept_negatives == 1.0
    kept = [s.kept_negatives for s in out.stages[1:]]  # later stages drop the negatives of other clusters
    assert kept == sorted(kept, reverse=True) and kept[-1] < 1.0
    # 3 stages x 2 epochs + 2 router epochs, one batch each; progress reaches the end
    assert out.steps == 8 and notes[-1][0] == notes[-1][1] == 8
    assert any(n.startswith("stage 3/3") for _, _, n in notes) and any(n.startswith("router") for _, _, n in notes)
    assert {r["stage"] for r in out.log} == {0, 1, 2, 3} and all("balance" in r for r in out.log if r["stage"] == 0)
    assert out.image_params_base < out.active_image_params < out.image_params_moe
    meta = json.loads((path / "vltools_adapt.json").read_text())
    assert meta["method"] == "upcycle_moe" and meta["base"] == spec
    # the spec loads with its MoE layers and works in image.classify
    model, layers = _moe_layers(out.model, settings)
    assert len(layers) == 1 and len(layers[0].experts) == 4
    img = str(next((folder / "apple").iterdir()))
    got = call("image.classify", {"images": [img], "labels": out.classes, "clip": out.model}, settings)
    base = call("image.classify", {"images": [img], "labels": out.classes, "clip": spec}, settings)
    assert got.results[0].scores != base.results[0].scores


def test_experts_differ_and_the_router_routes(folder, settings, spec):
    """Reloaded from disk: forcing one expert or another changes the embedding (the stages made different
    experts), and the router's choices depend on the input (not one fixed set of experts)."""
    import torch

    out = call("adapt.upcycle_moe", {"data": str(folder), "model": spec, **FAST}, settings)
    assert all(layer.expert_distance > 1e-3 for layer in out.layers)
    assert all(layer.distinct_routes >= 2 and sum(v > 0 for v in layer.load) >= 3 for layer in out.layers)
    model, (moe,) = _moe_layers(out.model, settings)
    x = torch.randn(4, 3, 32, 32)
    embs = []
    with torch.no_grad():
        for e in range(4):
            moe.force = e
            embs.append(model.encode_image(x))
        moe.force = None
        model.encode_image(x)
    assert all(not torch.allclose(embs[0], embs[e], atol=1e-5) for e in (1, 2, 3))
    assert len({tuple(sorted(r)) for r in moe.choices.tolist()}) >= 2  # tokens of these images pick different sets


def test_moe_layer_sends_each_row_to_its_top_k():
    import torch
    from torch import nn

    from vltools.models.clip._moe import moe_class

    torch.manual_seed(0)
    experts = [nn.Linear(4, 3) for _ in range(3)]
    moe = moe_class()(experts, 2, "token", 4)
    x = torch.randn(2, 5, 4)
    y = moe(x)
    assert y.shape == (2, 5, 3)
    probs = moe.router(x.reshape(-1, 4)).softmax(-1)
    v, i = probs.topk(2, -1)
    g = v / v.sum(-1, keepdim=True)
    want = torch.stack([sum(g[r, s] * experts[int(i[r, s])](x.reshape(-1, 4)[r]) for s in range(2))
                        for r in range(10)]).reshape(2, 5, 3)
    assert torch.allclose(y, want, atol=1e-6)
    share = torch.bincount(i.flatten(), minlength=3).float() / 20  # 10 rows x 2 slots
    assert torch.allclose(moe.load, share)
    assert torch.allclose(moe.aux.detach(), 3 * (share * probs.mean(0)).sum().detach())  # Switch balance loss


def test_refusals(root, folder, settings, spec):
    with pytest.raises(InvalidInput, match="top_k"):
        call("adapt.upcycle_moe", {"data": str(folder), "model": spec, "experts": 2, "top_k": 3}, settings)
    make_folder(root / "one", ["apple"], 2, 49_000_000, size=40)
    with pytest.raises(InvalidInput) as err:
        call("adapt.upcycle_moe", {"data": str(root / "one"), "model": spec}, settings)
    assert "at least two" in err.value.message and err.value.hint
    (folder / "apple" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InvalidInput, match="cannot be read") as err:
        call("adapt.upcycle_moe", {"data": str(folder), "model": spec}, settings)
    assert [Path(d["path"]).name for d in err.value.details["unreadable"]] == ["broken.png"]
    (folder / "apple" / "broken.png").unlink()
    with pytest.raises(InvalidInput, match="unknown CLIP spec") as err:
        call("adapt.upcycle_moe", {"data": str(folder), "model": "not-a-model"}, settings)
    assert err.value.hint
    assert not (settings.home / "models").exists()
    taken = settings.home / "models" / "taken"
    taken.mkdir(parents=True)
    with pytest.raises(Conflict, match="never overwritten"):
        call("adapt.upcycle_moe", {"data": str(folder), "model": spec, "name": "taken"}, settings)
    assert list(taken.iterdir()) == []


def test_an_moe_base_is_refused(folder, settings, spec):
    out = call("adapt.upcycle_moe", {"data": str(folder), "model": spec, "experts": 2, "top_k": 1,
                                     "stage_epochs": 1, "router_epochs": 1}, settings)
    with pytest.raises(InvalidInput, match="already has mixture-of-experts"):
        call("adapt.upcycle_moe", {"data": str(folder), "model": out.model}, settings)


def test_finetuning_an_moe_checkpoint_keeps_its_layers(folder, settings, spec):
    out = call("adapt.upcycle_moe", {"data": str(folder), "model": spec, "experts": 2, "top_k": 1,
                                     "stage_epochs": 1, "router_epochs": 1}, settings)
    ft = call("adapt.finetune", {"data": str(folder), "model": out.model, "epochs": 1}, settings)
    cfg = json.loads((Path(ft.path) / "open_clip_config.json").read_text())
    assert cfg["vltools_moe"]["layers"][0]["experts"] == 2
    _, layers = _moe_layers(ft.model, settings)
    assert len(layers) == 1


def test_cancel_leaves_no_checkpoint(folder, settings, spec):
    ctx = Context(settings=settings)
    ctx._progress_cb = lambda d, t, n: ctx.cancel() if n.startswith("stage 2") else None
    with pytest.raises(Timeout, match="cancelled"):
        call("adapt.upcycle_moe", {"data": str(folder), "model": spec, "name": "stopped", **FAST}, settings, ctx)
    models = settings.home / "models"
    assert not models.exists() or not list(models.iterdir())


@pytest.mark.heavy
def test_demo_upcycled_is_loadable_routes_and_learns(tmp_path):
    """The demo CLIP (ModifiedResNet: Bottleneck experts routed per image) upcycled on a few images of
    held-out concepts: image.classify loads it, it beats the base on other images of those concepts, its
    experts differ and the router spreads images over them."""
    import torch
    from PIL import Image

    from vltools.core.settings import Settings
    from vltools.models.clip import get_clip
    from vltools.models.clip._moe import moe_class
    from vltools.world.concept_table import concept_names

    root = tmp_path / "r"
    new = concept_names("heldout")[::14][:5]
    make_folder(root / "new", new, 6, 45_000_000, size=96)
    make_folder(root / "test", new, 4, 46_000_000, size=96)
    settings = Settings(allowed_roots=[root], home=tmp_path / "home", device="cpu")
    out = call("adapt.upcycle_moe", {"data": str(root / "new"), "eval_data": str(root / "test"), "model": "demo",
                                     "stage_epochs": 4, "router_epochs": 4, "clusters": 2}, settings)
    assert out.kind == "sample" and [la.path for la in out.layers] == ["visual.layer3.0", "visual.layer4.0"]
    assert out.after.new_accuracy >= out.before.new_accuracy + 0.3
    # a constant router would send every image to the same top_k experts (1 route, load 0.5 / 0.5 / 0 / 0)
    for layer in out.layers:
        assert layer.expert_distance > 0.01 and layer.distinct_routes >= 2
    assert any(sum(v >= 0.05 for v in layer.load) >= 3 for layer in out.layers)
    cfg = json.loads((Path(out.path) / "open_clip_config.json").read_text())
    assert cfg["model_cfg"]["text_cfg"]["hf_model_name"].startswith("pkg:")  # portable text tower
    img = str(next((root / "test" / new[0].replace(" ", "_")).iterdir()))
    got = call("image.classify", {"images": [img], "labels": new, "clip": out.model}, settings)
    assert got.results[0].label in new
    model = get_clip(out.model, settings).model
    moes = [m for m in model.modules() if isinstance(m, moe_class())]
    assert len(moes) == 2
    backend = get_clip(out.model, settings)
    x = torch.stack([backend.preprocess(Image.open(p).convert("RGB")) for p in sorted((root / "test").rglob("*.png"))])
    with torch.no_grad():
        embs = []
        for e in range(out.experts):
            moes[-1].force = e
            embs.append(torch.nn.functional.normalize(model.encode_image(x), dim=-1))
        moes[-1].force = None
    assert all(float((embs[0] * embs[e]).sum(-1).mean()) < 0.999 for e in range(1, out.experts))
