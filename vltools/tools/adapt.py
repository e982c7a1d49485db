"""Adapt a CLIP to a user's labelled images: `adapt.finetune` (plain contrastive fine-tuning, geodesic
multimodal mixup (P38), or continual learning without forgetting (P14, VR-LwF)).

Input: an ImageFolder (one sub-folder per class, named by the class) or an image-caption JSONL, and
a base CLIP spec. The image tower is fine-tuned against the base model's (frozen) text embeddings;
the result is saved under ``VLTOOLS_HOME/models/NAME`` in open_clip's local-dir layout and named by
the spec ``open_clip:local-dir:PATH``, which every image/video tool accepts. Needs torch and open_clip
(imported inside the functions).
"""

from __future__ import annotations

import copy
import math
import random
from typing import Any, Literal

from pydantic import BaseModel, Field

from vltools.core.context import Context
from vltools.core.errors import InvalidInput
from vltools.core.tool import tool
from vltools.schemas import ToolInput
from vltools.tools._checkpoint import Labelled, base_config, decode_all, plan_output, read_labelled, save_checkpoint

Method = Literal["plain", "mixup", "continual"]
EVAL_TEMPLATES = ["{}", "a photo of a {}.", "an image of a {}."]
TRAIN_TEMPLATE = "a photo of a {}."


class FinetuneInput(ToolInput):
    data: str = Field(min_length=1, description="ImageFolder (one sub-folder per class, named by the class) or an "
                      "image-caption JSONL ({\"image\": PATH, \"text\": CAPTION} per line).")
    model: str | None = Field(None, description="Base CLIP spec: demo, open_clip:ARCH/TAG, open_clip:local-dir:PATH, "
                              "... (default: settings.clip).")
    method: Method = Field("plain", description="plain: contrastive fine-tuning; mixup: plus geodesic multimodal "
                           "mixup hard negatives (P38); continual: plus distillation from the base model over "
                           "replayed vocabulary classes (P14, VR-LwF) to keep its zero-shot skills.")
    epochs: int = Field(10, ge=1, le=200, description="Passes over the training images.")
    name: str | None = Field(None, description="Name of the new checkpoint folder under VLTOOLS_HOME/models "
                             "(default: generated). An existing name is refused, never overwritten.")
    eval_data: str | None = Field(None, description="Held-out images of the new classes (same layout as data) for "
                                  "the before/after evaluation; default: eval_fraction of data is held out.")
    eval_fraction: float = Field(0.25, ge=0.0, le=0.8, description="Share of each class held out for evaluation "
                                 "when eval_data is not given (0: evaluate on the training images).")
    old_data: str | None = Field(None, description="ImageFolder of the model's original task (its classes) to "
                                 "measure forgetting before/after.")
    replay_labels: list[str] | None = Field(None, max_length=2000, description="continual: text classes of the old "
                                            "task to replay (default: none; replayed vocabulary words always).")
    replay_words: int = Field(1000, ge=16, le=20000, description="continual: virtual text classes built from words "
                              "of the text tokenizer's vocabulary (VR-LwF's replayed vocabulary).")
    distill_weight: float = Field(1.0, ge=0.0, le=100.0, description="continual: weight of the distillation loss.")
    mixup_alpha: float = Field(0.5, gt=0.0, le=10.0,
                               description="mixup: Beta(alpha, alpha) of the geodesic mixing ratio.")
    lr: float = Field(3e-4, gt=0.0, le=1.0, description="AdamW learning rate of the image tower.")
    batch_size: int = Field(32, ge=2, le=512, description="Images per step.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the split, shuffling and augmentation.")
    max_images: int = Field(5000, ge=2, le=20000, description="Refuse data with more images than this.")


class Scores(BaseModel):
    new_accuracy: float = Field(description="Top-1 accuracy on the evaluation images of the new classes (JSONL "
                                "data: image-to-caption top-1 among the evaluation captions).")
    new_images: int = Field(description="Evaluation images of the new classes.")
    old_accuracy: float | None = Field(None, description="Top-1 zero-shot accuracy on old_data (None without it).")
    old_images: int = Field(0, description="Images in old_data.")


class FinetuneOutput(BaseModel):
    model: str = Field(description="Spec of the new model (open_clip:local-dir:PATH); pass it as `clip` to any tool.")
    path: str = Field(description="The checkpoint folder.")
    method: Method = Field(description="The method used.")
    base: str = Field(description="The base model's spec.")
    classes: list[str] = Field(description="The new classes (JSONL data: empty).")
    train_images: int = Field(description="Training images.")
    steps: int = Field(description="Optimiser steps run.")
    before: Scores = Field(description="The base model's scores.")
    after: Scores = Field(description="The new model's scores.")
    log: list[dict[str, float]] = Field(description="Per epoch: mean loss (and its parts).")


# -- helpers -----------------------------------------------------------------------------------------
def _split(data: Labelled, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Per-class split of indices into (train, eval); each class keeps at least one training image."""
    rng = random.Random(seed)
    by: dict[int, list[int]] = {}
    for i, t in enumerate(data.targets):
        by.setdefault(t, []).append(i)
    train, held = [], []
    for idx in by.values():
        idx = idx[:]
        rng.shuffle(idx)
        k = min(len(idx) - 1, int(round(len(idx) * fraction))) if fraction > 0 else 0
        held += idx[:k]
        train += idx[k:]
    return sorted(train), sorted(held)


def _tensors(backend: Any, images: list[Any]) -> Any:
    import torch

    return torch.stack([backend.preprocess(im) for im in images])


def _text_bank(backend: Any, labels: list[str], templates: list[str]) -> Any:
    """(n, dim) normalised mean-of-templates text embeddings (torch), from the frozen text tower."""
    import torch

    from vltools.tools.image import class_embeddings

    emb, _ = class_embeddings(backend, labels, templates, None)
    return torch.from_numpy(emb)


def _image_feats(model: Any, x: Any, batch: int = 128) -> Any:
    """Normalised float32 CPU image embeddings of the preprocessed batch ``x`` (on the model's device/dtype)."""
    import torch
    import torch.nn.functional as F

    p = next(model.parameters())
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            f = model.encode_image(x[i : i + batch].to(p.device, p.dtype))
            out.append(F.normalize(f.float(), dim=-1).cpu())
    return torch.cat(out) if out else torch.zeros(0, 1)


def _accuracy(model: Any, x: Any, targets: list[int], bank: Any) -> float:
    import torch

    if len(targets) == 0:
        return float("nan")
    pred = (_image_feats(model, x) @ bank.T).argmax(1)
    return float((pred == torch.tensor(targets)).float().mean().item())


def vocab_words(tokenizer: Any, n: int, seed: int) -> list[str]:
    """``n`` whole words sampled from the text tokenizer's vocabulary (VR-LwF's replayed vocabulary)."""
    import re

    vocab: list[str] = []
    inner = getattr(tokenizer, "tokenizer", None)  # open_clip HFTokenizer wraps a transformers tokenizer
    if inner is not None and hasattr(inner, "get_vocab"):
        vocab = list(inner.get_vocab())
    elif hasattr(tokenizer, "encoder"):  # open_clip's SimpleTokenizer (BPE): whole words end with </w>
        vocab = [w[:-4] for w in tokenizer.encoder if w.endswith("</w>")]
    words = sorted({w for w in vocab if re.fullmatch(r"[a-z]{3,15}", w)})
    if len(words) < 16:
        raise InvalidInput("the base model's tokenizer exposes no word vocabulary to replay",
                           hint="pass replay_labels, or use method plain or mixup")
    rng = random.Random(seed)
    return rng.sample(words, min(n, len(words)))


def slerp(a: Any, b: Any, lam: Any) -> Any:
    """Geodesic mix of unit vectors ``a`` and ``b`` (rows) with ratio ``lam`` (P38's m^2-mix)."""
    import torch

    cos = (a * b).sum(-1, keepdim=True).clamp(-1 + 1e-6, 1 - 1e-6)
    theta = torch.acos(cos)
    s = torch.sin(theta)
    return (torch.sin(lam * theta) * a + torch.sin((1 - lam) * theta) * b) / s


def _augment(x: Any, gen: Any) -> Any:
    """Light image augmentation on normalised tensors: random horizontal flip and a small shift."""
    import torch

    flip = torch.rand(len(x), generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    side = x.shape[-1]
    m = max(1, side // 16)
    dy, dx = (int(v) for v in torch.randint(-m, m + 1, (2,), generator=gen))
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


# -- adapt.finetune --------------------------------------------------------------------------------------
def _step(opt: Any, params: list[Any], parts: dict[str, Any], sums: dict[str, float]) -> None:
    """One optimiser step on the sum of the loss ``parts`` (gradients clipped at 5); adds each part
    and the total to ``sums`` for the training log."""
    import torch

    loss = sum(parts.values())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 5.0)
    opt.step()
    for k, v in parts.items():
        sums[k] = sums.get(k, 0.0) + float(v.detach())
    sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())


def _read_inputs(inp: Any, settings: Any, ctx: Context, kind: str) -> tuple[Labelled, Labelled | None,
                                                                            Labelled | None, Any]:
    """Read and check ``data``/``eval_data``/``old_data`` and claim the output folder, all before any training,
    so a bad folder or a taken name fails in seconds."""
    data = read_labelled(inp.data, settings, what="data", max_images=inp.max_images)
    eval_set = read_labelled(inp.eval_data, settings, what="eval_data", max_images=inp.max_images) \
        if inp.eval_data else None
    old = read_labelled(inp.old_data, settings, what="old_data", max_images=inp.max_images) if inp.old_data else None
    if eval_set is not None and eval_set.kind != data.kind:
        raise InvalidInput("eval_data must have the same layout as data (both folders or both JSONL)")
    if eval_set is not None and data.kind == "folder" and set(eval_set.classes) - set(data.classes):
        extra = sorted(set(eval_set.classes) - set(data.classes))
        raise InvalidInput(f"eval_data has classes not in data: {', '.join(extra[:10])}",
                           hint="evaluate on the classes you train", details={"classes": extra})
    if old is not None and old.kind != "folder":
        raise InvalidInput("old_data must be an ImageFolder (one sub-folder per class)")
    out_dir = plan_output(inp.name, kind, settings)  # refuse a taken name before training
    for d, what in ((data, "data"), (eval_set, "eval_data"), (old, "old_data")):
        if d is not None:
            decode_all(d, settings, what)
    ctx.progress(0, None, "images read")
    return data, eval_set, old, out_dir


@tool("adapt.finetune")
def finetune(inp: FinetuneInput, ctx: Context) -> FinetuneOutput:
    """Fine-tune a CLIP's image tower on a labelled image folder or image-caption file and save it as a new model
    spec, with a before/after evaluation.

    Methods: plain contrastive fine-tuning, geodesic multimodal mixup hard negatives (P38), or continual learning
    with distillation from the base model over replayed vocabulary (P14, VR-LwF); never overwrites a checkpoint.
    """
    import torch
    import torch.nn.functional as F

    settings = ctx.settings
    base_spec = (inp.model or settings.clip).strip()
    data, eval_set, old, out_dir = _read_inputs(inp, settings, ctx, f"finetune-{inp.method}")

    backend = ctx.clip(base_spec)
    model_cfg, pre_cfg = base_config(backend.spec, backend.model)
    torch.manual_seed(inp.seed)
    gen = torch.Generator().manual_seed(inp.seed)

    if eval_set is None:
        tr_idx, ev_idx = _split(data, inp.eval_fraction, inp.seed)
        if not ev_idx:
            ev_idx = tr_idx
        x_all = _tensors(backend, data.images)
        x_tr, y_tr = x_all[tr_idx], [data.targets[i] for i in tr_idx]
        x_ev, y_ev = x_all[ev_idx], [data.targets[i] for i in ev_idx]
        ev_classes = data.classes
    else:
        x_tr, y_tr = _tensors(backend, data.images), list(data.targets)
        x_ev, ev_classes = _tensors(backend, eval_set.images), eval_set.classes
        y_ev = list(eval_set.targets)
        if data.kind == "folder":  # eval class indices in data's class order
            y_ev = [data.classes.index(eval_set.classes[t]) for t in eval_set.targets]
            ev_classes = data.classes
    templates = EVAL_TEMPLATES if data.kind == "folder" else ["{}"]
    if data.kind == "captions":  # retrieval among the evaluation captions
        ev_caps = sorted({ev_classes[t] for t in y_ev})
        y_ev = [ev_caps.index(ev_classes[t]) for t in y_ev]
        ev_classes = ev_caps
    x_old = _tensors(backend, old.images) if old is not None else None

    teacher = backend.model
    device = backend.device
    student = copy.deepcopy(teacher).float().to(device)
    ctx.progress(0, None, "model copied")
    # Text sides from the frozen base text tower (it is never trained here).
    train_bank = _text_bank(backend, data.classes, [TRAIN_TEMPLATE] if data.kind == "folder" else ["{}"])
    ev_bank = _text_bank(backend, ev_classes, templates)
    old_bank = _text_bank(backend, old.classes, EVAL_TEMPLATES) if old is not None else None
    replay_bank = None
    if inp.method == "continual":
        words = vocab_words(backend.tokenizer, inp.replay_words, inp.seed)
        texts = [TRAIN_TEMPLATE.format(w) for w in words] + [TRAIN_TEMPLATE.format(t) for t in inp.replay_labels or []]
        replay_bank = _text_bank(backend, texts, ["{}"])

    def scores(m: Any) -> Scores:
        m.eval()
        return Scores(new_accuracy=_accuracy(m, x_ev, y_ev, ev_bank), new_images=len(y_ev),
                      old_accuracy=_accuracy(m, x_old, old.targets, old_bank) if old is not None else None,
                      old_images=len(old.targets) if old is not None else 0)

    before = scores(teacher)

    visual = student.visual
    for p in student.parameters():
        p.requires_grad_(False)
    params = [p for p in visual.parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=inp.lr, weight_decay=0.05)
    scale = float(backend.logit_scale)
    train_bank = train_bank.to(device)
    replay_bank = replay_bank.to(device) if replay_bank is not None else None
    y_t = torch.tensor(y_tr)
    n = len(y_tr)
    bs = min(inp.batch_size, n)
    per_epoch = max(1, math.ceil(n / bs))
    total = per_epoch * inp.epochs
    warm = max(1, total // 10)
    log: list[dict[str, float]] = []
    step = 0
    beta = torch.distributions.Beta(inp.mixup_alpha, inp.mixup_alpha)
    for epoch in range(inp.epochs):
        visual.train()
        perm = torch.randperm(n, generator=gen)
        sums: dict[str, float] = {}
        for b in range(per_epoch):
            idx = perm[b * bs : (b + 1) * bs]
            if len(idx) < 2:
                continue
            lr = inp.lr * min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * step / total))
            for g in opt.param_groups:
                g["lr"] = lr
            x = _augment(x_tr[idx], gen).to(device)
            y = y_t[idx].to(device)
            f = F.normalize(student.encode_image(x).float(), dim=-1)
            logits = scale * f @ train_bank.T
            parts = {"task": F.cross_entropy(logits, y)}
            if data.kind == "captions":  # text->image side too (captions shared by images are all positives)
                same = (y[:, None] == y[None, :]).float()
                t = train_bank[y]
                parts["task"] = 0.5 * (parts["task"] - (same / same.sum(1, keepdim=True)
                                                        * (scale * t @ f.T).log_softmax(1)).sum(1).mean())
            if inp.method == "mixup":
                t = train_bank[y]
                lam = beta.sample((len(y), 1)).to(device)
                mixed = slerp(f, t, lam)  # hard negatives between each image and its own text
                neg = (y[:, None] == y[None, :])  # same-class mixtures are not negatives
                li = torch.cat([logits, (scale * f @ mixed.T).masked_fill(neg, -1e4)], 1)
                lt = torch.cat([scale * t @ f.T, (scale * t @ mixed.T).masked_fill(neg, -1e4)], 1)
                same = neg.float()
                tgt_t = torch.cat([same / same.sum(1, keepdim=True), torch.zeros_like(same)], 1)
                parts["mix"] = 0.5 * (F.cross_entropy(li, y) - (tgt_t * lt.log_softmax(1)).sum(1).mean())
            if inp.method == "continual":
                sel = torch.randperm(len(replay_bank), generator=gen)[: min(256, len(replay_bank))].to(device)
                vb = replay_bank[sel]
                with torch.no_grad():
                    ft = F.normalize(teacher.encode_image(x.to(next(teacher.parameters()).dtype)).float(), dim=-1)
                temp = 2.0
                p_old = (scale * ft @ vb.T / temp).softmax(1)
                logp_new = (scale * f @ vb.T / temp).log_softmax(1)
                parts["distill"] = inp.distill_weight * temp**2 * F.kl_div(logp_new, p_old, reduction="batchmean")
            _step(opt, params, parts, sums)
            step += 1
            ctx.progress(step, total, f"epoch {epoch + 1}/{inp.epochs}")  # reports; raises if cancelled
        log.append({"epoch": epoch + 1, **{k: round(v / per_epoch, 4) for k, v in sums.items()}})
    student.eval()
    for p in student.parameters():
        p.requires_grad_(False)
    after = scores(student)
    meta = {"base": backend.spec, "method": inp.method, "epochs": inp.epochs, "steps": step, "lr": inp.lr,
            "seed": inp.seed, "classes": data.classes if data.kind == "folder" else [],
            "train_images": n, "before": before.model_dump(), "after": after.model_dump(), "log": log}
    spec = save_checkpoint(student, model_cfg, pre_cfg, out_dir, settings, meta)
    ctx.progress(total, total, f"saved {out_dir.name}")
    return FinetuneOutput(model=spec, path=str(out_dir), method=inp.method, base=backend.spec,
                          classes=data.classes if data.kind == "folder" else [], train_images=n, steps=step,
                          before=before, after=after, log=log)


# -- adapt.distill ------------------------------------------------------------------------------------------
class DistillInput(ToolInput):
    data: str = Field(min_length=1, description="Training images: an ImageFolder (class names become the texts) or an "
                      "image-caption JSONL (captions become the texts).")
    model: str | None = Field(None, description="Teacher CLIP spec (default: settings.clip).")
    width_factor: float = Field(0.5, gt=0.05, le=1.0, description="Image-tower width of the student relative to "
                                "the teacher's (rounded to whole attention heads).")
    epochs: int = Field(20, ge=1, le=500, description="Passes over the training images.")
    lr: float = Field(2e-3, gt=0.0, le=1.0, description="AdamW learning rate of the student's image tower.")
    patch_weight: float = Field(1.0, ge=0.0, le=100.0, description="Weight of the patch-level (dense) alignment.")
    soften: float = Field(0.5, ge=0.0, le=1.0, description="Final share of the teacher's soft labels in the "
                          "contrastive targets (grown linearly from 0: LightCLIP's progressive softening).")
    eval_data: str | None = Field(None, description="ImageFolder for the teacher/student accuracy (default: data "
                                  "when it is a folder).")
    name: str | None = Field(None, description="Name of the new checkpoint folder under VLTOOLS_HOME/models "
                             "(default: generated). An existing name is refused, never overwritten.")
    batch_size: int = Field(64, ge=2, le=512, description="Images per step.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the initialisation, shuffling and augmentation.")
    max_images: int = Field(20000, ge=2, le=20000, description="Refuse data with more images than this.")


class DistillOutput(BaseModel):
    model: str = Field(description="Spec of the student (open_clip:local-dir:PATH).")
    path: str = Field(description="The checkpoint folder.")
    teacher: str = Field(description="The teacher's spec.")
    teacher_image_params: int = Field(description="Parameters of the teacher's image tower.")
    student_image_params: int = Field(description="Parameters of the student's image tower.")
    teacher_images_per_s: float = Field(description="Teacher image-encoding throughput (same batch, same run).")
    student_images_per_s: float = Field(description="Student image-encoding throughput (same batch, same run).")
    teacher_accuracy: float | None = Field(description="Teacher zero-shot top-1 on the evaluation folder.")
    student_accuracy: float | None = Field(description="Student zero-shot top-1 on the evaluation folder.")
    agreement: float | None = Field(description="Share of evaluation images where student and teacher agree.")
    patch_level: bool = Field(description="Whether the patch-level alignment was used (needs dense features).")
    steps: int = Field(description="Optimiser steps run.")
    log: list[dict[str, float]] = Field(description="Per epoch: mean loss and its parts.")


def _student_config(cfg: dict[str, Any], factor: float) -> dict[str, Any]:
    """``cfg`` with a narrower image tower: width scaled, kept a multiple of the head width."""
    vc = dict(cfg.get("vision_cfg") or {})
    width = vc.get("width")
    if not isinstance(width, int):
        raise InvalidInput("the teacher's image tower has no plain width to shrink (timm or custom tower)",
                           hint="distil from an open_clip ViT or ModifiedResNet model, e.g. demo")
    if isinstance(vc.get("layers"), list | tuple):  # ModifiedResNet: the attention pool's width is 32 * width
        head = int(vc.get("head_width", 64))
        unit = max(1, head // 32) if head % 32 == 0 else head
        new = max(unit, int(round(width * factor / unit)) * unit)
    else:  # ViT: width must hold whole heads of head_width
        head = int(vc.get("head_width", 64))
        new = max(head, int(round(width * factor / head)) * head)
    if new >= width:
        raise InvalidInput(f"width_factor {factor} leaves the image tower's width at {width}",
                           hint="use a smaller width_factor")
    return {**cfg, "vision_cfg": {**vc, "width": new}}


def _build_student(teacher: Any, cfg: dict[str, Any], seed: int) -> Any:
    """A model of config ``cfg`` (random image tower) with the teacher's text side copied in."""
    import open_clip
    import torch

    torch.manual_seed(seed)
    text_cfg = cfg.get("text_cfg") or {}
    if text_cfg.get("hf_model_name"):
        from vltools.models.clip_demo import build_from_config

        student = build_from_config(cfg)  # HF text tower (loaded from its local folder) + random image tower
    else:
        kw = {k: v for k, v in cfg.items() if k != "custom_text"}
        student = (open_clip.CustomTextCLIP if cfg.get("custom_text") else open_clip.CLIP)(**kw)
    state = {k: v for k, v in teacher.state_dict().items() if not k.startswith("visual.")}
    missing, unexpected = student.load_state_dict(state, strict=False)
    bad = [k for k in missing if not k.startswith("visual.")] + list(unexpected)
    if bad:
        raise InvalidInput(f"the student does not match the teacher's text side ({bad[:3]})",
                           hint="distil from an open_clip CLIP or CustomTextCLIP model")
    return student.float()


def _throughputs(models: list[Any], xs: list[Any], rounds: int = 5) -> list[float]:
    """Images per second of each ``model.encode_image`` on its batch: best of ``rounds``, the models timed in
    turn within each round so that a busy machine slows them alike."""
    import time

    import torch

    best = [float("inf")] * len(models)
    with torch.no_grad():
        for _ in range(rounds):
            for k, (m, x) in enumerate(zip(models, xs, strict=True)):
                t = time.perf_counter()
                m.encode_image(x)
                best[k] = min(best[k], time.perf_counter() - t)
    return [round(len(x) / max(b, 1e-9), 1) for x, b in zip(xs, best, strict=True)]


@tool("adapt.distill")
def distill(inp: DistillInput, ctx: Context) -> DistillOutput:
    """Distil a lighter image tower from a CLIP's (LightCLIP-style - global and patch-level alignment to the teacher,
    contrastive targets softened by the teacher) and save it as a new model spec, with speed and accuracy vs the
    teacher.
    """
    import torch
    import torch.nn.functional as F

    from vltools.models.clip._encode import _dense_features

    settings = ctx.settings
    data = read_labelled(inp.data, settings, what="data", max_images=inp.max_images)
    ev = read_labelled(inp.eval_data, settings, what="eval_data", max_images=inp.max_images) if inp.eval_data \
        else (data if data.kind == "folder" else None)
    if ev is not None and ev.kind != "folder":
        raise InvalidInput("eval_data must be an ImageFolder (one sub-folder per class)")
    out_dir = plan_output(inp.name, "distill", settings)
    decode_all(data, settings, "data")
    if ev is not None and ev is not data:
        decode_all(ev, settings, "eval_data")
    backend = ctx.clip(inp.model)
    teacher = backend.model
    model_cfg, pre_cfg = base_config(backend.spec, teacher)
    s_cfg = _student_config(model_cfg, inp.width_factor)
    student = _build_student(teacher, s_cfg, inp.seed).to(backend.device)
    device = backend.device
    x_tr = _tensors(backend, data.images)
    texts = _text_bank(backend, data.classes, [TRAIN_TEMPLATE] if data.kind == "folder" else ["{}"]).to(device)
    y_t = torch.tensor(data.targets)
    scale = float(backend.logit_scale)
    try:
        with torch.no_grad():
            _dense_features(teacher.visual, x_tr[:1].to(device, next(teacher.parameters()).dtype), backend.spec)
        patch = inp.patch_weight > 0
    except InvalidInput:
        patch = False
    for p in student.parameters():
        p.requires_grad_(False)
    params = list(student.visual.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=inp.lr, weight_decay=0.05)
    gen = torch.Generator().manual_seed(inp.seed)
    n = len(x_tr)
    bs = min(inp.batch_size, n)
    per_epoch = max(1, math.ceil(n / bs))
    total = per_epoch * inp.epochs
    warm = max(1, total // 20)
    tdtype = next(teacher.parameters()).dtype
    log: list[dict[str, float]] = []
    step = 0
    for epoch in range(inp.epochs):
        student.visual.train()
        perm = torch.randperm(n, generator=gen)
        sums: dict[str, float] = {}
        for b in range(per_epoch):
            idx = perm[b * bs : (b + 1) * bs]
            lr = inp.lr * min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * step / total))
            for g in opt.param_groups:
                g["lr"] = lr
            x = _augment(x_tr[idx], gen).to(device)
            y = y_t[idx].to(device)
            with torch.no_grad():
                ft = F.normalize(teacher.encode_image(x.to(tdtype)).float(), dim=-1)
                dt = F.normalize(_dense_features(teacher.visual, x.to(tdtype), backend.spec).float(), dim=-1) \
                    if patch else None
            fs = F.normalize(student.encode_image(x).float(), dim=-1)
            alpha = inp.soften * step / max(1, total - 1)
            soft = (scale * ft @ texts.T).softmax(1)
            tgt = (1 - alpha) * F.one_hot(y, len(texts)).float() + alpha * soft
            parts = {"global": (1 - (fs * ft).sum(1)).mean(),
                     "contrastive": -(tgt * (scale * fs @ texts.T).log_softmax(1)).sum(1).mean()}
            if patch:
                ds = F.normalize(_dense_features(student.visual, x, backend.spec).float(), dim=-1)
                parts["patch"] = inp.patch_weight * (1 - (ds * dt).sum(-1)).mean()
            _step(opt, params, parts, sums)
            step += 1
            ctx.progress(step, total, f"epoch {epoch + 1}/{inp.epochs}")
        log.append({"epoch": epoch + 1, **{k: round(v / per_epoch, 4) for k, v in sums.items()}})
    student.eval()
    for p in student.parameters():
        p.requires_grad_(False)
    t_acc = s_acc = agree = None
    if ev is not None:
        x_ev = x_tr if ev is data else _tensors(backend, ev.images)
        bank = _text_bank(backend, ev.classes, EVAL_TEMPLATES)
        pt = (_image_feats(teacher, x_ev) @ bank.T).argmax(1)
        ps = (_image_feats(student, x_ev) @ bank.T).argmax(1)
        yt = torch.tensor(ev.targets)
        t_acc, s_acc = float((pt == yt).float().mean()), float((ps == yt).float().mean())
        agree = float((pt == ps).float().mean())
        x_speed = x_ev[:64]
    else:
        x_speed = x_tr[:64]
    x_speed = x_speed.to(device)
    teacher_speed, student_speed = _throughputs([teacher, student], [x_speed.to(tdtype), x_speed])
    meta = {"teacher": backend.spec, "width_factor": inp.width_factor, "epochs": inp.epochs, "steps": step,
            "seed": inp.seed, "teacher_accuracy": t_acc, "student_accuracy": s_acc, "log": log}
    spec = save_checkpoint(student, s_cfg, pre_cfg, out_dir, settings, meta)
    return DistillOutput(
        model=spec, path=str(out_dir), teacher=backend.spec,
        teacher_image_params=sum(p.numel() for p in teacher.visual.parameters()),
        student_image_params=sum(p.numel() for p in student.visual.parameters()),
        teacher_images_per_s=teacher_speed, student_images_per_s=student_speed, teacher_accuracy=t_acc,
        student_accuracy=s_acc, agreement=agree, patch_level=patch, steps=step, log=log)


# -- adapt.upcycle_moe ---------------------------------------------------------------------------------------
class UpcycleMoeInput(ToolInput):
    data: str = Field(min_length=1, description="ImageFolder (one sub-folder per class, named by the class) or an "
                      "image-caption JSONL ({\"image\": PATH, \"text\": CAPTION} per line).")
    model: str | None = Field(None, description="Base (dense) CLIP spec: demo, open_clip:ARCH/TAG, "
                              "open_clip:local-dir:PATH, ... (default: settings.clip).")
    experts: int = Field(4, ge=2, le=8, description="Experts per MoE layer: the base model's block plus one "
                         "fine-tuned copy per multistage-contrastive stage (experts - 1 stages).")
    top_k: int = Field(2, ge=1, le=8, description="Experts each input is routed to.")
    layers: int = Field(2, ge=1, le=48, description="How many of the image tower's last blocks become MoE layers "
                        "(ViT: transformer MLPs, routed per token; ModifiedResNet: Bottleneck blocks, per image).")
    clusters: int = Field(4, ge=2, le=64, description="k-means clusters of each stage's image features; every later "
                          "stage keeps as negatives only the texts of images that share all earlier clusters with "
                          "the anchor image (fewer clusters: more negatives kept).")
    stage_epochs: int = Field(4, ge=1, le=100, description="Passes over the training images per stage.")
    router_epochs: int = Field(4, ge=1, le=100, description="Passes over the training images for the router.")
    train_experts: bool = Field(False, description="Also fine-tune the experts (at lr/10) while the router trains; "
                                "default: router only.")
    balance_weight: float = Field(0.1, ge=0.0, le=10.0, description="Weight of the load-balancing loss "
                                  "(Switch Transformer's E * sum f_e P_e, averaged over the MoE layers).")
    lr: float = Field(1e-3, gt=0.0, le=1.0, description="AdamW learning rate of the stages' blocks.")
    router_lr: float = Field(3e-3, gt=0.0, le=1.0, description="AdamW learning rate of the routers.")
    name: str | None = Field(None, description="Name of the new checkpoint folder under VLTOOLS_HOME/models "
                             "(default: generated). An existing name is refused, never overwritten.")
    eval_data: str | None = Field(None, description="Held-out images of the classes (same layout as data) for the "
                                  "before/after evaluation; default: eval_fraction of data is held out.")
    eval_fraction: float = Field(0.25, ge=0.0, le=0.8, description="Share of each class held out for evaluation "
                                 "when eval_data is not given (0: evaluate on the training images).")
    old_data: str | None = Field(None, description="ImageFolder of the model's original task to measure "
                                 "forgetting before/after.")
    batch_size: int = Field(32, ge=2, le=512, description="Images per step.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the split, clustering, shuffling and routers.")
    max_images: int = Field(5000, ge=2, le=20000, description="Refuse data with more images than this.")


class ExpertStage(BaseModel):
    stage: int = Field(description="0: the base model's block; k >= 1: the k-th multistage-contrastive stage "
                       "(1: all negatives; later: negatives from the earlier stages' clusters).")
    kept_negatives: float = Field(description="Mean share of the other texts kept as negatives (1.0: all).")
    scores: Scores = Field(description="The dense model with this stage's blocks, evaluated alone.")


class MoeLayerReport(BaseModel):
    path: str = Field(description="The replaced block (module path in the model).")
    load: list[float] = Field(description="Share of the routing slots each expert got on the evaluation images.")
    distinct_routes: int = Field(description="Distinct sets of chosen experts over the evaluation inputs.")
    expert_distance: float = Field(description="Mean pairwise distance between the experts' weights, relative to "
                                   "their norm (0: identical copies).")


class UpcycleMoeOutput(BaseModel):
    model: str = Field(description="Spec of the MoE model (open_clip:local-dir:PATH); pass it as `clip` to any tool.")
    path: str = Field(description="The checkpoint folder.")
    base: str = Field(description="The base model's spec.")
    classes: list[str] = Field(description="The classes (JSONL data: empty).")
    train_images: int = Field(description="Training images.")
    kind: Literal["token", "sample"] = Field(description="Routing per token (ViT MLPs) or per image (ResNet blocks).")
    experts: int = Field(description="Experts per MoE layer.")
    top_k: int = Field(description="Experts per input.")
    layers: list[MoeLayerReport] = Field(description="Per MoE layer: routing load and expert diversity.")
    stages: list[ExpertStage] = Field(description="Each expert's stage, evaluated as a dense model.")
    before: Scores = Field(description="The base model's scores.")
    after: Scores = Field(description="The MoE model's scores.")
    image_params_base: int = Field(description="Parameters of the base image tower.")
    image_params_moe: int = Field(description="Parameters of the MoE image tower (all experts and routers).")
    active_image_params: int = Field(description="Parameters of the MoE image tower that run per input "
                                     "(top_k experts).")
    base_images_per_s: float = Field(description="Base image-encoding throughput (same batch, same run).")
    moe_images_per_s: float = Field(description="MoE image-encoding throughput (same batch, same run).")
    steps: int = Field(description="Optimiser steps run (stages and router).")
    log: list[dict[str, float]] = Field(description="Per epoch: stage (0 = router), mean loss and its parts.")


def kmeans(x: Any, k: int, seed: int, iters: int = 25) -> Any:
    """Cluster ids of the unit rows of ``x`` (spherical k-means, k-means++ seeding)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    k = min(k, len(x))
    centres = [x[int(torch.randint(len(x), (1,), generator=gen))]]
    for _ in range(1, k):
        d = (1 - x @ torch.stack(centres).T).clamp_min(0).min(1).values
        if float(d.sum()) <= 0:
            break
        centres.append(x[int(torch.multinomial(d, 1, generator=gen))])
    c = torch.stack(centres)
    ids = (x @ c.T).argmax(1)
    for _ in range(iters):
        c_new = torch.stack([x[ids == j].mean(0) if (ids == j).any() else c[j] for j in range(len(c))])
        c = torch.nn.functional.normalize(c_new, dim=-1)
        new = (x @ c.T).argmax(1)
        if torch.equal(new, ids):
            break
        ids = new
    return ids


def _expert_distance(moe: Any) -> float:
    """Mean over expert pairs of ||a - b|| / sqrt(||a|| ||b||) on their flattened weights."""
    import torch

    vecs = [torch.cat([p.detach().float().flatten() for p in e.parameters()]) for e in moe.experts]
    out = [float((a - b).norm() / (a.norm() * b.norm()).sqrt().clamp_min(1e-12))
           for i, a in enumerate(vecs) for b in vecs[i + 1:]]
    return sum(out) / len(out) if out else 0.0


def _routing(model: Any, x: Any, batch: int = 64) -> dict[str, tuple[list[float], int]]:
    """Per MoE layer: (share of routing slots per expert, distinct chosen expert sets) over images ``x``."""
    import torch

    from vltools.models.clip._moe import moe_class

    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, moe_class())]
    counts = {n: torch.zeros(len(m.experts)) for n, m in layers}
    routes: dict[str, set[tuple[int, ...]]] = {n: set() for n, _ in layers}
    p = next(model.parameters())
    with torch.no_grad():
        for i in range(0, len(x), batch):
            model.encode_image(x[i : i + batch].to(p.device, p.dtype))
            for n, m in layers:
                ch = m.choices.cpu()
                counts[n] += torch.bincount(ch.flatten(), minlength=len(m.experts)).float()
                routes[n] |= {tuple(sorted(r)) for r in ch.tolist()}
    return {n: ([round(float(v), 4) for v in counts[n] / counts[n].sum().clamp_min(1)], len(routes[n]))
            for n, _ in layers}


@tool("adapt.upcycle_moe")
def upcycle_moe(inp: UpcycleMoeInput, ctx: Context) -> UpcycleMoeOutput:
    """Turn a dense CLIP's image tower into a mixture of experts by diversified multiplet upcycling (CLIP-MoE) and
    save it as a new model spec, with a before/after evaluation.

    Each expert is the base block fine-tuned in one stage of multistage contrastive learning (negatives restricted
    to the images earlier stages' features cluster together); a top-k router is then trained with a load-balancing
    loss. Never overwrites a checkpoint.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    from vltools.models.clip._moe import find_targets, get_module, moe_class, upcycle

    if inp.top_k > inp.experts:
        raise InvalidInput(f"top_k {inp.top_k} is more than the {inp.experts} experts",
                           hint="use top_k <= experts", details={"top_k": inp.top_k, "experts": inp.experts})
    settings = ctx.settings
    base_spec = (inp.model or settings.clip).strip()
    data, eval_set, old, out_dir = _read_inputs(inp, settings, ctx, "moe")

    backend = ctx.clip(base_spec)
    teacher = backend.model
    kind, paths, dims = find_targets(teacher, inp.layers)
    model_cfg, pre_cfg = base_config(backend.spec, teacher)
    torch.manual_seed(inp.seed)
    gen = torch.Generator().manual_seed(inp.seed)
    device = backend.device

    # data (same split and banks as adapt.finetune)
    if eval_set is None:
        tr_idx, ev_idx = _split(data, inp.eval_fraction, inp.seed)
        ev_idx = ev_idx or tr_idx
        x_all = _tensors(backend, data.images)
        x_tr, y_tr = x_all[tr_idx], [data.targets[i] for i in tr_idx]
        x_ev, y_ev, ev_classes = x_all[ev_idx], [data.targets[i] for i in ev_idx], data.classes
    else:
        x_tr, y_tr = _tensors(backend, data.images), list(data.targets)
        x_ev, ev_classes, y_ev = _tensors(backend, eval_set.images), eval_set.classes, list(eval_set.targets)
        if data.kind == "folder":
            y_ev = [data.classes.index(eval_set.classes[t]) for t in eval_set.targets]
            ev_classes = data.classes
    if data.kind == "captions":
        ev_caps = sorted({ev_classes[t] for t in y_ev})
        y_ev = [ev_caps.index(ev_classes[t]) for t in y_ev]
        ev_classes = ev_caps
    x_old = _tensors(backend, old.images) if old is not None else None
    train_bank = _text_bank(backend, data.classes, [TRAIN_TEMPLATE] if data.kind == "folder" else ["{}"]).to(device)
    ev_bank = _text_bank(backend, ev_classes, EVAL_TEMPLATES if data.kind == "folder" else ["{}"])
    old_bank = _text_bank(backend, old.classes, EVAL_TEMPLATES) if old is not None else None
    scale = float(backend.logit_scale)

    class _Tower(nn.Module):  # an image tower alone, with the encode_image the helpers call
        def __init__(self, visual: Any) -> None:
            super().__init__()
            self.visual = visual

        def encode_image(self, x: Any) -> Any:
            return self.visual(x)

    def scores(m: Any) -> Scores:
        m.eval()
        return Scores(new_accuracy=_accuracy(m, x_ev, y_ev, ev_bank), new_images=len(y_ev),
                      old_accuracy=_accuracy(m, x_old, old.targets, old_bank) if old is not None else None,
                      old_images=len(old.targets) if old is not None else 0)

    n = len(y_tr)
    y_t = torch.tensor(y_tr)
    bs = min(inp.batch_size, n)
    per_epoch = max(1, math.ceil(n / bs))
    n_stages = inp.experts - 1
    total = per_epoch * (n_stages * inp.stage_epochs + inp.router_epochs)
    step = 0
    log: list[dict[str, float]] = []

    def train(m: Any, groups: list[dict[str, Any]], epochs: int, stage: int, mask: Any = None) -> None:
        """AdamW with warm-up + cosine over ``epochs``; BatchNorm statistics stay frozen (eval mode)."""
        nonlocal step
        params = [p for g in groups for p in g["params"]]
        opt = torch.optim.AdamW(groups, weight_decay=0.05)
        base_lr = [g["lr"] for g in opt.param_groups]
        steps_here, warm = per_epoch * epochs, max(1, per_epoch * epochs // 10)
        moes = [mod for mod in m.modules() if isinstance(mod, moe_class())]
        local = 0
        m.eval()
        for epoch in range(epochs):
            perm = torch.randperm(n, generator=gen)
            sums: dict[str, float] = {}
            for b in range(per_epoch):
                idx = perm[b * bs : (b + 1) * bs]
                if len(idx) < 2:
                    continue
                f = min(1.0, (local + 1) / warm) * 0.5 * (1 + math.cos(math.pi * local / steps_here))
                for g, lr0 in zip(opt.param_groups, base_lr, strict=True):
                    g["lr"] = lr0 * f
                x = _augment(x_tr[idx], gen).to(device)
                y = y_t[idx].to(device)
                logits = scale * F.normalize(m.encode_image(x).float(), dim=-1) @ train_bank.T
                if mask is not None:  # multistage contrastive learning: negatives from the same clusters only
                    logits = logits.masked_fill(~mask[idx].to(device), -1e4)
                parts = {"task": F.cross_entropy(logits, y)}
                if moes and inp.balance_weight > 0:
                    parts["balance"] = inp.balance_weight * torch.stack([mod.aux for mod in moes]).mean()
                _step(opt, params, parts, sums)
                for mod in moes:
                    mod.aux = None  # drop the graph (the model is deep-copied later)
                step += 1
                local += 1
                ctx.progress(step, total, f"stage {stage}/{n_stages} epoch {epoch + 1}/{epochs}" if stage
                             else f"router epoch {epoch + 1}/{epochs}")
            log.append({"stage": stage, "epoch": epoch + 1, **{k: round(v / per_epoch, 4) for k, v in sums.items()}})

    before = scores(teacher)
    rel = [p[len("visual."):] for p in paths]
    expert_states = [[{k: v.detach().float().clone() for k, v in get_module(teacher.visual, r).state_dict().items()}
                      for r in rel]]
    stages = [ExpertStage(stage=0, kept_negatives=1.0, scores=before)]
    # Diversified multiplet upcycling (multistage contrastive learning): stage 1 fine-tunes the base's target
    # blocks with ordinary contrastive loss; each later stage (again from the base) keeps as negatives only the
    # texts whose images share every earlier stage's k-means cluster with the anchor image.
    keys: list[tuple[int, ...]] = [()] * n
    feats = None
    for s in range(1, n_stages + 1):
        if feats is not None:
            ids = kmeans(feats, inp.clusters, inp.seed + s).tolist()
            keys = [k + (c,) for k, c in zip(keys, ids, strict=True)]
        key_id = {k: i for i, k in enumerate(dict.fromkeys(keys))}
        kid = torch.tensor([key_id[k] for k in keys])
        has = torch.zeros(len(train_bank), len(key_id), dtype=torch.bool)  # text j has an image with key c
        has[y_t, kid] = True
        mask = has[:, kid].T  # (image, text): the text shares the image's clusters (its own text always does)
        kept = float(((mask.sum(1) - 1).float() / max(1, len(train_bank) - 1)).mean())
        tower = _Tower(copy.deepcopy(teacher.visual).float().to(device))
        for p in tower.parameters():
            p.requires_grad_(False)
        params = [p for r in rel for p in get_module(tower.visual, r).parameters()]
        for p in params:
            p.requires_grad_(True)
        train(tower, [{"params": params, "lr": inp.lr}], inp.stage_epochs, s, mask)
        for p in tower.parameters():
            p.requires_grad_(False)
        expert_states.append([{k: v.detach().clone() for k, v in get_module(tower.visual, r).state_dict().items()}
                              for r in rel])
        stages.append(ExpertStage(stage=s, kept_negatives=round(kept, 4), scores=scores(tower)))
        feats = _image_feats(tower, x_tr)
        del tower

    # The MoE: every target block becomes the stage experts + a router, trained with the load-balancing loss.
    moe_model = copy.deepcopy(teacher).float().to(device)
    upcycle(moe_model, paths, dims, kind, expert_states, inp.top_k, inp.seed)
    moes = [get_module(moe_model, p) for p in paths]
    for p in moe_model.parameters():
        p.requires_grad_(False)
    groups = [{"params": [p for m in moes for p in m.router.parameters()], "lr": inp.router_lr}]
    if inp.train_experts:
        groups.append({"params": [p for m in moes for p in m.experts.parameters()], "lr": inp.lr / 10})
    for g in groups:
        for p in g["params"]:
            p.requires_grad_(True)
    train(moe_model, groups, inp.router_epochs, 0)
    for p in moe_model.parameters():
        p.requires_grad_(False)
    moe_model.eval()
    after = scores(moe_model)
    routing = _routing(moe_model, x_ev)
    reports = [MoeLayerReport(path=p, load=routing[p][0], distinct_routes=routing[p][1],
                              expert_distance=round(_expert_distance(m), 6)) for p, m in zip(paths, moes, strict=True)]
    x_speed = x_ev[:64].to(device)
    dense = teacher if next(teacher.parameters()).dtype == torch.float32 else copy.deepcopy(teacher).float()
    base_speed, moe_speed = _throughputs([dense, moe_model], [x_speed, x_speed])
    n_base = sum(p.numel() for p in teacher.visual.parameters())
    n_moe = sum(p.numel() for p in moe_model.visual.parameters())
    idle = sum((len(m.experts) - m.top_k) * sum(p.numel() for p in m.experts[0].parameters()) for m in moes)
    meta = {"base": backend.spec, "method": "upcycle_moe", "experts": inp.experts, "top_k": inp.top_k,
            "kind": kind, "layers": paths, "clusters": inp.clusters, "stage_epochs": inp.stage_epochs,
            "router_epochs": inp.router_epochs, "train_experts": inp.train_experts, "steps": step, "lr": inp.lr,
            "router_lr": inp.router_lr, "seed": inp.seed, "classes": data.classes if data.kind == "folder" else [],
            "train_images": n, "before": before.model_dump(), "after": after.model_dump(),
            "stages": [s.model_dump() for s in stages], "log": log}
    spec = save_checkpoint(moe_model, model_cfg, pre_cfg, out_dir, settings, meta)
    ctx.progress(total, total, f"saved {out_dir.name}")
    return UpcycleMoeOutput(
        model=spec, path=str(out_dir), base=backend.spec, classes=data.classes if data.kind == "folder" else [],
        train_images=n, kind=kind, experts=inp.experts, top_k=inp.top_k, layers=reports, stages=stages,
        before=before, after=after, image_params_base=n_base, image_params_moe=n_moe,
        active_image_params=n_moe - idle, base_images_per_s=base_speed, moe_images_per_s=moe_speed, steps=step,
        log=log)
