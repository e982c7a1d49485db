"""Image tools on a CLIP backend: index images into a collection, search it by text or image
(P03), and zero-shot classify images with prompt templates and class descriptions (P20).

Needs a CLIP spec (default ``demo``, offline); image files are read through
`vltools.models.media` (allowed roots, size limits, safe decoding).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from vltools.core.context import Context
from vltools.core.errors import InvalidInput
from vltools.core.tool import tool
from vltools.schemas import Hit, Ranking, ToolInput
from vltools.tools._contact_sheet import CONTACT_SHEET_HELP, check_sheet_path
from vltools.tools._media_index import MediaIndexOutput, add_all, open_media_collection, plan_files

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
    descriptions: dict[str, list[str]] | None = Field(
        None,
        description="Optional per-label descriptions (P20, GRAIN-style): each is embedded as 'LABEL, DESCRIPTION' "
        "and averaged with the label's prompt embedding.",
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
) -> tuple[Any, list[str]]:
    """(L2-normalised (n_labels, dim) class embeddings, notices): mean of template prompts (with aliases: the
    normalised sum of the label's and its aliases' prompt means), averaged half-and-half with the mean of
    'LABEL, DESCRIPTION' embeddings where descriptions are given."""
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
        parts = [prompt]
        if (li, "desc") in rows_of:
            parts.append(unit(emb[rows_of[(li, "desc")]].mean(0)))
        out[li] = unit(np.mean(parts, axis=0))
    return out, backend.fit_notices(texts, notes, "prompt")


@tool("image.classify")
def classify(inp: ClassifyInput, ctx: Context) -> ClassifyOutput:
    """Zero-shot classify images among given labels with CLIP prompt templates and optional class descriptions, with
    calibrated probabilities.

    Each description is embedded as "LABEL, DESCRIPTION" and averaged with the label's prompt embedding (P20);
    aliases' prompts join the label's. With ``seen_labels`` (the classes a model was fine-tuned on), their cosines
    are lowered by ``seen_margin`` before the softmax: calibrated stacking (Chao et al., 2016), which keeps seen
    classes from swamping unseen ones in generalised zero-shot classification.
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
    for what, given in (("descriptions", inp.descriptions), ("aliases", inp.aliases)):
        unknown = sorted(set(given or {}) - set(labels))
        if unknown:
            raise InvalidInput(f"{what} given for unknown labels: {', '.join(unknown)}", hint="use names from labels")
    if any(not a.strip() for al in (inp.aliases or {}).values() for a in al):
        raise InvalidInput("aliases must be non-empty", hint="drop empty alias strings")
    for p in inp.images:  # every path is checked before the model loads or anything is decoded
        check_path(p, ctx.settings)
    backend = ctx.clip(inp.clip)
    classes, notices = class_embeddings(backend, labels, templates, inp.descriptions, inp.long_text, inp.aliases)
    seen = set(inp.seen_labels or [])
    margin = np.array([inp.seen_margin if lab in seen else 0.0 for lab in labels], dtype=np.float32)
    results: list[Classification] = []
    # A tiny temperature would overflow to inf (then NaN probabilities); below 1e-3 it is argmax anyway.
    scale = backend.logit_scale / max(inp.temperature, 1e-3)
    for start in range(0, len(inp.images), inp.batch_size):
        part = inp.images[start : start + inp.batch_size]
        feats = backend.encode_images([load_image(p, ctx.settings) for p in part], batch_size=inp.batch_size)
        logits = scale * (feats @ classes.T - margin)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        for path, row in zip(part, probs, strict=True):
            scores = {lab: float(p) for lab, p in zip(labels, row, strict=True)}
            results.append(Classification(image=path, label=labels[int(row.argmax())], scores=scores))
        ctx.progress(start + len(part), len(inp.images), "images classified")
    return ClassifyOutput(results=results, templates=templates, logit_scale=backend.logit_scale, notices=notices)
