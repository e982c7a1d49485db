"""Zero-shot captioning (P01 MacCap) with CLIP-reward reranking (P36) and specificity guidance (P40).

`caption.zero_shot` decodes captions from an image's CLIP embedding with a small decoder trained on
**text only** (`vltools.models.caption_decoder`: captions reconstructed from their noisy CLIP text
embeddings). An image embedding sits a modality gap away from every text embedding, so before
decoding it is brought onto the text side: by default with DeCap's memory projection (the
softmax-weighted mix of the caption memory's text embeddings most similar to it, temperature chosen
on dev scenes; the decoder's noise level is calibrated to what remains), else by the old mean-offset
shift (``projection: "gap"``). Following MacCap it decodes from the whole image's feature and from
region-aggregated features (the whole image plus each dense cell or crop closest to it) and — with
``objects`` — from the objects the image holds (class-agnostic proposals, `_objects`, each the mean
feature of the views `vqa.zero_shot` names an object from, alone and added to the whole image),
collects the beam candidates, and picks the caption by CLIP reward — the CLIP-S score of each
candidate against the image (P36), plus its best CLIP-S against the objects and a small fluency
prior (the decoder's mean log-likelihood; both chosen on dev scenes: they drop captions that name
objects the image does not hold) — optionally steering decoding towards more specific captions by
classifier-free guidance between the conditioned and the unconditioned decoder (P40).
`caption.rerank` scores any list of captions by that reward.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from vltools.core import Context, InvalidInput, tool
from vltools.core.errors import BackendUnavailable
from vltools.schemas import ToolInput

CLIP_S_WEIGHT = 2.5  # CLIP-S = 2.5 * max(cos, 0) (Hessel et al.), the reward P36 optimises
PRIOR = 0.2  # fluency prior weight in the rerank score (chosen on dev scenes, benchmarks/README.md)
MAX_OBJECTS = 3  # object proposals decoded from


class CaptionCandidate(BaseModel):
    caption: str = Field(description="A candidate caption.")
    score: float = Field(
        description="Its score: the CLIP reward (CLIP-S = 2.5 x max(cosine, 0)) against the image; caption.zero_shot "
        "adds its best reward against the image's objects and the fluency prior (its `objects` and `prior` inputs).",
    )


class CaptionInput(ToolInput):
    image: str = Field(min_length=1, description="Path of the image to caption.")
    model: str | None = Field(None, description="CLIP spec (default: settings.clip, e.g. 'demo').")
    decoder: str | None = Field(
        None, description="Caption decoder weights trained for this CLIP by scripts/train_caption_decoder.py "
        "(default: the committed decoder of the 'demo' CLIP).",
    )
    n: int = Field(5, ge=1, le=20, description="Candidates to return.")
    beams: int = Field(4, ge=1, le=16, description="Beam width per decoding.")
    regions: bool | None = Field(
        None,
        description="Also decode from MacCap region-aggregated features of the grid cells; default: only when no "
        "object region is used (objects off or none found; the object regions replace them, chosen on dev scenes).",
    )
    objects: bool = Field(
        True,
        description="Also decode from the objects found in the image (class-agnostic proposals, the 3 largest, each "
        "the mean feature of its crops: the largest alone, each added to the whole image's feature) and add each "
        "candidate's best CLIP reward against them to its score (MacCap region aggregation on object regions).",
    )
    rerank: bool = Field(True, description="Pick the caption by CLIP reward (P36); False: by decoder likelihood.")
    prior: float = Field(
        PRIOR, ge=0, le=5,
        description="Weight of the decoder's mean log-likelihood (a fluency prior) added to the CLIP reward when "
        "reranking; 0: CLIP reward alone.",
    )
    guidance: float = Field(
        0.0, ge=0, le=5,
        description="Classifier-free guidance towards more specific captions (P40): logits + w x (cond - uncond).",
    )
    projection: Literal["memory", "gap", "none"] = Field(
        "memory",
        description="How the image feature reaches the text side before decoding: 'memory' (DeCap: softmax mix of "
        "the caption memory's text embeddings), 'gap' (add the mean text-minus-image offset), 'none'.",
    )
    temperature: float | None = Field(
        None, gt=0, le=1,
        description="Softmax temperature of the memory projection (default: the decoder's, chosen on dev scenes).",
    )
    samples: int = Field(
        0, ge=0, le=16,
        description="Extra noisy copies of each text-side feature to decode (MacCap's inference sampling; noise norm "
        "= the decoder's training noise), all candidates then picked by CLIP reward.",
    )
    memory: str | None = Field(
        None, description="Text file, one caption per line, to use as the projection memory instead of the decoder's "
        "own (embedded with the CLIP once, then cached).",
    )


class CaptionOutput(BaseModel):
    caption: str = Field(description="The chosen caption.")
    candidates: list[CaptionCandidate] = Field(description="Candidates with their CLIP reward, best first.")
    model: str = Field("", description="The CLIP spec used.")
    decoder: str = Field("", description="The decoder weights file used.")
    notice: str | None = Field(None, description="Fallbacks applied.")


def _image(path: str, ctx: Context) -> tuple[Any, tuple]:
    from vltools.models.media import check_path, load_image

    p = check_path(path, ctx.settings)
    st = p.stat()
    return load_image(path, ctx.settings), (str(p), st.st_mtime_ns, st.st_size)


def clip_reward(clip: Any, image_feat: np.ndarray, captions: list[str], cache_dir: Any = None) -> np.ndarray:
    """CLIP-S of each caption against one image feature."""
    from vltools.tools import _vqa_engine as eng

    t = eng.text_features(clip, captions, cache_dir)
    return CLIP_S_WEIGHT * np.clip(t @ image_feat, 0.0, None)


def _memory_file(path: str, clip: Any, ctx: Context) -> np.ndarray:
    """Unit text embeddings of a caption file's lines (the caller's projection memory)."""
    from vltools.models.media import check_path
    from vltools.tools import _vqa_engine as eng

    p = check_path(path, ctx.settings)
    lines = list(dict.fromkeys(ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()))
    if not lines:
        raise InvalidInput(f"memory file {path!r} holds no caption", hint="one caption per line")
    if len(lines) > 200_000:
        raise InvalidInput(f"memory file {path!r} holds {len(lines)} captions (max 200,000)",
                           hint="subsample the captions")
    return np.asarray(eng.text_features(clip, lines, ctx.settings.cache_dir), dtype=np.float32)


def _conditions(feats: np.ndarray, regions: bool, objects: np.ndarray | None = None) -> list[np.ndarray]:
    """The whole image's feature, then whole + region for the regions most similar to the whole image
    (MacCap: subregions sit closer to the paired text than the whole image does), then the largest
    object's feature alone and each object's added to the whole image's."""
    whole = feats[0]
    out = [whole]
    if regions and feats.shape[0] > 1:
        sims = feats[1:] @ whole
        for r in np.argsort(-sims)[:3]:
            v = whole + feats[1 + r]
            out.append(v / np.linalg.norm(v))
    if objects is not None and len(objects):
        out.append(objects[0])
        for o in objects:
            v = whole + o
            out.append(v / np.linalg.norm(v))
    return out


def object_features(clip: Any, image: Any) -> np.ndarray:
    """Unit features of the image's largest objects (class-agnostic proposals, `_objects`), each the mean
    embedding of its `naming_views` (its box on the image's own background at three margins and its mask
    on the border colour: the views `vqa.zero_shot` names an object from); (0, dim) when none is found."""
    from vltools.tools import _objects

    out = []
    for r in _objects.object_regions(image)[:MAX_OBJECTS]:
        m = np.asarray(clip.encode_images(_objects.naming_views(image, r)), dtype=np.float32).mean(0)
        out.append(m / max(float(np.linalg.norm(m)), 1e-9))
    return np.stack(out) if out else np.zeros((0, clip.dim), dtype=np.float32)


@tool("caption.zero_shot")
def zero_shot(inp: CaptionInput, ctx: Context) -> CaptionOutput:
    """Caption an image zero-shot - a text-only-trained decoder on CLIP image features, CLIP-reward reranked
    (MacCap, P36, P40 guidance).

    Returns the caption and the candidates with their CLIP reward.
    """
    from vltools.models import caption_decoder as cd
    from vltools.tools import _vqa_engine as eng

    image, key = _image(inp.image, ctx)
    clip = ctx.clip(inp.model)
    path = Path(inp.decoder).expanduser() if inp.decoder else cd.default_path(clip.spec)
    if path is None:
        raise BackendUnavailable(
            f"no caption decoder for CLIP {clip.spec!r}",
            hint="train one on text only: python scripts/train_caption_decoder.py --clip SPEC --corpus captions.txt "
                 "--out decoder.safetensors, then pass decoder",
        )
    if not path.is_file():
        raise InvalidInput(f"decoder file {str(path)!r} does not exist",
                           hint="pass the .safetensors file scripts/train_caption_decoder.py wrote")
    dec = cd.load(path)
    notices = []
    if dec.dim != clip.dim:
        raise InvalidInput(f"the decoder expects {dec.dim}-d features but {clip.spec} gives {clip.dim}-d",
                           hint=f"train a decoder for {clip.spec} with scripts/train_caption_decoder.py")
    if dec.meta.get("clip") not in (None, clip.spec):
        notices.append(f"the decoder was trained for {dec.meta.get('clip')!r}, not {clip.spec!r}")
    memory = _memory_file(inp.memory, clip, ctx) if inp.memory else dec.memory
    projection = inp.projection
    if projection == "memory" and memory is None:
        projection = "gap"
        notices.append("the decoder carries no caption memory and none was given: used the gap shift instead "
                       "(pass memory: a caption file)")
    temperature = inp.temperature or dec.temperature

    def to_text_side(v: np.ndarray) -> np.ndarray:
        if projection == "memory":
            return cd.project(v, memory, temperature)
        return dec.image_condition(v) if projection == "gap" else v

    feats = np.asarray(eng.region_features(clip, image, key))
    objs = None
    if inp.objects:
        try:
            objs = object_features(clip, image)
        except BackendUnavailable as err:
            notices.append(f"no object proposals ({err}); decoded without object views")
        if objs is not None and len(objs) == 0:
            notices.append("no object found in the image; decoded without object views")
    found: dict[str, float] = {}
    rng = np.random.default_rng(0)  # deterministic samples: the tool is idempotent
    noise = float(dec.meta.get("noise", 0.0))
    regions = inp.regions if inp.regions is not None else objs is None or len(objs) == 0
    for c in _conditions(feats, regions, objs):
        base = to_text_side(c)
        conds = [base]
        for _ in range(inp.samples if noise > 0 else 0):
            eps = rng.normal(size=base.shape).astype(np.float32)
            v = base + noise * eps / np.linalg.norm(eps)
            conds.append(v / np.linalg.norm(v))
        for cond in conds:
            for text, lp in dec.decode(cond, beams=inp.beams, guidance=inp.guidance, n_best=inp.beams):
                found[text] = max(found.get(text, -1e9), lp)
    if not found:
        raise BackendUnavailable("the caption decoder produced no caption", hint="try more beams or no guidance")
    texts = list(found)
    reward = clip_reward(clip, feats[0], texts, ctx.settings.cache_dir)
    if objs is not None and len(objs):  # the caption should also fit one of the objects seen on its own
        tf = eng.text_features(clip, texts, ctx.settings.cache_dir)
        reward = reward + CLIP_S_WEIGHT * np.clip(tf @ objs.T, 0.0, None).max(1)
    reward = reward + inp.prior * np.array([found[t] for t in texts])
    key_fn = (lambda i: reward[i]) if inp.rerank else (lambda i: found[texts[i]])
    order = sorted(range(len(texts)), key=lambda i: -key_fn(i))[: inp.n]
    cands = [CaptionCandidate(caption=texts[i], score=round(float(reward[i]), 6)) for i in order]
    return CaptionOutput(caption=cands[0].caption, candidates=cands, model=clip.spec, decoder=str(dec.path),
                         notice="; ".join(notices) or None)


class RerankInput(ToolInput):
    image: str = Field(min_length=1, description="Path of the image.")
    captions: list[str] = Field(min_length=1, max_length=500, description="Candidate captions to score.")
    model: str | None = Field(None, description="CLIP spec (default: settings.clip).")


class RerankOutput(BaseModel):
    caption: str = Field(description="The caption with the highest CLIP reward.")
    candidates: list[CaptionCandidate] = Field(description="All captions with their CLIP reward, best first.")
    model: str = Field("", description="The CLIP spec used.")


@tool("caption.rerank")
def rerank(inp: RerankInput, ctx: Context) -> RerankOutput:
    """Rank candidate captions of an image by CLIP reward (CLIP-S, the reward of P36)."""
    if any(not c.strip() for c in inp.captions):
        raise InvalidInput("captions must be non-empty strings", hint="drop the empty captions")
    image, _ = _image(inp.image, ctx)
    clip = ctx.clip(inp.model)
    feat = clip.encode_images([image])[0]
    reward = clip_reward(clip, feat, list(inp.captions), ctx.settings.cache_dir)
    order = np.argsort(-reward, kind="stable")
    cands = [CaptionCandidate(caption=inp.captions[i], score=round(float(reward[i]), 6)) for i in order]
    return RerankOutput(caption=cands[0].caption, candidates=cands, model=clip.spec)
