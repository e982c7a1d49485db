"""`segment.open_vocab`: masks for free-text labels with any dense CLIP, training-free.

Modes (see `vltools.tools._ovseg`): ``dense`` (default; Trident-style sub-image windows spliced and
re-aggregated with global context, P33), ``proposals`` (superpixel/region-merging proposals, each
cut out and classified by CLIP, P41) and ``plain`` (the whole image's dense features, the
baseline). Labels may be expanded with WordNet synonyms/hypernyms or LLM paraphrases and
calibrated against the global text prototype (P27); label embeddings may be refined with the
image's own features (P48). Writes one PNG per label mask and an overlay PNG.

Needs a CLIP spec whose image tower gives dense features (``demo``, open_clip ViTs and
attention-pooled ResNets); WordNet for ``expand="wordnet"``; an LLM for ``expand="llm"``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from vltools.core.context import Context
from vltools.core.errors import InvalidInput
from vltools.core.tool import tool
from vltools.schemas import Mask, ToolInput
from vltools.tools._label_text import clean_text

Mode = Literal["dense", "proposals", "plain"]
Expand = Literal["none", "wordnet", "llm"]
OVERLAY_COLOURS = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
                   (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212))


class OpenVocabInput(ToolInput):
    renamed = {"model": "clip"}

    image: str = Field(min_length=1, description="Path of the image to segment.")
    labels: list[str] = Field(min_length=1, max_length=50, description="Free-text labels to find (e.g. 'dog', 'car').")
    mode: Mode = Field(
        "dense",
        description="dense: sub-image windows spliced then refined with global context (P33); proposals: region "
        "proposals each classified by CLIP (P41); plain: the whole image's dense features (baseline).",
    )
    clip: str | None = Field(None, description="CLIP spec with dense features (default: settings.clip).")
    expand: Expand = Field(
        "none",
        description="Label expansion (P27): none, wordnet (synonyms + hypernym) or llm (paraphrases; needs llm).",
    )
    llm: str | None = Field(None, description="LLM spec for expand='llm' (default: settings.llm).")
    calibration: float = Field(
        0.0, ge=0, le=1,
        description="Strength of the global-prototype calibration (P27): the mean of all label and background "
        "embeddings is subtracted this much, so a rare label is not swamped (0 = off).",
    )
    text_refine: float = Field(
        1.0, ge=0, le=2,
        description="Strength of content-dependent text refinement (P48): label embeddings move towards the image "
        "features that attend to them (0 = off; 1.0 was best on dev world scenes).",
    )
    background: list[str] | None = Field(
        None, max_length=50, description="Prompts that stand for 'none of the labels' (default: generic backgrounds)."
    )
    out_dir: str | None = Field(
        None,
        description="Folder for the mask PNGs and the overlay (under the allowed roots; default: a folder under "
        "VLTOOLS_HOME/outputs/segment).",
    )


class LabelMask(BaseModel):
    label: str = Field(description="The label as given.")
    mask_path: str = Field(description="PNG of the mask (white = label), the image's size.")
    area: float = Field(description="Fraction of the image's pixels in the mask (0 when the label was not found).")
    pixels: int = Field(description="Pixels in the mask.")
    score: float = Field(description="Mean probability of the label over its mask (0 when empty).")
    presence: float = Field(description="Whole-image CLIP probability of the label among the labels given.")
    rle: Mask = Field(description="The mask as run-length encoding (row-major, starting with 0s).")


class OpenVocabOutput(BaseModel):
    masks: list[LabelMask] = Field(description="One per label, in input order.")
    overlay_path: str = Field(description="PNG of the image with the masks drawn over it, for people to look at.")
    mode: Mode = Field(description="The mode used.")
    clip: str = Field(description="The CLIP spec used.")
    expansions: dict[str, list[str]] = Field(description="The extra names each label was expanded with.")
    notices: list[str] = Field(default_factory=list, description="Labels that could not be expanded, and why.")


def wordnet_expansions(label: str, limit: int = 3) -> list[str]:
    """Synonyms of the label's most frequent noun sense, then '<label>, a kind of <hypernym>' (P27)."""
    from vltools.tools.factcheck._wordnet import get_wordnet

    wn = get_wordnet()
    synsets = wn.synsets(label.strip().replace(" ", "_"), pos="n")
    if not synsets:
        return []
    first = synsets[0]
    out: list[str] = []
    for lemma in first.lemma_names():
        name = clean_text(lemma)
        if name.lower() != label.lower() and name not in out and len(out) < limit:
            out.append(name)
    hypers = first.hypernyms()
    if hypers:
        out.append(f"{label}, a kind of {clean_text(hypers[0].lemma_names()[0])}")
    return out


def llm_expansions(label: str, llm: Any, limit: int = 3) -> list[str]:
    """Up to ``limit`` short paraphrases of the label from an LLM (one per line)."""
    reply = llm.generate(
        [{"role": "user", "content": f"Give {limit} other short names for '{label}', one per line, nothing else."}],
        max_tokens=48,
    )
    out: list[str] = []
    for line in reply.splitlines():
        name = clean_text(re.sub(r"^[\s\-*\d.)]+", "", line)).strip(" .,'\"")
        if name and name.lower() != label.lower() and len(name) <= 60 and name not in out:
            out.append(name)
        if len(out) == limit:
            break
    return out


def _out_dir(inp: OpenVocabInput, ctx: Context, labels: list[str]) -> Path:
    from vltools.core.paths import check_output_dir, resolve_under_roots

    if inp.out_dir:
        return check_output_dir(resolve_under_roots(inp.out_dir, ctx.settings, what="out_dir"), ctx.settings)
    key = json.dumps([str(Path(inp.image).expanduser().resolve()), labels, inp.mode, inp.clip, inp.expand,
                      inp.calibration, inp.text_refine, inp.background])
    folder = ctx.settings.home / "outputs" / "segment" / hashlib.sha256(key.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)  # the tool's own area under VLTOOLS_HOME
    return folder


def _slug(label: str, i: int) -> str:
    return f"{i:02d}_" + (re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_")[:40] or "label")


def _rle(mask: Any, label: str, path: str) -> Mask:
    from vltools.world.objects import rle_encode

    r = rle_encode(mask)
    return Mask(height=r["size"][0], width=r["size"][1], counts=r["counts"], path=path, label=label)


def _overlay(image: Any, label_map: Any, labels: list[str]) -> Any:
    import numpy as np
    from PIL import Image, ImageDraw

    arr = np.asarray(image.convert("RGB"), dtype=np.float32)
    out = arr.copy()
    for i in range(len(labels)):
        m = label_map == i
        out[m] = 0.45 * arr[m] + 0.55 * np.asarray(OVERLAY_COLOURS[i % len(OVERLAY_COLOURS)], np.float32)
    scale = max(1, 256 // max(image.size))
    img = Image.fromarray(out.astype(np.uint8), "RGB").resize((image.width * scale, image.height * scale),
                                                               Image.NEAREST)
    legend = Image.new("RGB", (img.width, 14 * len(labels) + 4), (255, 255, 255))
    draw = ImageDraw.Draw(legend)
    for i, lab in enumerate(labels):
        draw.rectangle((4, 4 + 14 * i, 14, 14 + 14 * i), fill=OVERLAY_COLOURS[i % len(OVERLAY_COLOURS)])
        draw.text((20, 3 + 14 * i), lab[:60], fill=(0, 0, 0))
    sheet = Image.new("RGB", (img.width, img.height + legend.height), (255, 255, 255))
    sheet.paste(img, (0, 0))
    sheet.paste(legend, (0, img.height))
    return sheet


@tool("segment.open_vocab")
def open_vocab(inp: OpenVocabInput, ctx: Context) -> OpenVocabOutput:
    """Segment free-text labels in an image with any CLIP, training-free: one mask (PNG + run-length code), area and
    score per label, and an overlay.

    Modes: dense (Trident-style sub-image windows with global refinement, P33), proposals (region proposals
    classified by CLIP, P41), plain (baseline); optional WordNet/LLM label expansion with global-prototype calibration
    (P27) and content-dependent text refinement (P48).
    """
    import numpy as np
    from PIL import Image

    from vltools.models.media import load_image
    from vltools.tools import _ovseg

    labels = [clean_text(lab) for lab in inp.labels]
    if any(not lab for lab in labels) or len({lab.lower() for lab in labels}) != len(labels):
        raise InvalidInput("labels must be non-empty and distinct", hint='e.g. ["dog", "car"]')
    background = tuple(clean_text(b) for b in (inp.background or _ovseg.BACKGROUND_PROMPTS))
    if not all(background):
        raise InvalidInput("background prompts must be non-empty", hint='e.g. ["background", "a wall"]')
    clash = sorted({lab.lower() for lab in labels} & {b.lower() for b in background})
    if clash:
        raise InvalidInput(f"label {clash[0]!r} is also a background prompt", hint="pass background prompts without it")
    if inp.llm is not None and inp.expand != "llm":
        raise InvalidInput("llm is used only with expand='llm'", hint='add "expand": "llm" or drop llm')
    image = load_image(inp.image, ctx.settings)
    backend = ctx.clip(inp.clip)
    notices: list[str] = []
    expansions: dict[str, list[str]] = {}
    llm = ctx.llm(inp.llm) if inp.expand == "llm" else None
    for i, lab in enumerate(labels):
        extra = []
        if inp.expand == "wordnet":
            extra = wordnet_expansions(lab)
            if not extra:
                notices.append(f"label {lab!r} is not a WordNet noun: used as given")
        elif llm is not None:
            extra = llm_expansions(lab, llm)
            if not extra:
                notices.append(f"the LLM gave no paraphrase of {lab!r}: used as given")
        expansions[lab] = extra
        ctx.progress(i + 1, len(labels) + 2, "labels expanded")
    res = _ovseg.segment(
        backend, image, [[lab, *expansions[lab]] for lab in labels], mode=inp.mode, background=background,
        calibration=inp.calibration, text_refine=inp.text_refine,
    )
    ctx.progress(len(labels) + 1, len(labels) + 2, "segmented")
    folder = _out_dir(inp, ctx, labels)
    total = res.label_map.size
    masks: list[LabelMask] = []
    for i, lab in enumerate(labels):
        m = res.label_map == i
        path = folder / f"{_slug(lab, i)}.png"
        Image.fromarray((m * 255).astype(np.uint8), "L").save(path)
        pixels = int(m.sum())
        masks.append(LabelMask(
            label=lab, mask_path=str(path), area=pixels / total, pixels=pixels,
            score=float(res.probs[i][m].mean()) if pixels else 0.0, presence=float(res.presence[i]),
            rle=_rle(m, lab, str(path)),
        ))
    overlay = folder / "overlay.png"
    _overlay(image, res.label_map, labels).save(overlay)
    ctx.progress(len(labels) + 2, len(labels) + 2, "masks written")
    return OpenVocabOutput(masks=masks, overlay_path=str(overlay), mode=inp.mode, clip=backend.spec,
                           expansions=expansions, notices=notices)
