"""Caption tools for image-text datasets: `data.caption_quality` (P13: how well each caption describes its
image, to filter a dataset), `data.rewrite_captions` (P18, LaCLIP: several rewrites per caption, by rules or
an LLM, with diversity and meaning preservation reported) and `data.enrich_captions` (P10, VeCLIP: visual
concepts found in the image fused into the alt text).

Need a CLIP (caption_quality, enrich_captions; default ``demo``), a text encoder (rewrite_captions) and, in
LLM mode, an LLM.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, Field

from vltools.core.context import Context
from vltools.core.errors import InvalidInput
from vltools.core.tool import tool
from vltools.schemas import ToolInput
from vltools.tools.data._io import (
    STOPWORDS,
    load_list,
    mentions,
    normalise,
    plan_out,
    read_records,
    words,
    write_records,
)


def _image_text_scores(ctx: Context, clip: str | None, images: list[str], texts: list[str], batch: int) -> Any:
    """(image embeddings, text embeddings) from one CLIP, images decoded safely, with progress."""
    import numpy as np

    from vltools.models.media import load_image

    backend = ctx.clip(clip)
    feats = []
    for s in range(0, len(images), batch):
        part = [load_image(p, ctx.settings) for p in images[s : s + batch]]
        feats.append(backend.encode_images(part, batch_size=batch))
        ctx.progress(s + len(part), len(images), "images embedded")
    img = np.concatenate(feats).astype(np.float32)
    txt = np.asarray(backend.encode_texts(texts)[0], dtype=np.float32)
    return backend, img, txt


# -- data.caption_quality ---------------------------------------------------------------------------------
class QualityInput(ToolInput):
    data: str = Field(min_length=1, description="JSONL of image-text records (\"image\" and \"text\").")
    clip: str | None = Field(None, description="CLIP spec (default: settings.clip).")
    concepts: list[str] | None = Field(None, max_length=5000, description="Concept list for coverage: the concepts "
                                       "CLIP finds in each image, and how many of them the caption names.")
    concepts_file: str | None = Field(None, description="A text file of concepts, one per line (added to concepts).")
    min_match: float = Field(1.0, ge=-10.0, le=10.0, description="Flag a pair whose match z-score is below this: how "
                             "many standard deviations its own caption scores above the other captions (and its "
                             "image above the other images).")
    out: str | None = Field(None, description="Optional JSONL: the records with their scores and a keep flag.")
    overwrite: bool = Field(False, description="Replace out if it exists.")
    batch_size: int = Field(64, ge=1, le=1024, description="Images embedded per forward pass.")


class PairQuality(BaseModel):
    row: int = Field(description="0-based record number.")
    text: str = Field(description="The caption.")
    clip_score: float = Field(description="CLIPScore of the pair: 2.5 * max(cos, 0).")
    match_z: float = Field(description="Mean of the image-side and text-side z-scores of the pair's cosine.")
    rank: int = Field(description="Rank of the own caption among the dataset's distinct captions for this image "
                      "(1 = best).")


class QualityOutput(BaseModel):
    pairs: int = Field(description="Pairs scored.")
    flagged: int = Field(description="Pairs whose match z-score is below min_match (likely mislabelled).")
    flagged_pairs: list[PairQuality] = Field(description="The flagged pairs, worst first (up to 200).")
    mean_clip_score: float = Field(description="Mean CLIPScore.")
    recall_at_1: float = Field(description="Share of images whose own caption ranks first.")
    coverage: float | None = Field(None, description="Mean share of the image's found concepts the caption names.")
    specificity: float = Field(description="Mean number of content words per caption (not stopwords/boilerplate).")
    out: str | None = Field(None, description="The scored JSONL, when out was given.")


@tool("data.caption_quality")
def caption_quality(inp: QualityInput, ctx: Context) -> QualityOutput:
    """Score how well each caption describes its image - CLIP score, match z-score against the other pairs,
    concept coverage, specificity - and flag likely mislabelled pairs to filter a dataset.
    """
    import numpy as np

    rows = read_records(inp.data, ctx.settings, need_image=True, max_records=20_000)
    target = plan_out(inp.out, ctx.settings, inp.overwrite, inp.data) if inp.out else None
    concepts = load_list(inp.concepts, inp.concepts_file, ctx.settings, "concepts") \
        if inp.concepts or inp.concepts_file else None
    texts = [r["text"] for r in rows]
    uniq = list(dict.fromkeys(texts))
    tid = [uniq.index(t) for t in texts] if len(uniq) < 2000 else [dict((t, i) for i, t in enumerate(uniq))[t]
                                                                    for t in texts]
    if len(uniq) < 2:
        raise InvalidInput("every record has the same caption; matching needs two or more",
                           hint="give pairs with different captions")
    backend, img, txt = _image_text_scores(ctx, inp.clip, [r["image"] for r in rows], uniq, inp.batch_size)
    sims = img @ txt.T  # (images, distinct captions)
    own = sims[np.arange(len(rows)), tid]
    z_img = (own - sims.mean(1)) / (sims.std(1) + 1e-6)
    pair_txt = np.stack([sims[:, j] for j in tid], 1)  # (images, pairs): each pair's caption against all images
    z_txt = (own - pair_txt.mean(0)) / (pair_txt.std(0) + 1e-6)
    z = (z_img + z_txt) / 2
    rank = 1 + (sims > own[:, None]).sum(1)
    clip_score = 2.5 * np.maximum(own, 0)
    spec = [len({w for w in words(t) if w not in STOPWORDS}) for t in texts]
    cover: list[float | None] = [None] * len(rows)
    found: list[list[str]] = [[] for _ in rows]
    if concepts:
        from vltools.tools.image import class_embeddings

        bank, _ = class_embeddings(backend, concepts, ["{}", "a photo of a {}."], None)
        probs = backend.logit_scale * img @ bank.T
        probs = np.exp(probs - probs.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        for i, p in enumerate(probs):
            top = [concepts[j] for j in np.argsort(-p)[:3] if p[j] >= 0.2] or [concepts[int(p.argmax())]]
            found[i] = top
            tw = words(texts[i])
            cover[i] = sum(mentions(tw, c) for c in top) / len(top)
    flagged = [i for i in range(len(rows)) if z[i] < inp.min_match]
    flagged.sort(key=lambda i: z[i])

    def pq(i: int) -> PairQuality:
        return PairQuality(row=i, text=texts[i], clip_score=round(float(clip_score[i]), 4),
                           match_z=round(float(z[i]), 3), rank=int(rank[i]))

    out_path = None
    if target is not None:
        out_rows = []
        for i, r in enumerate(rows):
            extra: dict[str, Any] = {"clip_score": round(float(clip_score[i]), 4), "match_z": round(float(z[i]), 3),
                                     "rank": int(rank[i]), "specificity": spec[i], "keep": bool(z[i] >= inp.min_match)}
            if concepts:
                extra.update(found_concepts=found[i], coverage=cover[i])
            out_rows.append({**r, **extra})
        out_path = write_records(target, out_rows, ctx.settings)
    cov = [c for c in cover if c is not None]
    return QualityOutput(pairs=len(rows), flagged=len(flagged), flagged_pairs=[pq(i) for i in flagged[:200]],
                         mean_clip_score=round(float(clip_score.mean()), 4),
                         recall_at_1=round(float((rank == 1).mean()), 4),
                         coverage=round(sum(cov) / len(cov), 4) if cov else None,
                         specificity=round(sum(spec) / len(spec), 3), out=out_path)


# -- data.rewrite_captions ------------------------------------------------------------------------------------
RewriteMode = Literal["rules", "llm"]

# Generic English rephrasings (caption boilerplate, spatial prepositions, common adjectives/verbs).
_WRAPPERS = ["{}", "a photo of {}", "an image of {}", "a picture showing {}", "{} in a photo", "there is {}",
             "a snapshot of {}", "{}, as seen in the picture", "we can see {}", "this shows {}"]
_LEADS = re.compile(r"^(a photo of|an image of|a picture of|a picture showing|an image showing|a photo showing|"
                    r"there is|there are|this is|this shows|we can see|a scene with|a snapshot of)\s+", re.I)
_SWAPS = [("in the centre", "in the middle"), ("in the center", "in the middle"), ("on the left", "to the left"),
          ("on the right", "to the right"), ("at the top", "near the top"), ("at the bottom", "near the bottom"),
          ("small", "little"), ("big", "large"), ("picture", "image"), ("photo", "picture"), ("shows", "depicts"),
          ("next to", "beside"), ("above", "over"), ("below", "under")]
_LACLIP_EXAMPLES = [
    ("white and red cheerful combination in the bedroom for girl",
     "A bright and lively white-and-red color scheme in a girl's bedroom."),
    ("vintage photograph of a young boy feeding pigeons .", "A young boy feeding pigeons in an old photograph."),
    ("a dog on the beach at sunset", "At sunset, a dog is on the beach."),
]


def _strip_lead(text: str) -> str:
    return _LEADS.sub("", text.strip().rstrip(".")).strip()


def _reorder(core: str, rng: random.Random) -> str:
    """Swap the order of a top-level 'X and Y' / 'X, Y and Z' list."""
    parts = re.split(r",\s*|\s+and\s+", core)
    if len(parts) < 2 or any(not p for p in parts):
        return core
    rng.shuffle(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def rule_rewrites(text: str, n: int, rng: random.Random) -> list[str]:
    """Up to ``n`` distinct rule-based rewrites of ``text`` (wrapper template, list order, phrase swaps)."""
    core = _strip_lead(text)
    seen = {normalise(text)}
    out: list[str] = []
    for _ in range(n * 8):
        c = core
        if rng.random() < 0.6:
            c = _reorder(c, rng)
        for a, b in _SWAPS:
            if rng.random() < 0.5:
                if re.search(rf"\b{a}\b", c):
                    c = re.sub(rf"\b{a}\b", b, c)
                elif re.search(rf"\b{b}\b", c):
                    c = re.sub(rf"\b{b}\b", a, c)
        c = rng.choice(_WRAPPERS).format(c)
        key = normalise(c)
        if key not in seen:
            seen.add(key)
            out.append(c[0].upper() + c[1:] if rng.random() < 0.5 else c)
        if len(out) == n:
            break
    return out


def _llm_prompt(text: str) -> list[dict[str, str]]:
    shots = "\n".join(f"Caption: {a}\nRewrite: {b}" for a, b in _LACLIP_EXAMPLES)
    return [{"role": "system", "content": "You rewrite image captions in different words, keeping every object, "
             "attribute and relation and adding nothing. Answer with the rewrite only."},
            {"role": "user", "content": f"{shots}\nCaption: {text}\nRewrite:"}]


def _clean(answer: str) -> str:
    line = answer.strip().splitlines()[0] if answer.strip() else ""
    line = re.sub(r"^(rewrite|caption)\s*:\s*", "", line, flags=re.I)
    return line.strip().strip('"').strip()


def distinct_ngrams(texts: list[str], n: int = 2) -> int:
    """Number of distinct word n-grams over ``texts`` (how many phrasings the texts hold)."""
    return len({tuple(w[i : i + n]) for t in texts for w in [words(t)] for i in range(len(w) - n + 1)})


def lexical_change(a: str, b: str) -> float:
    """1 - Jaccard similarity of the word sets of ``a`` and ``b`` (0: same words)."""
    x, y = set(words(a)), set(words(b))
    return 1.0 - len(x & y) / len(x | y) if x | y else 0.0


class RewriteInput(ToolInput):
    data: str = Field(min_length=1, description="JSONL of records with \"text\" (image/source kept).")
    out: str = Field(min_length=1, description="Output JSONL: each record with \"rewrites\" (list of strings).")
    mode: RewriteMode = Field("rules", description="rules: generic rephrasings (templates, list order, phrase swaps); "
                              "llm: LaCLIP-style in-context rewriting by the LLM.")
    n: int = Field(3, ge=1, le=8, description="Rewrites per caption.")
    llm: str | None = Field(None, description="LLM spec for mode llm (default: settings.llm).")
    text_model: str | None = Field(None, description="Text encoder for meaning preservation "
                                   "(default: settings.text_model).")
    min_similarity: float = Field(0.6, ge=-1.0, le=1.0, description="Drop rewrites whose text-embedding cosine to the "
                                  "original is below this (meaning not kept).")
    temperature: float = Field(0.8, ge=0.0, le=2.0, description="LLM sampling temperature (mode llm).")
    seed: int = Field(0, ge=0, description="Seed of the rule choices.")
    overwrite: bool = Field(False, description="Replace out if it exists.")


class RewriteOutput(BaseModel):
    out: str = Field(description="The JSONL written.")
    captions: int = Field(description="Input captions.")
    rewrites: int = Field(description="Rewrites kept.")
    rejected: int = Field(description="Rewrites dropped (empty, same as the original, or below min_similarity).")
    input_unique: float = Field(description="Distinct captions / captions in the input (case and punctuation "
                                "normalised).")
    input_duplicate_groups: int = Field(description="Groups of input captions equal up to case and punctuation.")
    pool_unique: float = Field(description="Distinct texts / texts in the training pool (captions + rewrites).")
    bigrams_before: int = Field(description="Distinct word bigrams in the input captions.")
    bigrams_after: int = Field(description="Distinct word bigrams in the captions + rewrites.")
    lexical_change: float | None = Field(description="Mean 1 - word-set Jaccard of rewrite vs original (wording "
                                         "changed).")
    similarity_mean: float | None = Field(description="Mean text-embedding cosine rewrite-original (meaning kept).")
    similarity_min: float | None = Field(description="Lowest such cosine among kept rewrites.")
    examples: list[dict[str, Any]] = Field(description="A few captions with their rewrites.")


@tool("data.rewrite_captions")
def rewrite_captions(inp: RewriteInput, ctx: Context) -> RewriteOutput:
    """Rewrite each caption several ways (LaCLIP-style LLM rewrites, or rule-based rephrasings) keeping its meaning,
    and report diversity and meaning preservation.
    """
    import numpy as np

    rows = read_records(inp.data, ctx.settings, max_records=50_000)
    target = plan_out(inp.out, ctx.settings, inp.overwrite, inp.data)
    rng = random.Random(inp.seed)
    llm = ctx.llm(inp.llm) if inp.mode == "llm" else None
    if llm is not None:
        llm.require("generate", "data.rewrite_captions")
    cands: list[list[str]] = []
    cache: dict[str, list[str]] = {}
    for i, r in enumerate(rows):
        text = r["text"].strip()
        if text not in cache:
            if llm is None:
                cache[text] = rule_rewrites(text, inp.n, rng)
            else:
                got: list[str] = []
                for _ in range(inp.n):
                    ans = _clean(llm.generate(_llm_prompt(text), max_tokens=60, temperature=inp.temperature))
                    if ans and normalise(ans) not in {normalise(text), *map(normalise, got)}:
                        got.append(ans)
                cache[text] = got
        cands.append(cache[text])
        ctx.progress(i + 1, len(rows), "captions rewritten")
    flat = sorted({c for cs in cands for c in cs} | {r["text"].strip() for r in rows})
    sim_of: dict[tuple[str, str], float] = {}
    if any(cands):
        enc = ctx.text(inp.text_model)
        emb = np.asarray(enc.encode(flat, should_stop=ctx.should_stop), dtype=np.float32)
        idx = {t: k for k, t in enumerate(flat)}
        for r, cs in zip(rows, cands, strict=True):
            for c in cs:
                sim_of[(r["text"].strip(), c)] = float(emb[idx[r["text"].strip()]] @ emb[idx[c]])
    out_rows, kept_sims, rejected = [], [], inp.n * len(rows) - sum(len(c) for c in cands)
    for r, cs in zip(rows, cands, strict=True):
        keep = [c for c in cs if sim_of[(r["text"].strip(), c)] >= inp.min_similarity]
        rejected += len(cs) - len(keep)
        kept_sims += [sim_of[(r["text"].strip(), c)] for c in keep]
        out_rows.append({**r, "rewrites": keep})
    write_records(target, out_rows, ctx.settings)
    norm = [normalise(r["text"]) for r in rows]
    groups = sum(1 for c in Counter(norm).values() if c > 1)
    pool = [r["text"] for r in rows] + [c for r in out_rows for c in r["rewrites"]]
    return RewriteOutput(
        out=str(target), captions=len(rows), rewrites=len(kept_sims), rejected=rejected,
        input_unique=round(len(set(norm)) / len(norm), 4), input_duplicate_groups=groups,
        pool_unique=round(len({normalise(t) for t in pool}) / len(pool), 4),
        bigrams_before=distinct_ngrams([r["text"] for r in rows]), bigrams_after=distinct_ngrams(pool),
        lexical_change=round(float(np.mean([lexical_change(r["text"], c) for r in out_rows for c in r["rewrites"]])),
                             4) if kept_sims else None,
        similarity_mean=round(float(np.mean(kept_sims)), 4) if kept_sims else None,
        similarity_min=round(float(np.min(kept_sims)), 4) if kept_sims else None,
        examples=[{"text": r["text"], "rewrites": r["rewrites"]} for r in out_rows[:5]])


# -- data.enrich_captions ----------------------------------------------------------------------------------------
FuseMode = Literal["template", "llm"]


class EnrichInput(ToolInput):
    data: str = Field(min_length=1, description="JSONL of image-text records (\"image\" and \"text\", the alt text).")
    out: str = Field(min_length=1, description="Output JSONL: records with \"enriched\" (the fused caption), "
                     "\"visual_concepts\" and \"added\".")
    concepts: list[str] | None = Field(None, max_length=5000, description="Concept list image.classify chooses from.")
    concepts_file: str | None = Field(None, description="A text file of concepts, one per line (added to concepts).")
    clip: str | None = Field(None, description="CLIP spec (default: settings.clip).")
    top_k: int = Field(2, ge=1, le=10, description="Most visual concepts taken per image.")
    min_prob: float = Field(0.3, ge=0.0, le=1.0, description="Least zero-shot probability of a concept taken.")
    mode: FuseMode = Field("template", description="template: '{alt}, with {concepts}'; llm: the LLM merges them.")
    template: str = Field("{text}, with {concepts}", description="Fusion template (mode template): {text}, {concepts}.")
    llm: str | None = Field(None, description="LLM spec for mode llm (default: settings.llm).")
    overwrite: bool = Field(False, description="Replace out if it exists.")


class EnrichOutput(BaseModel):
    out: str = Field(description="The JSONL written.")
    records: int = Field(description="Records read.")
    enriched: int = Field(description="Captions that got at least one visual concept added.")
    missing_concepts: int = Field(description="Captions that name none of the concepts found in their image (alt text "
                                  "unrelated to the image, or the concept list lacks it).")
    missing_rows: list[int] = Field(description="Their 0-based record numbers (up to 500).")
    added: list[tuple[str, int]] = Field(description="Concepts added, most often first (up to 30).")
    examples: list[dict[str, str]] = Field(description="A few alt texts with their enriched captions.")
    notices: list[str] = Field(default_factory=list, description="How the visual concepts were found.")


@tool("data.enrich_captions")
def enrich_captions(inp: EnrichInput, ctx: Context) -> EnrichOutput:
    """Enrich alt-text captions with the visual concepts found in their images (VeCLIP-style) - zero-shot concepts
    fused into the caption by a template or an LLM; also flags captions that name none of the image's concepts.
    """
    if "{text}" not in inp.template or "{concepts}" not in inp.template:
        raise InvalidInput("template needs {text} and {concepts}", hint="e.g. '{text}, with {concepts}'")
    rows = read_records(inp.data, ctx.settings, need_image=True, max_records=20_000)
    target = plan_out(inp.out, ctx.settings, inp.overwrite, inp.data)
    concepts = load_list(inp.concepts, inp.concepts_file, ctx.settings, "concepts")
    if len(concepts) < 2:
        raise InvalidInput("give at least two concepts", hint="a concept list to choose visual concepts from")
    llm = ctx.llm(inp.llm) if inp.mode == "llm" else None
    found: list[list[str]] = []
    step = 256
    for s in range(0, len(rows), step):  # image.classify through the registry (its checks, its progress)
        res = ctx.call("image.classify", {"images": [r["image"] for r in rows[s : s + step]], "labels": concepts,
                                          "clip": inp.clip})
        for c in res.results:  # type: ignore[attr-defined]
            ranked = sorted(c.scores.items(), key=lambda kv: -kv[1])
            found.append([lab for lab, p in ranked[: inp.top_k] if p >= inp.min_prob] or [ranked[0][0]])
    out_rows, missing, added = [], [], Counter()
    for i, (r, fc) in enumerate(zip(rows, found, strict=True)):
        tw = words(r["text"])
        named = [c for c in fc if mentions(tw, c)]
        new = [c for c in fc if c not in named]
        if not named:
            missing.append(i)
        text = r["text"].strip().rstrip(".")
        if new and llm is not None:
            msg = [{"role": "system", "content": "Merge the visual concepts into the caption as one fluent sentence. "
                    "Keep the caption's content. Answer with the sentence only."},
                   {"role": "user", "content": f"Caption: {text}\nVisual concepts: {', '.join(new)}\nSentence:"}]
            fused = _clean(llm.generate(msg, max_tokens=60, temperature=0.0))
            if not fused:
                fused = inp.template.format(text=text, concepts=" and ".join(new))
        elif new:
            fused = inp.template.format(text=text, concepts=" and ".join(new))
        else:
            fused = r["text"]
        added.update(new)
        out_rows.append({**r, "enriched": fused, "visual_concepts": fc, "added": new})
        ctx.progress(i + 1, len(rows), "captions enriched")
    write_records(target, out_rows, ctx.settings)
    return EnrichOutput(
        out=str(target), records=len(rows), enriched=sum(1 for r in out_rows if r["added"]),
        missing_concepts=len(missing), missing_rows=missing[:500], added=added.most_common(30),
        examples=[{"text": r["text"], "enriched": r["enriched"]} for r in out_rows[:5]],
        notices=["visual concepts from image.classify (CLIP zero-shot over the concept list); caption.zero_shot "
                 "is not used"])
