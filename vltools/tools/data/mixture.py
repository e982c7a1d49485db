"""`data.source_mixture` (P42, "Quality not quantity"): what each data source of an image-text dataset does to
accuracy on held-out and distribution-shifted test sets.

At demo scale: a small model is trained per source, on the mixture of all sources and on every
leave-one-source-out mixture, all with the same number of pairs. Each model is a residual linear adapter
on the frozen CLIP image embeddings, trained contrastively against the frozen caption embeddings; each is
evaluated zero-shot on the test sets (ImageFolders, one sub-folder per class). Needs a CLIP and torch.
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import BaseModel, Field

from vltools.core.context import Context
from vltools.core.errors import InvalidInput
from vltools.core.tool import tool
from vltools.schemas import ToolInput
from vltools.tools._checkpoint import decode_all, read_labelled
from vltools.tools.data._io import read_records

TEMPLATES = ["{}", "a photo of a {}."]


class MixtureInput(ToolInput):
    data: str = Field(min_length=1, description="JSONL of image-text records with \"source\" (image, text, source).")
    test_sets: dict[str, str] = Field(min_length=1, max_length=10, description="Named test ImageFolders (one "
                                      "sub-folder per class), e.g. {\"heldout\": PATH, \"shifted\": PATH}.")
    clip: str | None = Field(None, description="CLIP spec (default: settings.clip); its towers stay frozen.")
    pairs: int | None = Field(None, ge=8, le=100_000, description="Pairs per trained model (default: the smallest "
                              "source's size), so sources and mixtures compare at equal size.")
    steps: int = Field(300, ge=10, le=5000, description="Adapter training steps per model.")
    lr: float = Field(1e-2, gt=0, le=1.0, description="Adam learning rate of the adapters.")
    seed: int = Field(0, ge=0, description="Seed of the sampling and training.")
    batch_size: int = Field(64, ge=1, le=1024, description="Images embedded per forward pass.")


class ModelResult(BaseModel):
    model: str = Field(description="'base' (no training), 'source:NAME', 'mixture' or 'mixture-without:NAME'.")
    sources: list[str] = Field(description="Sources it was trained on.")
    pairs: int = Field(description="Training pairs.")
    accuracy: dict[str, float] = Field(description="Top-1 accuracy per test set.")


class MixtureOutput(BaseModel):
    sources: dict[str, int] = Field(description="Pairs per source in the input.")
    pairs: int = Field(description="Pairs per trained model.")
    results: list[ModelResult] = Field(description="Base, per-source, mixture and leave-one-out models.")
    effect: dict[str, dict[str, float]] = Field(description="Per source and test set: mixture accuracy minus the "
                                                "accuracy of the mixture without that source (positive: it helps).")
    best_source: dict[str, str] = Field(description="Per test set, the source whose own model scores best.")
    worst_source: dict[str, str] = Field(description="Per test set, the source whose own model scores worst.")


def _train_adapter(x: Any, t: Any, steps: int, lr: float, scale: float, seed: int) -> Any:
    """A residual linear map W (dim x dim, zero init): image embedding -> normalise(x + x W), trained with the
    symmetric contrastive loss against the paired caption embeddings (identical captions are all positives)."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    w = torch.zeros(x.shape[1], x.shape[1], requires_grad=True)
    opt = torch.optim.Adam([w], lr=lr)
    n = len(x)
    bs = min(256, n)
    for _ in range(steps):
        idx = torch.randperm(n, generator=g)[:bs]
        f = F.normalize(x[idx] + x[idx] @ w, dim=-1)
        tt = t[idx]
        logits = scale * f @ tt.T
        same = ((tt @ tt.T) > 0.999).float()
        tgt = same / same.sum(1, keepdim=True)
        loss = -0.5 * ((tgt * logits.log_softmax(1)).sum(1).mean() + (tgt * logits.T.log_softmax(1)).sum(1).mean())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return w.detach()


@tool("data.source_mixture")
def source_mixture(inp: MixtureInput, ctx: Context) -> MixtureOutput:
    """Measure what each data source does - train a small model per source, on the mixture and on each
    leave-one-out mixture at equal size, and report accuracy on held-out and shifted test sets.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    from vltools.models.media import load_image
    from vltools.tools.image import class_embeddings

    rows = read_records(inp.data, ctx.settings, need_image=True, max_records=50_000)
    by: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        s = r.get("source")
        if not isinstance(s, str) or not s:
            raise InvalidInput(f"data line {i + 1} has no \"source\"", hint="name the source of every record",
                               details={"line": i + 1})
        by.setdefault(s, []).append(i)
    if len(by) < 2:
        raise InvalidInput(f"data has {len(by)} source(s); comparing sources needs two or more",
                           hint='add "source" names to the records')
    tests = {}
    for name, path in inp.test_sets.items():
        d = read_labelled(path, ctx.settings, what=f"test set {name}")
        if d.kind != "folder":
            raise InvalidInput(f"test set {name} must be an ImageFolder (one sub-folder per class)")
        decode_all(d, ctx.settings, f"test set {name}")
        tests[name] = d
    smallest = min(len(v) for v in by.values())
    size = inp.pairs or smallest
    if size > smallest:
        raise InvalidInput(f"pairs={size} is more than the smallest source has ({smallest})",
                           hint="lower pairs or leave it unset")
    backend = ctx.clip(inp.clip)
    images = [load_image(r["image"], ctx.settings) for r in rows]
    x = torch.from_numpy(np.asarray(backend.encode_images(images, batch_size=inp.batch_size), dtype=np.float32))
    texts = list(dict.fromkeys(r["text"] for r in rows))
    temb = np.asarray(backend.encode_texts(texts)[0], dtype=np.float32)
    tpos = {t: k for k, t in enumerate(texts)}
    t = torch.from_numpy(temb[[tpos[r["text"]] for r in rows]])
    ctx.progress(0, None, "pairs embedded")
    test_x, test_bank = {}, {}
    for name, d in tests.items():
        test_x[name] = torch.from_numpy(np.asarray(backend.encode_images(d.images, batch_size=inp.batch_size),
                                                   dtype=np.float32))
        bank, _ = class_embeddings(backend, d.classes, TEMPLATES, None)
        test_bank[name] = torch.from_numpy(bank)
    scale = float(backend.logit_scale)
    rng = random.Random(inp.seed)
    names = sorted(by)

    def sample(sources: list[str]) -> list[int]:
        """``size`` pairs drawn equally from ``sources`` (remainder to the first ones)."""
        out: list[int] = []
        for k, s in enumerate(sources):
            take = size // len(sources) + (1 if k < size % len(sources) else 0)
            out += rng.sample(by[s], take)
        return out

    def evaluate(w: Any | None) -> dict[str, float]:
        acc = {}
        for name, d in tests.items():
            f = test_x[name] if w is None else F.normalize(test_x[name] + test_x[name] @ w, dim=-1)
            pred = (f @ test_bank[name].T).argmax(1)
            acc[name] = round(float((pred == torch.tensor(d.targets)).float().mean()), 4)
        return acc

    # (with two sources, a mixture without one is the other source alone, trained again on a new sample)
    plans: list[tuple[str, list[str]]] = [(f"source:{s}", [s]) for s in names] + [("mixture", names)]
    plans += [(f"mixture-without:{s}", [o for o in names if o != s]) for s in names]
    results = [ModelResult(model="base", sources=[], pairs=0, accuracy=evaluate(None))]
    for k, (label, srcs) in enumerate(plans):
        idx = torch.tensor(sample(srcs))
        w = _train_adapter(x[idx], t[idx], inp.steps, inp.lr, scale, inp.seed + k)
        results.append(ModelResult(model=label, sources=srcs, pairs=len(idx), accuracy=evaluate(w)))
        ctx.progress(k + 1, len(plans), f"trained {label}")
    acc = {r.model: r.accuracy for r in results}
    effect = {s: {n: round(acc["mixture"][n] - acc[f"mixture-without:{s}"][n], 4) for n in tests} for s in names}
    best = {n: max(names, key=lambda s: (acc[f"source:{s}"][n], s)) for n in tests}
    worst = {n: min(names, key=lambda s: (acc[f"source:{s}"][n], s)) for n in tests}
    return MixtureOutput(sources={s: len(v) for s, v in sorted(by.items())}, pairs=size, results=results,
                         effect=effect, best_source=best, worst_source=worst)
