"""Classification adapted beyond zero-shot CLIP: from a few labelled images (GDA, P09, with the
linear-probe and Tip-Adapter baselines it compares with) and from a caption-based support set
without labelled target images (CapS-Adapter, P54).

Needs a CLIP spec (default ``demo``). Nothing is trained by gradient descent except the
linear-probe baseline (scikit-learn logistic regression, seconds).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vltools.core.context import Context
from vltools.core.errors import InvalidInput
from vltools.core.tool import tool
from vltools.schemas import ToolInput
from vltools.tools._image_io import check_images, embed_paths, text_embeddings

DEFAULT_TEMPLATES = ["a photo of a {}.", "a picture of a {}.", "{}"]


class Support(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = Field(min_length=1, description="Path of a labelled support image.")
    label: str = Field(min_length=1, max_length=200, description="Its class name.")


class Result(BaseModel):
    image: str = Field(description="The image path as given.")
    label: str = Field(description="The most probable label.")
    scores: dict[str, float] = Field(description="Probability per label (sums to 1).")


def _zero_shot(backend: Any, labels: list[str], templates: list[str]) -> Any:
    from vltools.tools._image_math import l2n

    emb = text_embeddings(backend, [t.replace("{}", lab) for lab in labels for t in templates])
    return l2n(emb.reshape(len(labels), len(templates), -1).mean(1))


def _check_templates(templates: list[str]) -> None:
    bad = [t for t in templates if t.count("{}") != 1]
    if bad:
        raise InvalidInput(f"template {bad[0]!r} must contain exactly one '{{}}'", hint="e.g. 'a photo of a {}.'")


def _results(paths: list[str], labels: list[str], probs: Any) -> list[Result]:
    return [
        Result(image=p, label=labels[int(row.argmax())],
               scores={lab: float(v) for lab, v in zip(labels, row, strict=True)})
        for p, row in zip(paths, probs, strict=True)
    ]


# -- classify.few_shot --------------------------------------------------------------------------
class FewShotInput(ToolInput):
    renamed = {"model": "clip"}

    support: list[Support] = Field(
        min_length=1, max_length=20_000, description="Labelled images: k per class (at least 2 classes)."
    )
    images: list[str] = Field(min_length=1, max_length=10_000, description="Paths of the images to classify.")
    clip: str | None = Field(None, description="CLIP spec: demo, open_clip:ARCH/TAG, ... (default: settings.clip).")
    method: Literal["gda", "tip_adapter", "linear_probe", "zero_shot"] = Field(
        "gda",
        description="gda: Gaussian discriminant analysis fused with zero-shot text logits (P09); tip_adapter: "
        "training-free cache of support features; linear_probe: logistic regression on image features only; "
        "zero_shot: the text classifier alone (support only names the classes).",
    )
    alpha: float = Field(
        1.0, ge=0, le=100,
        description="Weight of the visual classifier (GDA or cache logits, scaled to the zero-shot logits' spread) "
        "added to the zero-shot logits.",
    )
    beta: float = Field(5.5, gt=0, le=100, description="Tip-Adapter's affinity sharpness.")
    templates: list[str] | None = Field(None, max_length=50, description="Prompt templates with one '{}'.")
    batch_size: int = Field(32, ge=1, le=1024, description="Images embedded per forward pass.")


class FewShotOutput(BaseModel):
    results: list[Result] = Field(description="One per image, in input order.")
    labels: list[str] = Field(description="The classes, in the order of first appearance in support.")
    shots: dict[str, int] = Field(description="Support images per class.")
    method: str = Field(description="The method used.")


@tool("classify.few_shot")
def few_shot(inp: FewShotInput, ctx: Context) -> FewShotOutput:
    """Classify images from a few labelled examples per class with training-free GDA on CLIP features fused with
    zero-shot text logits (P09); Tip-Adapter, linear-probe and zero-shot baselines as methods.

    GDA takes class means and a shared, shrunk covariance of the support features and turns them into a
    linear classifier by Bayes' rule; its logits are scaled to the zero-shot logits and added with weight alpha.
    """
    import numpy as np

    from vltools.tools._image_math import gda_fit, match_scale, softmax, tip_adapter_logits

    labels: list[str] = []
    for s in inp.support:
        lab = s.label.strip()
        if not lab:
            raise InvalidInput("a support label is blank", hint="give every support image a class name")
        if lab not in labels:
            labels.append(lab)
    shots = {lab: sum(s.label.strip() == lab for s in inp.support) for lab in labels}
    if len(labels) < 2:
        raise InvalidInput(
            f"support names only {len(labels)} class ({labels[0]!r}); few-shot classification needs at least 2",
            hint="add labelled images of at least one more class", details={"shots": shots},
        )
    if inp.method == "linear_probe" and min(shots.values()) < 1:
        raise InvalidInput("too few shots for a linear probe", details={"shots": shots})
    templates = inp.templates or DEFAULT_TEMPLATES
    _check_templates(templates)
    check_images([s.image for s in inp.support], ctx, "support")
    check_images(inp.images, ctx)
    backend = ctx.clip(inp.clip)
    y = np.array([labels.index(s.label.strip()) for s in inp.support])
    sup = embed_paths(backend, [s.image for s in inp.support], ctx, "support images embedded", inp.batch_size)
    feats = embed_paths(backend, inp.images, ctx, "images embedded", inp.batch_size)
    zs = backend.logit_scale * feats.astype(np.float64) @ _zero_shot(backend, labels, templates).T
    if inp.method == "zero_shot":
        logits = zs
    elif inp.method == "gda":
        w, b = gda_fit(sup, y, len(labels))
        logits = zs + inp.alpha * match_scale(feats @ w.T + b, zs)
    elif inp.method == "tip_adapter":
        logits = zs + inp.alpha * match_scale(tip_adapter_logits(feats, sup, y, len(labels), inp.beta), zs)
    else:
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=10.0, max_iter=2000).fit(sup, y)
        probs = clf.predict_proba(feats)
        return FewShotOutput(results=_results(inp.images, labels, probs), labels=labels, shots=shots, method=inp.method)
    return FewShotOutput(results=_results(inp.images, labels, softmax(logits)), labels=labels, shots=shots,
                         method=inp.method)


# -- classify.caps_adapter ----------------------------------------------------------------------
class CorpusItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = Field(min_length=1, description="Path of an unlabelled corpus image.")
    caption: str | None = Field(
        None, min_length=1, max_length=2000,
        description="Its caption; omitted: generated with caption.zero_shot when that tool is registered.",
    )


class CapsInput(ToolInput):
    renamed = {"model": "clip"}

    images: list[str] = Field(min_length=1, max_length=10_000, description="Paths of the images to classify.")
    labels: list[str] = Field(min_length=2, max_length=1000, description="Candidate class names.")
    corpus: list[CorpusItem] = Field(
        min_length=2, max_length=50_000,
        description="Unlabelled image-caption pairs from which the caption-based support set is retrieved.",
    )
    per_class: int = Field(8, ge=1, le=256, description="Support pairs retrieved per class (by caption similarity).")
    # defaults chosen on a DEV split of held-out world concepts (benchmarks/README.md, CapS section): the image
    # cache dominates, zero-shot logits mostly break ties, the caption cache adds little there
    alpha: float = Field(32.0, ge=0, le=100, description=(
        "Weight of the support-image cache logits (each cache is rescaled to the zero-shot logits' spread; "
        "lower it, e.g. to 1-4, when the CLIP already knows the classes well)."))
    gamma: float = Field(0.5, ge=0, le=100, description="Weight of the support-caption cache logits.")
    beta: float = Field(10.0, gt=0, le=100, description="Affinity sharpness of both caches.")
    templates: list[str] | None = Field(None, max_length=50, description="Prompt templates with one '{}'.")
    clip: str | None = Field(None, description="CLIP spec (default: settings.clip).")
    batch_size: int = Field(32, ge=1, le=1024, description="Images embedded per forward pass.")


class CapsOutput(BaseModel):
    results: list[Result] = Field(description="One per image, in input order.")
    support: dict[str, list[str]] = Field(description="Per label: the captions of its retrieved support pairs.")
    generated_captions: int = Field(description="Corpus captions generated with caption.zero_shot.")


def caps_support(cap_emb: Any, classes: Any, per_class: int) -> tuple[list[int], list[int]]:
    """Caption-based support set: indices of the corpus pairs chosen and their class indices.

    A pair supports the class its caption matches best; each class keeps its ``per_class`` best such pairs."""
    import numpy as np

    affinity = cap_emb @ classes.T
    owner = affinity.argmax(1)
    chosen: list[int] = []
    y: list[int] = []
    for li in range(classes.shape[0]):
        mine = [int(i) for i in np.argsort(-affinity[:, li]) if owner[i] == li][:per_class]
        chosen += mine
        y += [li] * len(mine)
    return chosen, y


def caps_logits(zs: Any, feats: Any, sup_img: Any, sup_cap: Any, y: Any, alpha: float, gamma: float,
                beta: float) -> Any:
    """Zero-shot logits plus the image-cache (weight ``alpha``) and caption-cache (weight ``gamma``)
    Tip-Adapter affinities, each rescaled to the zero-shot logits' spread."""
    from vltools.tools._image_math import match_scale, tip_adapter_logits

    n = zs.shape[1]
    logits = zs + alpha * match_scale(tip_adapter_logits(feats, sup_img, y, n, beta), zs)
    return logits + gamma * match_scale(tip_adapter_logits(feats, sup_cap, y, n, beta), zs)


@tool("classify.caps_adapter")
def caps_adapter(inp: CapsInput, ctx: Context) -> CapsOutput:
    """Zero-shot classification with a caption-based multimodal support set (CapS-Adapter, P54) - image-caption pairs
    retrieved from an unlabelled corpus by caption similarity act as an image and a caption cache.

    No labelled target image is used: each class's support pairs are the corpus pairs whose captions best match the
    class prompts; test images are scored by zero-shot logits plus Tip-Adapter-style affinities to the support images
    and to the support captions.
    """
    import numpy as np

    from vltools.tools._image_math import softmax

    labels = [lab.strip() for lab in inp.labels]
    if any(not lab for lab in labels) or len(set(labels)) != len(labels):
        raise InvalidInput("labels must be non-empty and distinct")
    templates = inp.templates or DEFAULT_TEMPLATES
    _check_templates(templates)
    check_images([c.image for c in inp.corpus], ctx, "corpus")
    check_images(inp.images, ctx)
    captions = [c.caption for c in inp.corpus]
    missing = [i for i, c in enumerate(captions) if c is None]
    if missing:
        if ctx.registry is None or "caption.zero_shot" not in ctx.registry.names():
            raise InvalidInput(
                f"{len(missing)} corpus items have no caption and caption.zero_shot is not available",
                hint="give every corpus item a caption", details={"missing": missing[:20]},
            )
        for n, i in enumerate(missing):
            out = ctx.call("caption.zero_shot", {"image": inp.corpus[i].image, "model": inp.clip})
            captions[i] = str(getattr(out, "caption", "") or getattr(out, "text", ""))
            ctx.progress(n + 1, len(missing), "corpus captions generated")
    backend = ctx.clip(inp.clip)
    classes = _zero_shot(backend, labels, templates)
    cap_emb = text_embeddings(backend, [c or "" for c in captions]).astype(np.float64)
    chosen, y = caps_support(cap_emb, classes, inp.per_class)
    support = {lab: [captions[i] or "" for i, yi in zip(chosen, y, strict=True) if yi == li]
               for li, lab in enumerate(labels)}
    feats = embed_paths(backend, inp.images, ctx, "images embedded", inp.batch_size).astype(np.float64)
    zs = backend.logit_scale * feats @ classes.T
    logits = zs
    if chosen:
        sup_img = embed_paths(backend, [inp.corpus[i].image for i in chosen], ctx, "support images embedded",
                              inp.batch_size).astype(np.float64)
        logits = caps_logits(zs, feats, sup_img, cap_emb[chosen], np.array(y), inp.alpha, inp.gamma, inp.beta)
    return CapsOutput(results=_results(inp.images, labels, softmax(logits)), support=support,
                      generated_captions=len(missing))
