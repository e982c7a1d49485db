"""Fill a tool's input from a parsed request, driven by the tool's JSON schema.

Each field's role comes from its type, name and description (not from a per-tool table):
a collection name (with the collection kind its description asks for), a file or folder path
(image / video / JSONL / table by extension), an output folder, a list of names, a count, a
model spec (CLIP / LLM / text encoder), an enum choice, a word, or the free text (query, claim,
question, prompt). Required fields that stay empty are returned as ``missing`` with a question.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from vltools.agents.parse import MODEL_WORDS, Parsed

TEXT_WORDS = ("query", "claim", "question", "prompt", "request", "caption", "statement", "text")


@dataclass
class Role:
    kind: str  # collection | path | out_dir | list | count | model | enum | word | text | flag | ''
    many: bool = False  # an array
    media: str = ""  # for paths / collections: image | video | jsonl | table | text
    new: bool = False  # a collection name to create
    nouns: set[str] = field(default_factory=set)  # for counts: words the number may count
    enum: list[str] = field(default_factory=list)
    model_kind: str = ""  # clip | llm | text | any


def _types(prop: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(types, item types) of a schema property, through anyOf."""
    opts = prop.get("anyOf") or [prop]
    types, items = set(), set()
    for o in opts:
        t = o.get("type")
        if t:
            types.add(t)
        if t == "array":
            it = o.get("items", {})
            items.add(it.get("type", "object"))
    return types - {"null"}, items


def _enum(prop: dict[str, Any]) -> list[str]:
    for o in prop.get("anyOf") or [prop]:
        if "enum" in o:
            return [str(v) for v in o["enum"]]
    return []


def field_role(name: str, prop: dict[str, Any]) -> Role:
    """What a schema field holds, from its name, type and description."""
    desc = (prop.get("description") or "").lower()
    types, items = _types(prop)
    lname = name.lower()
    many = "array" in types and "string" in items
    text_like = "string" in types or many
    if text_like and ("collection" in lname or re.search(r"\bcollection name\b|name of (?:an? )?(?:existing )?"
                                                          r"(?:\w+ )?collection|collection to", desc)):
        media = next((m for m in ("image", "video", "text") if f"{m} collection" in desc), "")
        return Role("collection", media=media, new="new collection" in desc)
    if text_like and re.search(r"\b(?:folder|directory) to write|write into|output (?:folder|dir)", desc):
        return Role("out_dir")
    if re.search(r"\bspec\b|model to use|\bthe text encoder\b", desc) and "string" in types and not many:
        kind = ("clip" if "clip" in desc else "llm" if "llm" in desc else "text" if "encoder" in desc else "any")
        if "encoder" in desc and "clip" in desc:
            kind = "any"
        return Role("model", model_kind=kind)
    if text_like and re.search(r"\bpaths?\b|\bfiles?\b|\bfolders?\b|\.jsonl|\.tsv|glob", desc):
        media = ("jsonl" if "jsonl" in desc else "table" if re.search(r"\.tsv|qrels", desc) else
                 "image" if "image" in desc else "video" if "video" in desc else "")
        return Role("path", many=many, media=media)
    if _enum(prop) and "string" in types:
        return Role("enum", enum=_enum(prop))
    if "integer" in types:
        nouns = {lname, lname.rstrip("s")} | set(re.findall(r"[a-z]+", desc))
        return Role("count", nouns=nouns)
    if many and re.search(r"candidate|label|class|vocabular|answers?\b|names", desc):
        return Role("list", many=True)
    if many and re.search(r"sentence|evidence", desc):
        return Role("list", many=True, media="sentences")
    if "string" in types and re.match(r"word\b", desc):
        return Role("word")
    if "string" in types and (any(w in lname for w in TEXT_WORDS) or any(f"the {w}" in desc for w in TEXT_WORDS)):
        return Role("text")
    if "boolean" in types and re.match(r"create\b", desc):
        return Role("flag", media="create")
    return Role("")


# Words a count may be phrased with, beyond a field's own name and description.
_COUNT_SYNONYMS = {
    "hits": {"result", "hit", "document", "doc", "passage", "match", "image", "picture", "photo", "video", "clip",
             "item", "answer", "neighbour", "neighbor", "entry", "candidate"},
    "image": {"picture", "photo", "image", "scene", "still", "png"},
    "video": {"video", "clip", "movie", "mp4"},
    "sentence": {"sentence", "line"},
    "frame": {"frame"},
    "hop": {"hop", "step", "round"},
}


def _count_matches(role: Role, fname: str, noun: str) -> bool:
    if not noun:
        return False
    noun = noun.lower().rstrip("s") if noun not in ("hits",) else "hit"
    words = {w.rstrip("s") for w in role.nouns}
    if noun in words:
        return True
    for key, syn in _COUNT_SYNONYMS.items():
        if (key.rstrip("s") in words or key in words) and noun in syn:
            return True
    return False


@dataclass
class Filled:
    input: dict[str, Any]
    missing: list[str]
    notes: list[str]
    questions: list[str]
    targets: dict[str, str] = field(default_factory=dict)  # field -> 'collection' | 'folder' (write targets)


def fill(
    schema: dict[str, Any],
    parsed: Parsed,
    given: dict[str, Any],
    collections: dict[str, str],
    carry: dict[str, Any] | None = None,
    *,
    allow_new: bool = False,
) -> Filled:
    """Fill ``schema``'s fields from ``parsed``; ``collections`` maps existing names to their kind.

    ``carry`` holds values an earlier step of a plan made available (``collection``); ``allow_new``
    lets a collection field take a name that does not exist yet (entries that write).
    """
    props: dict[str, Any] = schema.get("properties", {})
    required = list(schema.get("required", []))
    carry = carry or {}
    inp = {k: v for k, v in given.items() if k in props}
    notes = [f"{k} given" for k in inp]
    used_paths: set[str] = set()
    used_text = False
    questions: list[str] = []
    targets: dict[str, str] = {}
    roles = {f: field_role(f, p) for f, p in props.items()}
    numbers = list(parsed.numbers)
    # the order fields are filled in: specific roles first, the free text last
    order = sorted(props, key=lambda f: (["collection", "out_dir", "path", "list", "count", "model", "enum", "word",
                                          "flag", "text", ""].index(roles[f].kind), f not in required))
    used_list = False
    text_fields = [f for f in props if roles[f].kind == "text"]
    text_required = any(f in required for f in text_fields)
    optional_text = next((f for w in TEXT_WORDS for f in text_fields if f.startswith(w)), "")
    words_done = 0
    for f in order:
        role = roles[f]
        if f in inp:
            if role.kind in ("collection", "out_dir"):
                targets[f] = "collection" if role.kind == "collection" else "folder"
            continue
        if role.kind == "collection":
            value, note = _collection(role, parsed, collections, carry, allow_new)
            if value:
                inp[f] = value
                notes.append(f"{f} {value!r} {note}")
                targets[f] = "collection"
            elif f in required:
                have = [n for n, k in collections.items() if not role.media or k == role.media]
                questions.append(f"Which {role.media + ' ' if role.media else ''}collection should `{f}` be"
                                 + (f" (existing: {', '.join(sorted(have)[:8])})?" if have and not role.new else "?")
                                 + (f" {note}" if note else ""))
        elif role.kind == "out_dir":
            dest = [p for p in parsed.paths if p.role == "dest" and p.kind in ("dir", "file")]
            if dest:
                inp[f] = dest[0].text
                used_paths.add(dest[0].text)
                targets[f] = "folder"
                notes.append(f"{f} {dest[0].text!r} (the folder the request names to write into)")
            elif f in required:
                questions.append(f"Which folder should I write into (`{f}`)? Name it as 'into FOLDER'.")
        elif role.kind == "path":
            cands = [p for p in parsed.paths if p.text not in used_paths and p.role == "source"
                     and _path_fits(role, p)]
            if not cands and role.media in ("image", "video"):
                # a destination-looking path can still be what is read ("classify the pictures in X")
                cands = [p for p in parsed.paths if p.text not in used_paths and _path_fits(role, p)]
            if cands:
                pick = cands if role.many else cands[:1]
                for p in pick:
                    used_paths.add(p.text)
                inp[f] = [p.text for p in pick] if role.many else pick[0].text
                missing_files = [p.text for p in pick if not p.exists]
                notes.append(f"{f} {inp[f]!r} ({'/'.join(sorted({p.kind for p in pick}))}"
                             + (f"; not found: {', '.join(missing_files)}" if missing_files else "") + ")")
        elif role.kind == "list" and not used_list:
            used_list = True
            if role.media == "sentences":
                quoted = [q for q in parsed.quoted[1:]]
                if quoted:
                    inp[f] = quoted
                    notes.append(f"{f} from the quoted sentences")
            elif parsed.lists:
                inp[f] = parsed.lists[0]
                notes.append(f"{f} {parsed.lists[0]} (the list in the request)")
        elif role.kind == "count":
            for i, (value, noun) in enumerate(numbers):
                top = noun in ("top", "at") and ({"hits", "hit", "return", "top", "keep", "cut", "retrieved"}
                                                  & role.nouns)
                if top or _count_matches(role, f, noun):
                    inp[f] = value
                    notes.append(f"{f}={value} ('{noun} {value}')" if noun in ("top", "at") else
                                 f"{f}={value} ('{value} {noun}')")
                    numbers.pop(i)
                    break
        elif role.kind == "model":
            spec = _model(role, parsed)
            if spec:
                inp[f] = spec
                notes.append(f"{f} {spec!r} (named in the request)")
        elif role.kind == "enum":
            words = set(parsed.words)
            hits = [v for v in role.enum if v.lower() in words or v.lower().split(".")[-1] in words
                    or v.lower().rstrip("s") in {w.rstrip("s") for w in words}]
            if len(hits) == 1 or (hits and f not in required):
                inp[f] = hits[0]
                notes.append(f"{f} {hits[0]!r} (named in the request)")
        elif role.kind == "word":
            if parsed.pairs and words_done < 2:
                inp[f] = parsed.pairs[0][words_done]
                words_done += 1
                notes.append(f"{f} {inp[f]!r}")
        elif role.kind == "text":
            # one free-text field: the required one, else the first named like a query / question / claim / prompt
            if used_text or (f not in required and (text_required or f != optional_text)):
                continue
            value = parsed.quoted[0] if parsed.quoted else parsed.content
            if value:
                inp[f] = value
                used_text = True
                how = "quoted" if parsed.quoted else "the request without its command words"
                notes.append(f"{f} {value!r} ({how})")
        elif role.kind == "flag" and role.media == "create":
            coll = next((inp[g] for g, r in roles.items() if r.kind == "collection" and g in inp), None)
            if coll and coll not in collections:
                inp[f] = True
                notes.append(f"{f}=true (collection {coll!r} does not exist yet; the request names it)")
    missing = [f for f in required if f not in inp]
    for f in missing:
        if not any(f"`{f}`" in q for q in questions):
            desc = props[f].get("description", "").rstrip(".")
            questions.append(f"What should `{f}` be? ({desc})" if desc else f"What should `{f}` be?")
    return Filled(inp, missing, notes, list(dict.fromkeys(questions)), targets)


def _path_fits(role: Role, p: Any) -> bool:
    if role.media == "jsonl":
        return p.kind == "jsonl"
    if role.media == "table":
        return p.kind in ("table", "file")
    if role.media in ("image", "video"):
        return p.kind == role.media or (role.many and p.kind == "dir" and p.contents in ("", role.media))
    return p.kind in ("dir", "file", "jsonl", "table", "image", "video")


def _model(role: Role, parsed: Parsed) -> str:
    for spec in parsed.models:
        prefix = spec.split(":", 1)[0].lower()
        kind = "clip" if prefix == "open_clip" else "llm" if prefix in ("hf", "openai") else ""
        if role.model_kind in ("any", kind):
            return spec
    words = set(parsed.words)
    kinds = ["clip", "llm", "text"] if role.model_kind == "any" else [role.model_kind]
    for k in kinds:
        for w, spec in MODEL_WORDS.get(k, {}).items():
            if w in words and (w != "demo" or {"clip", "model"} & words):
                return spec
    return ""


def _collection(
    role: Role, parsed: Parsed, collections: dict[str, str], carry: dict[str, Any], allow_new: bool
) -> tuple[str, str]:
    """(name, note) of the collection the request names for this field; ('', why) when none fits."""
    if role.new:
        fresh = [n for n in parsed.new_names if n not in collections]
        if fresh:
            return fresh[0], "(the new name the request gives)"
        return "", f"({parsed.new_names[0]!r} already exists)" if parsed.new_names else ""
    why = ""
    for name in parsed.names:
        match = name if name in collections else _fuzzy(name, list(collections))
        if match:
            kind = collections[match]
            if role.media and kind != role.media:
                why = f"({match!r} is a {kind} collection; this field needs a {role.media} collection)"
                continue
            return match, "(named in the request)" if match == name else f"(the request's {name!r}, fuzzy-matched)"
    if carry.get("collection") and (not role.media or carry.get("collection_kind") in ("", None, role.media)):
        return carry["collection"], "(from the previous step)"
    if allow_new and parsed.new_names and not why:
        # a name that does not exist, given as a collection's name ("into the X collection", "called X"):
        # an entry that writes may create it
        return parsed.new_names[0], "(named in the request; it does not exist yet)"
    return "", why



def _fuzzy(name: str, names: list[str]) -> str:
    low = {n.lower(): n for n in names}
    key = name.lower()
    for cand in (key, key.rstrip("s"), key + "s", key.replace("-", "_"), key.replace(" ", "_")):
        if cand in low:
            return low[cand]
    close = difflib.get_close_matches(key, list(low), n=1, cutoff=0.8)
    return low[close[0]] if close else ""
