"""`data.curate_metaclip` (P07, MetaCLIP curation: substring matching to metadata entries and balancing
by capping each entry at ``t`` matches) and `data.cluster_topics` (P23, VideoUFO's topic discovery:
text embeddings, k-means, representative-term naming; with near-duplicate groups).

Both read a JSONL of ``{"text": ..., "image"?: ..., "source"?: ...}`` records. Needs numpy; cluster_topics
also a text encoder (default ``minilm``) and scikit-learn.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

from pydantic import BaseModel, Field

from vltools.core.context import Context
from vltools.core.errors import InvalidInput
from vltools.core.tool import tool
from vltools.schemas import ToolInput
from vltools.tools.data._io import STOPWORDS, load_list, normalise, plan_out, read_records, words, write_records


# -- data.curate_metaclip ---------------------------------------------------------------------------------
class CurateInput(ToolInput):
    data: str = Field(min_length=1, description="JSONL of records with \"text\" (image/source kept).")
    out: str = Field(min_length=1, description="Output JSONL of the curated records (each with its matched entries).")
    entries: list[str] | None = Field(None, max_length=500_000, description="Metadata entries (concepts, WordNet "
                                      "lemmas, your own terms) matched as whole-word substrings of the texts.")
    entries_file: str | None = Field(None, description="A text file of entries, one per line (added to entries).")
    t: int = Field(20_000, ge=1, le=10**9, description="Balancing threshold: an entry matched by more texts than t "
                   "keeps each of them with probability t/count (MetaCLIP's head capping).")
    keep_unmatched: bool = Field(False, description="Keep texts that match no entry (MetaCLIP drops them).")
    seed: int = Field(0, ge=0, description="Seed of the sampling.")
    top: int = Field(20, ge=1, le=1000, description="Entries listed in the report's head distribution.")
    overwrite: bool = Field(False, description="Replace out if it exists.")


class Distribution(BaseModel):
    records: int = Field(description="Records.")
    matches: int = Field(description="(record, entry) matches.")
    entries_matched: int = Field(description="Entries matched at least once.")
    top: list[tuple[str, int]] = Field(description="Most matched entries with their counts.")
    top_share: float = Field(description="Share of all matches taken by the 10 most matched entries.")
    head_share: float = Field(description="Share of all matches taken by head entries (count > t before curation).")
    entropy: float = Field(description="Normalised entropy of the entry distribution (1 = uniform).")


class CurateOutput(BaseModel):
    out: str = Field(description="The curated JSONL.")
    unmatched: int = Field(description="Input records that match no entry.")
    head_entries: list[str] = Field(description="Entries with more than t matches (capped), most matched first.")
    before: Distribution = Field(description="Entry distribution of the input (matched records).")
    after: Distribution = Field(description="Entry distribution of the output.")


def match_entries(texts: list[str], entries: list[str]) -> list[list[str]]:
    """For each text, the entries occurring in it as whole-word sequences (overlaps allowed, as MetaCLIP)."""
    keys: dict[tuple[str, ...], str] = {}
    for e in entries:
        w = tuple(words(e))
        if w:
            keys.setdefault(w, e)
    if not keys:
        raise InvalidInput("no entry has a word in it", hint="give entries made of letters or digits")
    longest = max(len(k) for k in keys)
    out = []
    for t in texts:
        w = words(t)
        found: list[str] = []
        for n in range(1, longest + 1):
            for i in range(len(w) - n + 1):
                e = keys.get(tuple(w[i : i + n]))
                if e is not None and e not in found:
                    found.append(e)
        out.append(found)
    return out


def _distribution(matched: list[list[str]], head: set[str], top: int) -> Distribution:
    counts = Counter(e for m in matched for e in m)
    total = sum(counts.values())
    ranked = counts.most_common()
    ent = -sum(c / total * math.log(c / total) for c in counts.values()) if total else 0.0
    norm = ent / math.log(len(counts)) if len(counts) > 1 else 1.0
    return Distribution(
        records=sum(1 for m in matched if m), matches=total, entries_matched=len(counts), top=ranked[:top],
        top_share=round(sum(c for _, c in ranked[:10]) / total, 4) if total else 0.0,
        head_share=round(sum(counts[e] for e in head) / total, 4) if total else 0.0, entropy=round(norm, 4))


@tool("data.curate_metaclip")
def curate_metaclip(inp: CurateInput, ctx: Context) -> CurateOutput:
    """Balance an image-text dataset like MetaCLIP - match texts to metadata entries by substring and cap each
    entry's matches at t - and report the head/tail distribution before and after.
    """
    rows = read_records(inp.data, ctx.settings)
    entries = load_list(inp.entries, inp.entries_file, ctx.settings, "entries")
    target = plan_out(inp.out, ctx.settings, inp.overwrite, inp.data)
    matched = match_entries([r["text"] for r in rows], entries)
    ctx.progress(len(rows), len(rows), "texts matched")
    counts = Counter(e for m in matched for e in m)
    head = {e for e, c in counts.items() if c > inp.t}
    rng = random.Random(inp.seed)
    kept_rows, kept_matches = [], []
    for r, m in zip(rows, matched, strict=True):
        if not m:
            if inp.keep_unmatched:
                kept_rows.append({**r, "entries": []})
            continue
        # MetaCLIP: each matched entry selects the text with probability min(1, t / count)
        if any(rng.random() < inp.t / counts[e] for e in m):
            kept_rows.append({**r, "entries": m})
            kept_matches.append(m)
    write_records(target, kept_rows, ctx.settings)
    return CurateOutput(out=str(target), unmatched=sum(1 for m in matched if not m),
                        head_entries=sorted(head, key=lambda e: -counts[e]),
                        before=_distribution([m for m in matched if m], head, inp.top),
                        after=_distribution(kept_matches, head, inp.top))


# -- data.cluster_topics -----------------------------------------------------------------------------------
class TopicsInput(ToolInput):
    data: str = Field(min_length=1, description="JSONL of records with \"text\" (prompts or captions).")
    k: int | None = Field(None, ge=2, le=500, description="Number of topics (default: chosen by silhouette, 2..20).")
    text_model: str | None = Field(None, description="Text encoder spec (default: settings.text_model).")
    terms: int = Field(3, ge=1, le=10, description="Representative terms naming each topic.")
    examples: int = Field(3, ge=0, le=20, description="Texts shown per topic (closest to its centre).")
    duplicate_threshold: float = Field(0.97, ge=0.5, le=1.0, description="Cosine at or above which two texts are "
                                       "near-duplicates.")
    out: str | None = Field(None, description="Optional JSONL: the records with their topic and duplicate group.")
    overwrite: bool = Field(False, description="Replace out if it exists.")
    seed: int = Field(0, ge=0, description="k-means seed.")


class Topic(BaseModel):
    topic: int = Field(description="Topic id.")
    name: str = Field(description="Its most representative terms (class-based TF-IDF), joined by ' / '.")
    terms: list[str] = Field(description="The representative terms, best first.")
    count: int = Field(description="Texts in the topic.")
    share: float = Field(description="Share of all texts.")
    examples: list[str] = Field(description="Texts closest to the topic centre.")


class DuplicateGroup(BaseModel):
    size: int = Field(description="Texts in the group.")
    texts: list[str] = Field(description="Up to 5 of its texts.")
    rows: list[int] = Field(description="Their 0-based record numbers (up to 50).")


class TopicsOutput(BaseModel):
    texts: int = Field(description="Texts clustered.")
    k: int = Field(description="Topics.")
    silhouette: float | None = Field(description="Silhouette of the chosen clustering (cosine).")
    topics: list[Topic] = Field(description="Topics, largest first.")
    duplicate_groups: int = Field(description="Groups of two or more near-duplicate texts.")
    duplicate_texts: int = Field(description="Texts that are near-duplicates of an earlier one (removable).")
    largest_duplicates: list[DuplicateGroup] = Field(description="The largest near-duplicate groups.")
    out: str | None = Field(None, description="The annotated JSONL, when out was given.")


def ctfidf_terms(texts: list[str], labels: list[int], k: int, n_terms: int) -> list[list[str]]:
    """Per cluster, the terms (words and word pairs, stopwords out) with the highest class-based TF-IDF."""
    docs: list[Counter[str]] = [Counter() for _ in range(k)]
    for t, lab in zip(texts, labels, strict=True):
        w = [x for x in words(t) if x not in STOPWORDS and not x.isdigit()]
        docs[lab].update(w)
        docs[lab].update(f"{a} {b}" for a, b in zip(w, w[1:], strict=False))
    total: Counter[str] = Counter()
    for d in docs:
        total.update(d)
    avg = sum(sum(d.values()) for d in docs) / max(1, k)
    out = []
    for d in docs:
        size = max(1, sum(d.values()))
        score = {term: (c / size) * math.log(1 + avg / total[term]) for term, c in d.items()}
        ranked = sorted(score, key=lambda x: (-score[x], x))
        picked: list[str] = []
        for term in ranked:  # skip a word already inside a picked pair and vice versa
            if any(term in p.split() or p in term.split() for p in picked):
                continue
            picked.append(term)
            if len(picked) == n_terms:
                break
        out.append(picked)
    return out


def duplicate_groups(emb: Any, threshold: float, keys: list[str] | None = None, block: int = 1024) -> list[list[int]]:
    """Groups (connected components, size >= 2) of rows whose embeddings have cosine >= threshold or whose
    ``keys`` (normalised texts) are equal."""
    import numpy as np

    n = len(emb)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, key in enumerate(keys or []):
        j = first.setdefault(key, i)
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    for s in range(0, n, block):
        sims = emb[s : s + block] @ emb.T
        rows, cols = np.nonzero(sims >= threshold)
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
            a, b = find(s + i), find(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))


@tool("data.cluster_topics")
def cluster_topics(inp: TopicsInput, ctx: Context) -> TopicsOutput:
    """Cluster prompts or captions into named topics with counts (embeddings, k-means, representative terms),
    and find near-duplicate texts.

    VideoUFO-style topic discovery (P23): what do users ask for, and how often.
    """
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rows = read_records(inp.data, ctx.settings, max_records=50_000)
    target = plan_out(inp.out, ctx.settings, inp.overwrite, inp.data) if inp.out else None
    texts = [r["text"] for r in rows]
    enc = ctx.text(inp.text_model)
    emb = np.asarray(enc.encode(texts, progress=ctx.progress,
                                should_stop=ctx.should_stop), dtype=np.float32)
    # Near-duplicates are merged before clustering (one point per group, weighted by its size), so copies
    # of one text cannot form topics of their own; every text then takes its group's topic.
    groups = duplicate_groups(emb, inp.duplicate_threshold, [normalise(t) for t in texts])
    rep = list(range(len(texts)))
    for g in groups:
        for i in g:
            rep[i] = g[0]
    reps = sorted(set(rep))
    pos = {r: k for k, r in enumerate(reps)}
    weight = np.bincount([pos[r] for r in rep], minlength=len(reps))
    pts = emb[reps]
    if inp.k and inp.k > len(reps):
        raise InvalidInput(f"k={inp.k} is more than the {len(reps)} distinct texts", hint="ask for fewer topics")
    ks = [inp.k] if inp.k else list(range(2, max(3, min(20, len(reps) - 1, len(texts) // 5) + 1)))
    if len(reps) < 3 or ks[0] >= len(reps):
        raise InvalidInput(f"data has {len(reps)} distinct texts; clustering needs at least 3 (and more than k)")
    best: tuple[float, Any, int] | None = None
    sample = np.random.default_rng(inp.seed).permutation(len(reps))[:5000]
    for k in ks:
        if k >= len(reps):
            break
        km = KMeans(n_clusters=k, n_init=4, random_state=inp.seed).fit(pts, sample_weight=weight)
        sil = float(silhouette_score(pts[sample], km.labels_[sample], metric="cosine")) \
            if len(set(km.labels_[sample].tolist())) > 1 else -1.0
        if best is None or sil > best[0] + 1e-9:
            best = (sil, km, k)
        ctx.progress(k, ks[-1], "clusterings tried")
    assert best is not None
    sil, km, k = best
    lab_of = dict(zip(reps, km.labels_.tolist(), strict=True))
    labels = [lab_of[rep[i]] for i in range(len(texts))]
    names = ctfidf_terms(texts, labels, k, inp.terms)
    centres = km.cluster_centers_ / np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True)
    topics = []
    for c in range(k):
        members = [i for i, lab in enumerate(labels) if lab == c]
        if not members:
            continue
        order = sorted(members, key=lambda i: -float(emb[i] @ centres[c]))
        ex: list[str] = []
        for i in order:
            if texts[i] not in ex:
                ex.append(texts[i])
            if len(ex) == inp.examples:
                break
        topics.append(Topic(topic=c, name=" / ".join(names[c]), terms=names[c], count=len(members),
                            share=round(len(members) / len(texts), 4), examples=ex))
    topics.sort(key=lambda t: -t.count)
    out_path = None
    if target is not None:
        gid = {i: g for g, members in enumerate(groups) for i in members}
        write_records(target, [{**r, "topic": labels[i], "topic_name": " / ".join(names[labels[i]]),
                                "duplicate_group": gid.get(i)} for i, r in enumerate(rows)], ctx.settings)
        out_path = str(target)
    return TopicsOutput(
        texts=len(texts), k=k, silhouette=round(sil, 4) if sil > -1 else None, topics=topics,
        duplicate_groups=len(groups), duplicate_texts=sum(len(g) - 1 for g in groups),
        largest_duplicates=[DuplicateGroup(size=len(g), texts=[texts[i] for i in g[:5]], rows=g[:50])
                            for g in groups[:10]],
        out=out_path)
