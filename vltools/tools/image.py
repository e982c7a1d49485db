"""Image tools on a CLIP backend: index images into a collection, search it by text or image
(P03), and zero-shot classify images with prompt templates and class descriptions (P20).

Needs a CLIP spec (default ``demo``, offline); image files are read through
`vltools.models.media` (allowed roots, size limits, safe decoding).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from vltools.core.cache import LRUCache
from vltools.core.context import Context
from vltools.core.errors import InvalidInput
from vltools.core.tool import tool
from vltools.schemas import Hit, Ranking, ToolInput
from vltools.tools._contact_sheet import CONTACT_SHEET_HELP, check_sheet_path
from vltools.tools._media_index import (
    EXECUTOR_HELP,
    WORKERS_HELP,
    Executor,
    MediaIndexOutput,
    add_all,
    open_media_collection,
    plan_files,
    run_job,
)
from vltools.tools._set_difference import Difference

LongTextMode = Literal["stretch", "chunk", "truncate", "error"]
LONG_TEXT_HELP = (
    "Texts longer than the text tower's context (P08): stretch (Long-CLIP positions, chunk if longer still), "
    "chunk (average of chunk embeddings), truncate (cut, reported), or error."
)


# -- image.index ------------------------------------------------------------------------------
class IndexInput(ToolInput):
    renamed = {"model": "clip"}

    collection: str = Field(min_length=1, description="Name of an image collection (collection kind 'image').")
    paths: list[str] = Field(
        min_length=1, max_length=10_000, description="Image files, folders (searched recursively) or glob patterns."
    )
    upsert: bool = Field(False, description="Replace images whose path is already indexed with changed content.")
    create: bool = Field(False, description="Create the image collection (with `clip`) if it does not exist.")
    clip: str | None = Field(
        None,
        description="CLIP spec for a collection created here (default: settings.clip); must match otherwise."
    )
    batch_size: int = Field(32, ge=1, le=1024, description="Images embedded per forward pass.")
    executor: Executor = Field("local", description=EXECUTOR_HELP)
    workers: int | None = Field(None, ge=1, le=4096, description=WORKERS_HELP)


IndexOutput = MediaIndexOutput


def _image_id(path: str, digest: str) -> str:
    return path if len(path) <= 512 else f"sha256:{digest}"


def _header(path: str, settings: Any) -> dict[str, Any]:
    """Cheap pre-check of one file (header only) so that a bad file fails before any embedding."""
    from PIL import Image, UnidentifiedImageError

    from vltools.models.media import IMAGE_FORMATS, load_image

    try:
        with Image.open(path) as im:
            w, h = im.size
            fmt = im.format
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        load_image(path, settings)  # raises the precise ToolError naming the file
        raise
    if fmt not in IMAGE_FORMATS or w * h > settings.max_image_pixels:
        load_image(path, settings)  # raises Unsupported / TooLarge naming the file
    return {"width": w, "height": h, "format": fmt}


@tool("image.index")
def index(inp: IndexInput, ctx: Context) -> IndexOutput:
    """Add image files, folders or globs to an image collection with CLIP embeddings (duplicates detected, all or
    nothing).

    Files are safely decoded, CLIP-embedded in batches and stored with path, size and content hash; duplicate content
    is reported, not re-added.
    """
    from vltools.models.media import expand_paths, load_image

    if inp.executor == "ray":
        return run_job("image", inp, ctx)
    coll, spec = open_media_collection(inp.collection, "image", ctx, clip=inp.clip, create=inp.create)
    files = expand_paths(inp.paths, ctx.settings)
    # 1. check every file's header and hash it: a bad file fails before anything is embedded.
    todo, duplicates, unchanged = plan_files(
        files, coll, ctx, check=lambda p: {**_header(str(p), ctx.settings), "bytes": p.stat().st_size},
        id_of=lambda p, digest: _image_id(str(p), digest), upsert=inp.upsert, note="checking files",
    )
    # 2. decode and embed in batches; any decode error aborts the call before the store is touched.
    backend = ctx.clip(spec)
    vectors = []
    import numpy as np

    for start in range(0, len(todo), inp.batch_size):
        part = todo[start : start + inp.batch_size]
        images = [load_image(r["path"], ctx.settings) for r in part]
        vectors.append(backend.encode_images(images, batch_size=inp.batch_size))
        ctx.progress(start + len(part), len(todo), "embedding images")
    # 3. the collection is created only now (a failed call leaves none behind), then one atomic add.
    vecs = np.concatenate(vectors) if vectors else None
    coll, result = add_all(coll, inp.collection, "image", spec, todo, vecs, upsert=inp.upsert, ctx=ctx)
    return IndexOutput(
        collection=coll.name,
        added=result["added"],
        updated=result["updated"],
        unchanged=unchanged,
        duplicates=duplicates,
        ids=[r["id"] for r in todo],
        count=result["count"],
    )


# -- image.search -----------------------------------------------------------------------------
class SearchInput(ToolInput):
    collection: str = Field(min_length=1, description="Name of an image collection.")
    query: str | None = Field(None, min_length=1, max_length=20_000, description="Text query (text→image search).")
    image: str | None = Field(None, min_length=1, description="Path of a query image (image→image search).")
    k: int = Field(10, ge=1, le=1000, description="Number of hits to return.")
    exclude_query_image: bool = Field(
        True, description="For image queries: drop stored images with the same content as the query image."
    )
    long_text: LongTextMode = Field("stretch", description=LONG_TEXT_HELP)
    contact_sheet: str | None = Field(None, min_length=1, description=CONTACT_SHEET_HELP)


class SearchOutput(Ranking):
    """The images best first, as a shared `Ranking` (each `Hit` has its ``path``)."""

    truncated: bool = Field(False, description="True when the text query exceeded the text tower's context.")
    notices: list[str] = Field(default_factory=list, description="How a long query was handled (P08).")
    contact_sheet: str | None = Field(None, description="Path of the contact sheet written, when one was asked for.")


def _image_sheet(hits: list[Hit], target: Any, title: str, ctx: Context) -> str:
    from vltools.core.errors import ToolError
    from vltools.models.media import load_image
    from vltools.tools._contact_sheet import render_sheet, save_sheet

    cells = []
    for h in hits:
        try:
            img = load_image(h.path, ctx.settings)
        except ToolError:  # a file moved or changed since it was indexed: an empty cell, not a failure
            img = None
        cells.append((img, f"#{h.rank}  {h.score:.3f}"))
    save_sheet(render_sheet(cells, title=title), target)
    return str(target)


@tool("image.search")
def search(inp: SearchInput, ctx: Context) -> SearchOutput:
    """Search an image collection by text (text-to-image) or by an example image (image-to-image) with CLIP.

    Returns the top-k images with cosine scores.
    """
    from vltools.models.media import check_path, file_sha256, load_image

    if (inp.query is None) == (inp.image is None):
        raise InvalidInput("give exactly one of query (text) or image (path)")
    sheet = check_sheet_path(inp.contact_sheet, ctx.settings) if inp.contact_sheet else None
    coll = ctx.collection(inp.collection)
    coll.require_kind("image", "image.search")
    title = f"{inp.collection}: {inp.query}" if inp.query is not None else f"{inp.collection}: like {inp.image}"
    if not coll.count:
        return SearchOutput(hits=[], contact_sheet=_image_sheet([], sheet, title, ctx) if sheet else None)
    backend = ctx.clip(coll.model)
    notices: list[str] = []
    truncated = False
    skip_hash = None
    if inp.query is not None:
        vecs, notes = backend.encode_texts_detailed([inp.query], long_text=inp.long_text)
        notices = backend.fit_notices([inp.query], notes, "query")
        truncated = notes[0] is not None
    else:
        img = load_image(inp.image, ctx.settings)
        vecs = backend.encode_images([img])
        if inp.exclude_query_image:
            skip_hash = file_sha256(check_path(inp.image, ctx.settings))
    extra = 8 if skip_hash else 0
    found = coll.search(vecs[0], min(inp.k + extra, coll.count))
    records = {r["id"]: r for r in coll.get([i for i, _ in found])}
    hits: list[Hit] = []
    for rid, score in found:
        rec = records.get(rid)
        if rec is None or (skip_hash and rec.get("hash") == skip_hash):
            continue
        hits.append(
            Hit(id=rid, path=rec.get("path") or "", score=float(score), rank=len(hits) + 1,
                title=rec.get("title") or "", metadata=rec.get("metadata") or {})
        )
        if len(hits) == inp.k:
            break
    written = _image_sheet(hits, sheet, title, ctx) if sheet else None
    return SearchOutput(query=inp.query or "", hits=hits, truncated=truncated, notices=notices, contact_sheet=written)


# -- image.classify ---------------------------------------------------------------------------
DEFAULT_TEMPLATES = ["{}", "a photo of a {}.", "an image of a {}."]


class ClassifyInput(ToolInput):
    renamed = {"model": "clip"}

    images: list[str] = Field(min_length=1, max_length=10_000, description="Paths of the images to classify.")
    labels: list[str] = Field(min_length=2, max_length=1000, description="Candidate class names.")
    clip: str | None = Field(None, description="CLIP spec: demo, open_clip:ARCH/TAG, ... (default: settings.clip).")
    descriptions: dict[str, list[str]] | Literal["wordnet"] | None = Field(
        None,
        description="Optional per-label descriptions (P20, GRAIN-style; Menon & Vondrick 2023): each is embedded as "
        "'LABEL, DESCRIPTION' and their mean is mixed with the label's prompt embedding (description_weight). "
        "'wordnet': every label's WordNet gloss and hypernym ('lemon, yellow oval fruit with juicy acidic flesh', "
        "'lemon, a kind of edible fruit'), from its first physical noun sense (label, then its aliases, then a "
        "multi-word label's words); labels WordNet lacks keep their prompts alone (listed in notices).",
    )
    description_weight: float = Field(
        0.5, ge=0, le=1,
        description="Weight of the descriptions' mean embedding against the prompts' (0.5: half and half).",
    )
    aliases: dict[str, list[str]] | None = Field(
        None,
        description="Optional alternative names per label ('puppy' for 'dog'): their prompts are averaged with "
        "the label's own (a synonym ensemble).",
    )
    templates: list[str] | None = Field(
        None, max_length=100, description="Prompt templates with one '{}' for the label (default: a small set)."
    )
    seen_labels: list[str] | None = Field(
        None,
        description="Labels the model was fine-tuned on (its whole training vocabulary may be given; only those among "
        "labels matter): their cosines are lowered by seen_margin so they do not swamp unseen labels (calibrated "
        "stacking).",
    )
    seen_margin: float = Field(
        0.05, ge=0, le=2, description="Cosine subtracted from every seen label's score (only with seen_labels)."
    )
    conse_top: int = Field(
        0, ge=0, le=1000,
        description="ConSE (Norouzi et al. 2014) for labels the model never saw: each image embedding is mixed with "
        "the probability-weighted mean of the prompt embeddings of its conse_top most likely seen_labels (which need "
        "not be among labels), so an image the model maps onto seen classes is scored by what those classes mean in "
        "the text space. 0: off; needs seen_labels.",
    )
    conse_keep: float = Field(
        0.75, ge=0, le=1, description="Weight of the image's own embedding in the ConSE mix (the rest: the seen mix)."
    )
    conse_temperature: float = Field(
        0.05, gt=0, le=10, description="Softmax temperature on the cosines to the seen labels in ConSE."
    )
    temperature: float = Field(1.0, gt=0, le=100, description="Softmax temperature on top of the model's logit scale.")
    batch_size: int = Field(32, ge=1, le=1024, description="Images embedded per forward pass.")
    long_text: LongTextMode = Field("stretch", description=LONG_TEXT_HELP)


class Classification(BaseModel):
    image: str = Field(description="The image path as given.")
    label: str = Field(description="The most probable label.")
    scores: dict[str, float] = Field(description="Probability per label (softmax of scaled cosines; sums to 1).")


class ClassifyOutput(BaseModel):
    results: list[Classification] = Field(description="One per image, in input order.")
    templates: list[str] = Field(description="The prompt templates used.")
    logit_scale: float = Field(description="The model's logit scale used to calibrate the softmax.")
    notices: list[str] = Field(default_factory=list, description="Prompts or descriptions longer than the context.")


def class_embeddings(
    backend: Any,
    labels: list[str],
    templates: list[str],
    descriptions: dict[str, list[str]] | None,
    long_text: str = "stretch",
    aliases: dict[str, list[str]] | None = None,
    description_weight: float = 0.5,
    encode: Any = None,
) -> tuple[Any, list[str]]:
    """(L2-normalised (n_labels, dim) class embeddings, notices): mean of template prompts (with aliases: the
    normalised sum of the label's and its aliases' prompt means), mixed with weight ``description_weight`` with
    the mean of 'LABEL, DESCRIPTION' embeddings where descriptions are given (0.5: half and half). ``encode``
    (texts -> normalised embeddings, e.g. a cached encoder) replaces the backend's own; it reports no notices."""
    import numpy as np

    texts: list[str] = []
    owners: list[tuple[int, str]] = []
    for li, label in enumerate(labels):
        for t in templates:
            texts.append(t.replace("{}", label))
            owners.append((li, "prompt"))
            for a in (aliases or {}).get(label, []):
                texts.append(t.replace("{}", a))
                owners.append((li, "alias"))
        for d in (descriptions or {}).get(label, []):
            texts.append(f"{label}, {d}")
            owners.append((li, "desc"))
    if encode is not None:
        emb, notes = encode(texts), [None] * len(texts)
    else:
        emb, notes = backend.encode_texts_detailed(texts, long_text=long_text)
    rows_of: dict[tuple[int, str], list[int]] = {}
    for i, o in enumerate(owners):
        rows_of.setdefault(o, []).append(i)

    def unit(v: Any) -> Any:
        return v / max(float(np.linalg.norm(v)), 1e-12)

    out = np.zeros((len(labels), emb.shape[1]), dtype=np.float32)
    for li in range(len(labels)):
        prompt = unit(emb[rows_of[(li, "prompt")]].mean(0))
        if (li, "alias") in rows_of:
            prompt = unit(prompt + unit(emb[rows_of[(li, "alias")]].mean(0)))
        if (li, "desc") in rows_of:
            desc = unit(emb[rows_of[(li, "desc")]].mean(0))
            prompt = (1 - description_weight) * prompt + description_weight * desc
        out[li] = unit(prompt)
    return out, backend.fit_notices(texts, notes, "prompt")


def conse_mix(feats: Any, seen: Any, top: int, keep: float, temperature: float) -> Any:
    """ConSE (Norouzi et al. 2014) mixed with the image itself: ``keep`` x the image embedding + (1 - keep) x the
    unit mean of its ``top`` nearest seen-class embeddings weighted by a softmax of cosine / temperature, renormalised.
    feats (n, d) and seen (m, d) are L2-normalised."""
    import numpy as np

    sims = feats.astype(np.float64) @ seen.T.astype(np.float64) / temperature
    top = min(top, seen.shape[0])
    idx = np.argsort(-sims, axis=1)[:, :top]
    near = np.take_along_axis(sims, idx, axis=1)
    w = np.exp(near - near.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    mix = np.einsum("nt,ntd->nd", w, seen[idx].astype(np.float64))
    mix /= np.maximum(np.linalg.norm(mix, axis=1, keepdims=True), 1e-12)
    out = keep * feats + (1 - keep) * mix
    return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def wordnet_label_descriptions(labels: list[str], aliases: dict[str, list[str]] | None) -> tuple[dict, list[str]]:
    """({label: WordNet descriptions} for the labels WordNet knows, notices naming those it does not)."""
    from vltools.tools._label_text import wordnet_descriptions

    out: dict[str, list[str]] = {}
    for lab in labels:
        d = wordnet_descriptions(lab, tuple((aliases or {}).get(lab, [])))
        if d:
            out[lab] = d
    missing = [lab for lab in labels if lab not in out]
    notes = [f"WordNet has no physical-object sense for {len(missing)} label(s), which keep their prompts alone: "
             + ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")] if missing else []
    return out, notes


@tool("image.classify")
def classify(inp: ClassifyInput, ctx: Context) -> ClassifyOutput:
    """Zero-shot classify images among given labels with CLIP prompt templates and optional class descriptions, with
    calibrated probabilities.

    Each description is embedded as "LABEL, DESCRIPTION" and averaged with the label's prompt embedding (P20);
    aliases' prompts join the label's. With ``seen_labels`` (the classes a model was fine-tuned on), their cosines
    are lowered by ``seen_margin`` before the softmax: calibrated stacking (Chao et al., 2016), which keeps seen
    classes from swamping unseen ones in generalised zero-shot classification. ``descriptions: "wordnet"`` takes
    the descriptions from WordNet glosses. ``conse_top`` (with ``seen_labels``) mixes each image embedding with the
    text embeddings of the seen classes it is closest to (ConSE), which carries labels the model never saw through
    the text space.
    """
    import numpy as np

    from vltools.models.media import check_path, load_image

    labels = [lab.strip() for lab in inp.labels]
    if any(not lab for lab in labels) or len(set(labels)) != len(labels):
        raise InvalidInput("labels must be non-empty and distinct")
    templates = inp.templates or DEFAULT_TEMPLATES
    bad = [t for t in templates if t.count("{}") != 1]
    if bad:
        raise InvalidInput(f"template {bad[0]!r} must contain exactly one '{{}}'", hint="e.g. 'a photo of a {}.'")
    given_desc = inp.descriptions if isinstance(inp.descriptions, dict) else None
    for what, given in (("descriptions", given_desc), ("aliases", inp.aliases)):
        unknown = sorted(set(given or {}) - set(labels))
        if unknown:
            raise InvalidInput(f"{what} given for unknown labels: {', '.join(unknown)}", hint="use names from labels")
    if any(not a.strip() for al in (inp.aliases or {}).values() for a in al):
        raise InvalidInput("aliases must be non-empty", hint="drop empty alias strings")
    for p in inp.images:  # every path is checked before the model loads or anything is decoded
        check_path(p, ctx.settings)
    seen_list = list(dict.fromkeys(s.strip() for s in inp.seen_labels or [] if s.strip()))
    if inp.conse_top and not seen_list:
        raise InvalidInput("conse_top needs seen_labels: the classes the model was trained on",
                           hint="give seen_labels (e.g. the model's training vocabulary) or drop conse_top")
    wn_notes: list[str] = []
    if inp.descriptions == "wordnet":
        descriptions, wn_notes = wordnet_label_descriptions(labels, inp.aliases)
    else:
        descriptions = given_desc
    backend = ctx.clip(inp.clip)
    classes, notices = class_embeddings(backend, labels, templates, descriptions, inp.long_text, inp.aliases,
                                        inp.description_weight)
    notices = wn_notes + notices
    seen_emb = None
    if inp.conse_top:
        seen_emb, seen_notes = class_embeddings(backend, seen_list, templates, None, inp.long_text)
        notices += seen_notes
    seen = set(seen_list)
    margin = np.array([inp.seen_margin if lab in seen else 0.0 for lab in labels], dtype=np.float32)
    results: list[Classification] = []
    # A tiny temperature would overflow to inf (then NaN probabilities); below 1e-3 it is argmax anyway.
    scale = backend.logit_scale / max(inp.temperature, 1e-3)
    for start in range(0, len(inp.images), inp.batch_size):
        part = inp.images[start : start + inp.batch_size]
        feats = backend.encode_images([load_image(p, ctx.settings) for p in part], batch_size=inp.batch_size)
        if seen_emb is not None:
            feats = conse_mix(feats, seen_emb, inp.conse_top, inp.conse_keep, inp.conse_temperature)
        logits = scale * (feats @ classes.T - margin)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        for path, row in zip(part, probs, strict=True):
            scores = {lab: float(p) for lab, p in zip(labels, row, strict=True)}
            results.append(Classification(image=path, label=labels[int(row.argmax())], scores=scores))
        ctx.progress(start + len(part), len(inp.images), "images classified")
    return ClassifyOutput(results=results, templates=templates, logit_scale=backend.logit_scale, notices=notices)


# ==============================================================================================
# Image understanding II (issue 12): quality (P12), regions (P46), global reranking (P06),
# ordering by text (P02), re-identification (P22), place recognition (P15). Numpy parts live in
# `_image_math`, shared plumbing in `_image_io`, trained adapters in `vltools.models.adapters`.
# ==============================================================================================

# QualiCLIP's antonym prompt pairs (positive, negative); the score is the softmax over each pair.
QUALITY_PAIRS: list[tuple[str, str]] = [
    ("Good photo.", "Bad photo."),
    ("a high quality photo.", "a low quality photo."),
    ("a sharp, clean photo.", "a blurry, noisy photo."),
]


def _plain_quality(feats: Any, pos: Any, neg: Any, scale: float) -> Any:
    """(n, pairs) softmax probability of each pair's positive prompt."""
    import numpy as np

    d = scale * (feats @ pos.T - feats @ neg.T)
    return 1.0 / (1.0 + np.exp(-d))


# -- image.quality ----------------------------------------------------------------------------
class QualityInput(ToolInput):
    renamed = {"model": "clip"}

    images: list[str] = Field(min_length=1, max_length=10_000, description="Paths of the images to score.")
    clip: str | None = Field(None, description="CLIP spec (default: settings.clip).")
    alignment: Literal["auto", "on", "off"] = Field(
        "auto",
        description="The quality-aware alignment trained on world degradations (P12): auto uses it when one was "
        "trained for this model, on requires it, off scores with the plain antonym prompts (the CLIP-IQA baseline).",
    )
    batch_size: int = Field(32, ge=1, le=1024, description="Images embedded per forward pass.")


class QualityResult(BaseModel):
    image: str = Field(description="The image path as given.")
    score: float = Field(description="Quality in [0, 1]: mean over antonym pairs of P(positive prompt).")
    prompts: dict[str, float] = Field(description="Per antonym pair ('GOOD / BAD'): P(positive prompt).")


class QualityOutput(BaseModel):
    results: list[QualityResult] = Field(description="One per image, in input order.")
    aligned: bool = Field(description="True when the quality-aware alignment was applied.")
    notices: list[str] = Field(default_factory=list, description="Why the alignment was not used, when it was not.")


def quality_adapter_name(spec: str) -> str:
    return "quality_" + spec.replace(":", "_").replace("/", "_")


@tool("image.quality")
def quality(inp: QualityInput, ctx: Context) -> QualityOutput:
    """Opinion-unaware image quality score in [0, 1] from CLIP antonym prompt pairs, with the quality-aware
    alignment trained on world degradations (QualiCLIP, P12).

    Each pair ("Good photo." / "Bad photo.", ...) gives the softmax probability of its positive prompt; the score is
    their mean. The alignment is a small residual map of the image embedding trained so that the score falls with
    every degradation level (scripts/train_quality_adapter.py).
    """
    from vltools.core.errors import Unsupported
    from vltools.models.adapters import load_adapter
    from vltools.tools._image_io import check_images, embed_paths, text_embeddings

    check_images(inp.images, ctx)
    backend = ctx.clip(inp.clip)
    notices: list[str] = []
    adapter = None
    if inp.alignment != "off":
        adapter = load_adapter(quality_adapter_name(backend.spec))
        reason = None
        if adapter is None:
            reason = f"no quality-aware alignment was trained for {backend.spec!r}"
        elif not adapter.matches(backend):
            reason = f"the quality alignment was trained on another version of {backend.spec!r}"
            adapter = None
        if reason and inp.alignment == "on":
            raise Unsupported(reason, hint="use alignment 'auto' or 'off', or train one with "
                              "scripts/train_quality_adapter.py --clip SPEC", details={"clip": backend.spec})
        if reason:
            notices.append(reason + "; plain antonym prompts used")
    texts = [t for pair in QUALITY_PAIRS for t in pair]
    temb = text_embeddings(backend, texts)
    feats = embed_paths(backend, inp.images, ctx, "images embedded", inp.batch_size)
    if adapter is not None:
        feats = adapter.apply(feats)
    probs = _plain_quality(feats, temb[0::2], temb[1::2], backend.logit_scale)
    names = [f"{a} / {b}" for a, b in QUALITY_PAIRS]
    results = [
        QualityResult(image=p, score=float(row.mean()), prompts={n: float(v) for n, v in zip(names, row, strict=True)})
        for p, row in zip(inp.images, probs, strict=True)
    ]
    return QualityOutput(results=results, aligned=adapter is not None, notices=notices)


# -- image.region_embed / image.ground (CLOC, P46) -------------------------------------------------
BoxList = list[float]


def _check_box(box: list[float], w: int, h: int, i: int) -> list[float]:
    import math

    if len(box) != 4:
        raise InvalidInput(f"box {i} has {len(box)} numbers; a box is [x0, y0, x1, y1]", details={"index": i})
    if not all(math.isfinite(v) for v in box):
        raise InvalidInput(f"box {i} has a non-finite number", hint="boxes are [x0, y0, x1, y1] in pixels",
                           details={"index": i})
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1)
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise InvalidInput(
            f"box {i} {box} is empty inside the {w}x{h} image",
            hint="boxes are [x0, y0, x1, y1] in pixels with x0 < x1 and y0 < y1", details={"index": i},
        )
    return [x0, y0, x1, y1]


def _pixel_box(b: list[float]) -> tuple[int, int, int, int]:
    """Integer crop box of at least one pixel."""
    x0, y0 = int(b[0]), int(b[1])
    return x0, y0, max(x0 + 1, int(round(b[2]))), max(y0 + 1, int(round(b[3])))


def region_vectors(backend: Any, image: Any, boxes: list[list[float]], method: str, dense: Any = None) -> Any:
    """(n, dim) region embeddings: ``pool`` = coverage-weighted mean of the dense features under the
    box (CLOC's promptable embedding read from the dense grid), ``crop`` = the crop's global
    embedding (the baseline), ``blend`` = their normalised sum, ``dense`` = the same pooling on the
    spliced sub-window features that `image.ground` reads (``dense`` may pass them, an `ImageFeatures`)."""
    import numpy as np

    from vltools.tools._image_math import box_weights, l2n, pool_region

    if method == "dense":
        from vltools.tools import _ovseg

        feats = dense if dense is not None else _ovseg.image_features(backend, image, mode="dense")
        return np.stack([_ovseg.pooled_region(feats, _ovseg.box_cells(feats, b)) for b in boxes])
    out = []
    if method in ("pool", "blend"):
        if dense is None:
            dense = backend.encode_dense([image])[0]
        gh, gw = dense.shape[:2]
        pooled = np.stack([pool_region(dense, box_weights(b, image.width, image.height, gh, gw)) for b in boxes])
        out.append(pooled)
    if method in ("crop", "blend"):
        crops = [image.crop(_pixel_box(b)) for b in boxes]
        out.append(backend.encode_images(crops).astype(np.float64))
    return l2n(sum(out))


class RegionEmbedInput(ToolInput):
    renamed = {"model": "clip"}

    image: str = Field(min_length=1, description="Path of the image.")
    boxes: list[BoxList] = Field(min_length=1, max_length=1000, description="Boxes [x0, y0, x1, y1] in pixels.")
    clip: str | None = Field(None, description="CLIP spec (default: settings.clip).")
    method: Literal["pool", "crop", "blend", "dense"] = Field(
        "blend",
        description="pool: dense features pooled under the box (CLOC-style promptable embedding); crop: the crop's "
        "global embedding (baseline); blend: both, summed; dense: pooled from the spliced sub-window features "
        "(finer grid, the features image.ground's default method reads).",
    )


class Region(BaseModel):
    box: BoxList = Field(description="The box, clipped to the image.")
    vector: list[float] = Field(description="L2-normalised region embedding in the CLIP joint space.")


class RegionEmbedOutput(BaseModel):
    regions: list[Region] = Field(description="One per box, in input order.")
    dim: int = Field(description="Embedding size.")
    method: str = Field(description="The method used.")


@tool("image.region_embed")
def region_embed(inp: RegionEmbedInput, ctx: Context) -> RegionEmbedOutput:
    """Embed boxes of an image into the CLIP joint space (box to region embedding, CLOC-style, P46), comparable with
    text embeddings.

    The promptable embedding pools the model's dense features under each box, weighted by cell coverage; the crop
    embedding is the baseline, and blend sums both.
    """
    from vltools.tools._image_io import check_images, load_images

    check_images([inp.image], ctx)
    img = load_images([inp.image], ctx)[0]
    boxes = [_check_box(b, img.width, img.height, i) for i, b in enumerate(inp.boxes)]
    backend = ctx.clip(inp.clip)
    vecs = region_vectors(backend, img, boxes, inp.method)
    ctx.progress(1, 1, "regions embedded")
    return RegionEmbedOutput(
        regions=[Region(box=b, vector=[float(x) for x in v]) for b, v in zip(boxes, vecs, strict=True)],
        dim=int(vecs.shape[1]), method=inp.method,
    )


class GroundInput(ToolInput):
    renamed = {"model": "clip"}

    image: str = Field(min_length=1, description="Path of the image.")
    query: str = Field(min_length=1, max_length=2000, description="What to find, e.g. 'the dog'.")
    clip: str | None = Field(None, description="CLIP spec (default: settings.clip).")
    k: int = Field(3, ge=1, le=100, description="At most this many boxes (after non-maximum suppression).")
    method: Literal["dense", "hybrid", "pool", "crop"] = Field(
        "dense",
        description="dense (default): a per-cell map of the query against background prompts on spliced sub-window "
        "features, thresholded into connected regions whose boxes are scored; pool/crop/hybrid (the earlier "
        "baselines): multi-scale sliding windows scored by pooled dense features, crop embeddings, or both.",
    )
    box_score: Literal["mass", "pooled", "crop"] = Field(
        "mass",
        description="dense: how a candidate box is scored - mass (mean query probability of its cells times the "
        "square root of its area share; chosen on dev scenes), pooled (cosine of its dense region embedding, as "
        "image.region_embed method dense gives, with the query) or crop (cosine of its crop's embedding).",
    )
    text_refine: float = Field(
        1.0, ge=0, le=4,
        description="dense: strength of the training-free text refinement (P48): the query embedding moves "
        "towards the image cells that attend to it (0 = off).",
    )
    shortlist: int = Field(24, ge=1, le=500, description="Hybrid: windows kept from the pooled scores for re-scoring.")
    contrast: bool = Field(
        False,
        description="Score against a vocabulary of everyday object names (the world's concept table) as well, so "
        "regions that match everything do not win (window methods: the query's probability instead of the "
        "cosine; dense: the vocabulary joins the per-cell softmax).",
    )
    nms_iou: float = Field(0.5, gt=0, le=1, description="Boxes overlapping a better one by this IoU are dropped.")


class GroundBox(BaseModel):
    box: BoxList = Field(description="[x0, y0, x1, y1] in pixels.")
    score: float = Field(description="dense: the box_score (mass in [0, 1], or a cosine); window methods: cosine "
                         "of the region embedding with the query (with contrast: its probability).")


_VOCAB: LRUCache[str, tuple[list[str], Any]] = LRUCache(maxsize=4)  # per CLIP spec: 707 names x dim


def _contrast_vocabulary(backend: Any, query: str) -> Any:
    """Text embeddings of 'a NAME' for the world's everyday object names not in the query (cached per model)."""
    from vltools.tools._image_io import text_embeddings
    from vltools.world.concept_table import concept_names

    hit = _VOCAB.get(backend.spec)
    if hit is None:
        names = concept_names("all")
        hit = (names, text_embeddings(backend, [f"a {n}" for n in names]))
        _VOCAB.put(backend.spec, hit)
    names, emb = hit
    q = query.lower()
    return emb[[i for i, n in enumerate(names) if n.lower() not in q]]


class GroundOutput(BaseModel):
    boxes: list[GroundBox] = Field(description="Best first.")
    method: str = Field(description="The scoring used.")
    candidates: int = Field(description="Candidate boxes scored (map regions for dense, windows otherwise).")


_DENSE: LRUCache[str, Any] = LRUCache(maxsize=16)  # per (model, image content): spliced dense features
_BACKGROUND: LRUCache[str, Any] = LRUCache(maxsize=4)  # per CLIP spec: background prompt embeddings


def _strip_article(query: str) -> str:
    """'a dog' -> 'dog', so the segmentation prompts ('a photo of a {}.') read naturally."""
    import re

    return re.sub(r"^(a|an|the)\s+", "", query.strip(), flags=re.IGNORECASE) or query.strip()


def _ground_dense(inp: GroundInput, backend: Any, img: Any, ctx: Context) -> tuple[list[list[float]], Any]:
    """Candidate boxes and scores of the dense method: the query's per-cell probability map (query vs
    background prompts, text-refined) on the segmentation features, its connected regions at several
    relative thresholds, each box scored by ``box_score``."""
    import hashlib

    import numpy as np

    from vltools.tools import _ovseg

    key = f"{backend.spec}:{img.size}:{hashlib.sha1(img.tobytes()).hexdigest()}"
    feats = _DENSE.get(key)
    if feats is None:  # the image side is query-independent: several queries on one image reuse it
        feats = _ovseg.image_features(backend, img, mode="dense")
        _DENSE.put(key, feats)
    ctx.progress(1, 2, "dense features")
    background = _BACKGROUND.get(backend.spec)
    if background is None:
        background = _ovseg.label_embeddings(backend, [[b] for b in _ovseg.BACKGROUND_PROMPTS])
        _BACKGROUND.put(backend.spec, background)
    rows = [_ovseg.label_embeddings(backend, [[_strip_article(inp.query)]]), background]
    if inp.contrast:
        rows.insert(1, _contrast_vocabulary(backend, inp.query).astype(np.float32))
    text = np.concatenate(rows)
    prob = _ovseg.query_map(backend, feats, text, text_refine=inp.text_refine)
    regions = _ovseg.map_regions(feats, prob)
    if not regions:  # the map is flat over the image (e.g. all in padding): the whole image is the only box
        regions = [([0.0, 0.0, float(img.width), float(img.height)], np.ones_like(prob, dtype=bool))]
    cands = [r[0] for r in regions]
    if inp.box_score == "mass":
        scores = np.array([_ovseg.region_mass(feats, prob, m) for _, m in regions])
    else:
        method = "dense" if inp.box_score == "pooled" else "crop"
        scores = region_vectors(backend, img, cands, method, dense=feats) @ text[0].astype(np.float64)
    ctx.progress(2, 2, "regions scored")
    return cands, scores


@tool("image.ground")
def ground(inp: GroundInput, ctx: Context) -> GroundOutput:
    """Find the boxes of an image that match a text (text to box) from dense features, boxes scored by region-text
    evidence (CLOC-style grounding, P46).

    Default (dense): the query's per-cell probability against background prompts on spliced sub-window features
    (the segment.open_vocab machinery), thresholded into connected regions whose boxes are scored; the window
    methods score multi-scale sliding windows by pooled or crop embeddings. Non-maximum suppression keeps the best
    distinct boxes.
    """
    import numpy as np

    from vltools.tools._image_io import check_images, load_images, text_embeddings
    from vltools.tools._image_math import nms, window_boxes

    check_images([inp.image], ctx)
    img = load_images([inp.image], ctx)[0]
    backend = ctx.clip(inp.clip)
    if inp.method == "dense":
        cands, scores = _ground_dense(inp, backend, img, ctx)
        keep = nms(cands, scores, inp.nms_iou, inp.k)
        boxes = [GroundBox(box=[round(v, 1) for v in cands[i]], score=float(scores[i])) for i in keep]
        return GroundOutput(boxes=boxes, method=inp.method, candidates=len(scores))
    t = text_embeddings(backend, [inp.query])[0]
    vocab = _contrast_vocabulary(backend, inp.query) if inp.contrast else None

    def score(vecs: Any) -> Any:
        if vocab is None:
            return vecs @ t
        z = backend.logit_scale * np.concatenate([(vecs @ t)[:, None], vecs @ vocab.T], axis=1)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e[:, 0] / e.sum(axis=1)

    cands = window_boxes(img.width, img.height)
    dense = backend.encode_dense([img])[0]
    if inp.method == "crop":
        scores = np.zeros(len(cands))
        for start in range(0, len(cands), 64):
            part = cands[start : start + 64]
            scores[start : start + len(part)] = score(region_vectors(backend, img, part, "crop"))
            ctx.progress(start + len(part), len(cands), "windows scored")
    else:
        scores = score(region_vectors(backend, img, cands, "pool", dense=dense))
        if inp.method == "hybrid":
            short = nms(cands, scores, 0.8, inp.shortlist)
            cands = [cands[i] for i in short]
            scores = score(region_vectors(backend, img, cands, "blend", dense=dense))
        ctx.progress(1, 1, "windows scored")
    keep = nms(cands, scores, inp.nms_iou, inp.k)
    boxes = [GroundBox(box=[round(v, 1) for v in cands[i]], score=float(scores[i])) for i in keep]
    return GroundOutput(boxes=boxes, method=inp.method, candidates=len(scores))


# -- image.rerank (SuperGlobal, P06) ------------------------------------------------------------
class RerankInput(ToolInput):
    collection: str = Field(min_length=1, description="Name of an image collection.")
    image: str = Field(min_length=1, description="Path of the query image.")
    k: int = Field(10, ge=1, le=1000, description="Number of hits to return.")
    candidates: int = Field(50, ge=2, le=1000, description="Top hits of plain image.search that are re-ranked (M).")
    neighbours: int = Field(2, ge=1, le=100, description="Neighbours used to refine each feature (K; default chosen "
                            "on dev world queries, the paper uses 9 with M = 400).")
    beta: float = Field(0.15, gt=0, le=10, description="Weight of a neighbour (times its similarity) against the "
                        "feature itself (weight 1) when refining a candidate (the paper's beta).")
    p: float = Field(8.0, ge=1, le=20, description="GeM exponent for pooling the dense features (default chosen on "
                     "dev world queries; the paper's GeM+ uses 4.6).")
    clip: str | None = Field(None, description="Must match the collection's CLIP spec when given.")
    exclude_query_image: bool = Field(True, description="Drop stored images with the same content as the query.")


class RerankOutput(Ranking):
    """The re-ranked images best first (each `Hit` has ``initial_rank``/``initial_score`` in metadata)."""

    candidates: int = Field(description="Hits of the first stage that were re-ranked.")


def superglobal_features(backend: Any, images: list[Any], p: float) -> Any:
    """Global features for SuperGlobal: the global embedding plus GeM-pooled dense features, summed
    after normalising each (the dense pooling is the paper's GeM stage)."""
    from vltools.tools._image_math import gem, l2n

    glob = backend.encode_images(images)
    try:
        pooled = gem(backend.encode_dense(images), p)
    except InvalidInput:  # towers without dense features: the global embedding alone
        return l2n(glob)
    return l2n(l2n(glob) + pooled)


def first_stage(coll: Any, backend: Any, image: str, m: int, exclude: bool, ctx: Context) -> tuple[Any, list[dict]]:
    """The query image's embedding and the collection's top-m records (with 'score'), query excluded."""
    from vltools.models.media import check_path, file_sha256, load_image

    qimg = load_image(image, ctx.settings)
    skip = file_sha256(check_path(image, ctx.settings)) if exclude else None
    found = coll.search(backend.encode_images([qimg])[0], min(m + (8 if skip else 0), coll.count))
    records = {r["id"]: r for r in coll.get([i for i, _ in found])}
    out = []
    for rid, score in found:
        rec = records.get(rid)
        if rec is None or (skip and rec.get("hash") == skip):
            continue
        out.append({**rec, "id": rid, "score": float(score)})
        if len(out) == m:
            break
    return qimg, out


@tool("image.rerank")
def rerank(inp: RerankInput, ctx: Context) -> RerankOutput:
    """Re-rank image-to-image search results with global features only (SuperGlobal, P06) - GeM-pooled dense features
    and neighbour-based refinement of the query and candidate features.

    The top candidates of plain image.search are re-embedded (global + GeM of dense features); each candidate's
    feature becomes a weighted mean with its K nearest candidates, the expanded query is the element-wise max of
    the K refined candidates it ranks highest, and the query's and expanded query's similarities are averaged.
    """
    from vltools.core.errors import ToolError
    from vltools.tools._image_io import check_images, collection_clip, load_images
    from vltools.tools._image_math import superglobal_rerank

    check_images([inp.image], ctx)
    coll = ctx.collection(inp.collection)
    coll.require_kind("image", "image.rerank")
    spec = collection_clip(coll, inp.clip, "image.rerank")
    if not coll.count:
        return RerankOutput(hits=[], candidates=0)
    backend = ctx.clip(spec)
    qimg, recs = first_stage(coll, backend, inp.image, inp.candidates, inp.exclude_query_image, ctx)
    if not recs:
        return RerankOutput(hits=[], candidates=0)
    images = []
    for start in range(0, len(recs), 32):
        try:
            images += load_images([r["path"] for r in recs[start : start + 32]], ctx)
        except ToolError as e:
            raise type(e)(f"a stored image cannot be read any more: {e.message}", hint="re-index the collection "
                          "(image.index with upsert) after moving or changing files", details=e.details) from e
        ctx.progress(len(images), len(recs), "candidates loaded")
    feats = superglobal_features(backend, [qimg, *images], inp.p)
    scores = superglobal_rerank(feats[0], feats[1:], inp.neighbours, inp.beta)
    order = sorted(range(len(recs)), key=lambda i: -scores[i])[: inp.k]
    hits = [
        Hit(id=recs[i]["id"], path=recs[i].get("path") or "", score=float(scores[i]), rank=r + 1,
            title=recs[i].get("title") or "",
            metadata={**(recs[i].get("metadata") or {}), "initial_rank": i + 1, "initial_score": recs[i]["score"]})
        for r, i in enumerate(order)
    ]
    return RerankOutput(hits=hits, candidates=len(recs))


# -- image.place_recognition (FoL, P15) ---------------------------------------------------------
def local_grid(backend: Any, image: Any, tiles: int) -> tuple[Any, Any]:
    """(cells, dim) dense features of ``image`` read on a ``tiles`` x ``tiles`` tiling (each tile
    gets the model's full dense grid, so small towers see finer detail) and (cells, 2) cell centres
    in [0, 1] image coordinates."""
    import numpy as np

    w, h = image.size
    crops, origins = [], []
    for r in range(tiles):
        for c in range(tiles):
            box = (c * w // tiles, r * h // tiles, (c + 1) * w // tiles, (r + 1) * h // tiles)
            crops.append(image.crop(box).resize((backend.image_size, backend.image_size)))
            origins.append((c / tiles, r / tiles))
    dense = backend.encode_dense(crops)
    _, gh, gw, d = dense.shape
    feats, xy = [], []
    for t, (ox, oy) in enumerate(origins):
        for i in range(gh):
            for j in range(gw):
                feats.append(dense[t, i, j])
                xy.append((ox + (j + 0.5) / (gw * tiles), oy + (i + 0.5) / (gh * tiles)))
    return np.asarray(feats, dtype=np.float64), np.asarray(xy)


def discriminative_weights(feats: Any) -> Any:
    """Per-cell weights favouring cells unlike the image's average cell (the mundane background), FoL's
    'reliable discriminative regions' read training-free; mean 1."""
    import numpy as np

    from vltools.tools._image_math import l2n

    mean = l2n(feats.mean(0))
    w = np.clip(1.0 - feats @ mean, 1e-3, None)
    return w / w.mean()


def local_match_score(
    qf: Any, qxy: Any, qw: Any, cf: Any, cxy: Any, cw: Any, radius: float = 0.15
) -> tuple[float, int]:
    """Mutual-nearest-neighbour matches between two images' cells, kept when their displacement
    agrees with the median displacement (a translation consistency check); the score is the
    discriminativeness-weighted similarity of the inliers over the query's total weight."""
    import numpy as np

    s = qf @ cf.T
    a = s.argmax(1)
    b = s.argmax(0)
    mutual = [i for i in range(len(qf)) if b[a[i]] == i]
    if not mutual:
        return 0.0, 0
    disp = np.array([cxy[a[i]] - qxy[i] for i in mutual])
    med = np.median(disp, axis=0)
    inl = [i for i, dv in zip(mutual, disp, strict=True) if np.linalg.norm(dv - med) <= radius]
    score = sum(qw[i] * cw[a[i]] * s[i, a[i]] for i in inl) / float(qw.sum())
    return float(score), len(inl)


class PlaceInput(ToolInput):
    collection: str = Field(min_length=1, description="Name of an image collection of the reference places.")
    image: str = Field(min_length=1, description="Path of the query image.")
    k: int = Field(5, ge=1, le=1000, description="Number of hits to return.")
    candidates: int = Field(20, ge=1, le=500, description="Top global hits re-ranked by local regions.")
    tiles: int = Field(2, ge=1, le=4, description="Tiling for the local features (tiles x tiles dense grids).")
    local_weight: float = Field(1.0, ge=0, le=100, description="Weight of the local score added to the global one.")
    clip: str | None = Field(None, description="Must match the collection's CLIP spec when given.")
    exclude_query_image: bool = Field(True, description="Drop stored images with the same content as the query.")


class PlaceOutput(Ranking):
    """The reference images best first; metadata has initial_rank, global_score, local_score, inliers."""

    candidates: int = Field(description="Global hits that were re-ranked.")


@tool("image.place_recognition")
def place_recognition(inp: PlaceInput, ctx: Context) -> PlaceOutput:
    """Recognise the place in a query image - global CLIP retrieval from an image collection, then re-ranking by
    reliable discriminative local regions matched with a consistency check (FoL, P15).

    Dense features of query and candidate are matched as mutual nearest neighbours, kept when their displacements
    agree, and weighted by how distinctive each cell is in its image; the local score is added to the global one.
    """
    from vltools.tools._image_io import check_images, collection_clip, load_images

    check_images([inp.image], ctx)
    coll = ctx.collection(inp.collection)
    coll.require_kind("image", "image.place_recognition")
    spec = collection_clip(coll, inp.clip, "image.place_recognition")
    if not coll.count:
        return PlaceOutput(hits=[], candidates=0)
    backend = ctx.clip(spec)
    qimg, recs = first_stage(coll, backend, inp.image, inp.candidates, inp.exclude_query_image, ctx)
    qf, qxy = local_grid(backend, qimg, inp.tiles)
    qw = discriminative_weights(qf)
    scored = []
    for i, rec in enumerate(recs):
        cimg = load_images([rec["path"]], ctx)[0]
        cf, cxy = local_grid(backend, cimg, inp.tiles)
        local, inliers = local_match_score(qf, qxy, qw, cf, cxy, discriminative_weights(cf))
        scored.append((rec["score"] + inp.local_weight * local, local, inliers, i))
        ctx.progress(i + 1, len(recs), "candidates matched")
    scored.sort(key=lambda s: -s[0])
    hits = [
        Hit(id=recs[i]["id"], path=recs[i].get("path") or "", score=float(total), rank=r + 1,
            title=recs[i].get("title") or "",
            metadata={**(recs[i].get("metadata") or {}), "initial_rank": i + 1, "global_score": recs[i]["score"],
                      "local_score": local, "inliers": inliers})
        for r, (total, local, inliers, i) in enumerate(scored[: inp.k])
    ]
    return PlaceOutput(hits=hits, candidates=len(recs))


# -- image.rank_by_text (P02) -------------------------------------------------------------------
class RankByTextInput(ToolInput):
    renamed = {"model": "clip"}

    images: list[str] = Field(min_length=2, max_length=10_000, description="Paths of the images to order (2 or more).")
    query: str = Field(
        min_length=1, max_length=500,
        description="The attribute to order by, e.g. 'more dogs', 'bigger', 'further left', 'more degraded'.",
    )
    clip: str | None = Field(None, description="CLIP spec (default: settings.clip).")
    adapter: Literal["auto", "on", "off"] = Field(
        "auto",
        description="The ranking adapter trained on world orderings (P02): auto uses it when one was trained for this "
        "model, on requires it, off orders by plain CLIP similarity with the query (baseline).",
    )
    batch_size: int = Field(32, ge=1, le=1024, description="Images embedded per forward pass.")


class Ranked(BaseModel):
    image: str = Field(description="The image path as given.")
    score: float = Field(description="How strongly the image expresses the query (higher = more).")
    rank: int = Field(ge=1, description="1 = expresses it most.")


class RankByTextOutput(BaseModel):
    results: list[Ranked] = Field(description="The images ordered, most first.")
    adapted: bool = Field(description="True when the ranking adapter was applied.")
    notices: list[str] = Field(default_factory=list, description="Why the adapter was not used, when it was not.")


def use_adapter(name: str, mode: str, backend: Any, what: str, script: str) -> tuple[Any, list[str]]:
    """(the adapter or None, notices) for an 'auto' / 'on' / 'off' choice."""
    from vltools.core.errors import Unsupported
    from vltools.models.adapters import load_adapter

    if mode == "off":
        return None, []
    adapter = load_adapter(name)
    reason = None
    if adapter is None:
        reason = f"no {what} was trained for {backend.spec!r}"
    elif not adapter.matches(backend):
        reason = f"the {what} was trained on another version of {backend.spec!r}"
        adapter = None
    if reason and mode == "on":
        raise Unsupported(reason, hint=f"use 'auto' or 'off', or train one with {script} --clip SPEC",
                          details={"clip": backend.spec})
    return adapter, [reason + "; plain CLIP used"] if reason else []


def adapter_name(kind: str, spec: str) -> str:
    return f"{kind}_" + spec.replace(":", "_").replace("/", "_")


@tool("image.rank_by_text")
def rank_by_text(inp: RankByTextInput, ctx: Context) -> RankByTextOutput:
    """Order images by how strongly they express a text attribute ('more dogs', 'bigger', 'further left', 'more
    degraded') with a light ranking-aware adapter on CLIP trained on world orderings (P02), or plain CLIP.

    The adapter is a residual low-rank map of image embeddings trained with a pairwise ranking loss on world sets
    ordered by count, size, position and degradation level (scripts/train_rank_adapter.py); scores are cosines with
    the query's text embedding.
    """
    from vltools.tools._image_io import check_images, embed_paths, text_embeddings

    check_images(inp.images, ctx)
    backend = ctx.clip(inp.clip)
    adapter, notices = use_adapter(adapter_name("rank", backend.spec), inp.adapter, backend, "ranking adapter",
                                   "scripts/train_rank_adapter.py")
    feats = embed_paths(backend, inp.images, ctx, "images embedded", inp.batch_size)
    if adapter is not None:
        feats = adapter.apply(feats)
    scores = feats @ text_embeddings(backend, [inp.query])[0]
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    results = [Ranked(image=inp.images[i], score=float(scores[i]), rank=r + 1) for r, i in enumerate(order)]
    return RankByTextOutput(results=results, adapted=adapter is not None, notices=notices)


# -- image.reidentify (CLIP-ReIdent, P22) ---------------------------------------------------------
class Crop(BaseModel):
    model_config = {"extra": "forbid"}

    image: str = Field(min_length=1, description="Path of the image (frame) holding the object.")
    box: BoxList | None = Field(None, description="[x0, y0, x1, y1] of the object; omit for the whole image.")
    text: str | None = Field(
        None, min_length=1, description="Instead of a box: what to look for; the box comes from image.ground."
    )
    identity: str | None = Field(None, description="Known identity (gallery items).")


class ReidInput(ToolInput):
    renamed = {"model": "clip"}

    query: list[Crop] = Field(min_length=1, max_length=5000, description="Object crops to identify.")
    gallery: list[Crop] | None = Field(
        None, max_length=20_000,
        description="Crops of known identities to match against; omitted: the queries are clustered among themselves.",
    )
    k: int = Field(5, ge=1, le=100, description="Nearest gallery items returned per query.")
    threshold: float = Field(0.85, ge=-1, le=1, description="Clustering: average cosine within an identity cluster.")
    adapter: Literal["auto", "on", "off"] = Field(
        "auto", description="The contrastive re-identification adapter trained on world tracks (P22): auto / on / off."
    )
    clip: str | None = Field(None, description="CLIP spec (default: settings.clip).")


class Neighbour(BaseModel):
    index: int = Field(description="Index in gallery (or in query, when clustering).")
    identity: str | None = Field(None, description="Its identity, when known.")
    score: float = Field(description="Cosine similarity of the crop embeddings.")


class ReidMatch(BaseModel):
    query: int = Field(description="Index in query.")
    identity: str | None = Field(None, description="Identity of the nearest gallery item (None when clustering).")
    neighbours: list[Neighbour] = Field(description="Nearest items, best first.")
    box: BoxList = Field(description="The crop box used.")


class ReidOutput(BaseModel):
    matches: list[ReidMatch] = Field(description="One per query, in order.")
    clusters: list[list[int]] = Field(description="Identity clusters of the query indices (average linkage).")
    adapted: bool = Field(description="True when the re-identification adapter was applied.")
    notices: list[str] = Field(default_factory=list, description="Why the adapter was not used, when it was not.")


def _crop_boxes(items: list[Crop], ctx: Context, clip: str | None) -> tuple[list[Any], list[list[float]]]:
    from vltools.tools._image_io import load_images

    crops, boxes = [], []
    for i, it in enumerate(items):
        img = load_images([it.image], ctx)[0]
        if it.box is not None:
            box = _check_box(it.box, img.width, img.height, i)
        elif it.text is not None:
            found = ctx.call("image.ground", {"image": it.image, "query": it.text, "k": 1, "clip": clip}).boxes
            box = found[0].box
        else:
            box = [0.0, 0.0, float(img.width), float(img.height)]
        crops.append(img.crop(_pixel_box(box)))
        boxes.append(box)
        ctx.progress(i + 1, len(items), "crops read")
    return crops, boxes


def clusters_of(feats: Any, threshold: float) -> list[list[int]]:
    """Average-linkage clusters whose mean pairwise cosine stays above ``threshold``."""
    if len(feats) == 1:
        return [[0]]
    import numpy as np
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    z = linkage(np.clip(pdist(feats, "cosine"), 0, None), "average")
    lab = fcluster(z, t=1.0 - threshold, criterion="distance")
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(lab):
        groups.setdefault(int(c), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


@tool("image.reidentify")
def reidentify(inp: ReidInput, ctx: Context) -> ReidOutput:
    """Re-identify objects across frames or cameras - embed object crops with CLIP (optionally through a contrastive
    adapter trained on world tracks, CLIP-ReIdent P22) and return nearest identities and identity clusters.

    Crops come from given boxes, from image.ground for a text, or whole images; gallery items carry identities.
    """
    import numpy as np

    from vltools.tools._image_io import check_images

    items = inp.query + (inp.gallery or [])
    for i, it in enumerate(items):
        if it.box is not None and it.text is not None:
            raise InvalidInput(f"crop {i} has both a box and a text", hint="give one of box or text")
    check_images([it.image for it in items], ctx, "crops")
    backend = ctx.clip(inp.clip)
    adapter, notices = use_adapter(adapter_name("reid", backend.spec), inp.adapter, backend,
                                   "re-identification adapter", "scripts/train_reid_adapter.py")
    crops, boxes = _crop_boxes(items, ctx, inp.clip)
    feats = backend.encode_images(crops).astype(np.float64)
    if adapter is not None:
        feats = adapter.apply(feats)
    nq = len(inp.query)
    q = feats[:nq]
    matches = []
    if inp.gallery:
        g = feats[nq:]
        sims = q @ g.T
        for i in range(nq):
            top = np.argsort(-sims[i])[: inp.k]
            nb = [Neighbour(index=int(j), identity=inp.gallery[j].identity, score=float(sims[i, j])) for j in top]
            matches.append(ReidMatch(query=i, identity=nb[0].identity, neighbours=nb, box=boxes[i]))
    else:
        sims = q @ q.T
        for i in range(nq):
            top = [j for j in np.argsort(-sims[i]) if j != i][: inp.k]
            nb = [Neighbour(index=int(j), identity=inp.query[j].identity, score=float(sims[i, j])) for j in top]
            matches.append(ReidMatch(query=i, identity=None, neighbours=nb, box=boxes[i]))
    return ReidOutput(matches=matches, clusters=clusters_of(q, inp.threshold), adapted=adapter is not None,
                      notices=notices)
# -- image.set_difference (P32, VisDiff; engine in _set_difference) --------------------------------
class SetDifferenceInput(ToolInput):
    set_a: list[str] = Field(min_length=2, max_length=2000, description="Paths of the images of set A.")
    set_b: list[str] = Field(min_length=2, max_length=2000, description="Paths of the images of set B.")
    clip: str | None = Field(None, description="CLIP spec: demo, open_clip:ARCH/TAG, ... (default: settings.clip).")
    vocabulary: list[str] | None = Field(
        None, max_length=5000,
        description="Words or phrases to caption the images with (used by caption.zero_shot when registered, else by "
        "CLIP zero-shot classification); needed unless candidates or llm are given.",
    )
    candidates: list[str] | None = Field(
        None, max_length=1000, description="Descriptions to rank as they are (in addition to proposed ones)."
    )
    llm: str | None = Field(None, description="LLM spec that proposes differences from both sets' captions.")
    proposals: int = Field(20, ge=1, le=200, description="Most descriptions proposed before ranking.")
    top_k: int = Field(10, ge=1, le=200, description="Differences returned.")
    captioner: Literal["caption.zero_shot", "vocabulary"] = Field(
        "caption.zero_shot",
        description="Who describes the images: the caption.zero_shot tool when it is registered (else the "
        "vocabulary), or CLIP zero-shot labels over the vocabulary.",
    )


class SetDifferenceOutput(BaseModel):
    differences: list[Difference] = Field(description="Candidate differences (A has, B lacks), highest AUROC first.")
    proposer: str = Field(description="How candidates were proposed: caption.zero_shot, vocabulary, llm, given.")
    notices: list[str] = Field(default_factory=list, description="How the proposer degraded, if it did.")


@tool("image.set_difference")
def set_difference(inp: SetDifferenceInput, ctx: Context) -> SetDifferenceOutput:
    """Describe how image set A differs from set B: candidate differences proposed from captions (or an LLM), ranked by
    how well CLIP separates the sets (AUROC).

    VisDiff (P32): proposer then ranker; set A's distinctive content first.
    """
    from vltools.tools import _set_difference as sd
    from vltools.tools._probe_common import load_images

    if not (inp.vocabulary or inp.candidates or inp.llm):
        raise InvalidInput(
            "nothing to propose differences from", hint="pass vocabulary (words to caption with), candidates or llm"
        )
    images_a = load_images(inp.set_a, ctx.settings)
    images_b = load_images(inp.set_b, ctx.settings)
    backend = ctx.clip(inp.clip)
    fa = backend.encode_images(images_a)
    fb = backend.encode_images(images_b)
    ctx.progress(1, 3, "images embedded")
    notices: list[str] = []
    cands: list[tuple[str, str]] = [(c.strip(), "given") for c in inp.candidates or [] if c.strip()]
    proposer = "given"
    caps = None
    if inp.vocabulary or inp.llm:
        caps = sd.caption_sets(ctx, inp.set_a, inp.set_b, inp.clip) if inp.captioner == "caption.zero_shot" else None
        if caps is None:
            why = "asked for" if inp.captioner == "vocabulary" else "used: caption.zero_shot is not registered"
            notices.append(f"CLIP zero-shot labels over the vocabulary {why}")
    if inp.llm is not None:
        if caps is None:
            if not inp.vocabulary:
                raise InvalidInput("llm needs captions: caption.zero_shot is not registered",
                                   hint="also pass a vocabulary to caption the images with")
            caps = _vocab_captions(backend, fa, fb, inp.vocabulary)
        cands += [(d, "llm") for d in sd.propose_with_llm(ctx.llm(inp.llm), caps[0], caps[1], inp.proposals)]
        proposer = "llm"
    elif caps is not None:
        phrases_a = [sd.caption_phrases([c]) for c in caps[0]]
        phrases_b = [sd.caption_phrases([c]) for c in caps[1]]
        cands += [(d, "captions") for d in sd.propose_from_counts(phrases_a, phrases_b, inp.proposals)]
        proposer = "caption.zero_shot"
    elif inp.vocabulary:
        cands += [(d, "vocabulary") for d in sd.propose_from_vocabulary(backend, fa, fb, inp.vocabulary, inp.proposals)]
        proposer = "vocabulary"
    ctx.progress(2, 3, "differences proposed")
    seen: set[str] = set()
    unique = [(d, s) for d, s in cands if not (d.lower() in seen or seen.add(d.lower()))]
    ranked = sd.rank(backend, fa, fb, unique)[: inp.top_k]
    ctx.progress(3, 3, "differences ranked")
    return SetDifferenceOutput(differences=ranked, proposer=proposer, notices=notices)


def _vocab_captions(backend: Any, fa: Any, fb: Any, vocabulary: list[str]) -> tuple[list[str], list[str]]:
    """Per image, a caption of its top-3 vocabulary words by CLIP similarity (the LLM proposer's input)."""
    import numpy as np

    from vltools.tools._probe_common import text_matrix

    text = text_matrix(backend, vocabulary, ["a photo of a {}.", "{}"])

    def caps(f: Any) -> list[str]:
        return [", ".join(vocabulary[int(i)] for i in row) for row in np.argsort(-(f @ text.T), axis=1)[:, :3]]

    return caps(fa), caps(fb)
