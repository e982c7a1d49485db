"""`agent.ask`: pick the registry tool or graph for a free-text request, fill its input, run it.

Offline by default (tool retrieval): every catalogue entry is embedded from its summary, name,
tags and example requests with the text encoder (MiniLM); the request is ranked against them.
The input of the best entry is filled from the given inputs and the request (quoted phrases,
collection names, paths, "top N"), validated against the entry's schema, and, when the entry
consumes something the request does not provide, chained after an entry that produces it
(e.g. retrieve -> evidence.select). With a tool-calling chat model (``llm``), a LangGraph
tool-calling loop over the same registry tools runs instead (see `vltools.agents.loop`).
"""

from __future__ import annotations

import re
import threading
from typing import Any

from pydantic import BaseModel, Field

from vltools.core import Context, tool
from vltools.core.errors import InvalidInput, ToolError, Unsupported
from vltools.core.registry import EntrySpec, get_registry
from vltools.schemas import ToolInput

SELF = "agent.ask"
TEXT_FIELDS = ("query", "question", "claim", "request", "text", "prompt", "caption", "statement")
PATH_FIELDS = ("path", "image", "video", "file", "folder", "images_dir", "root", "out_dir")
_PATH_RE = re.compile(r"(?:(?<=\s)|^)((?:\.{0,2}/|~/)?[\w.\-/]+\.(?:jsonl|json|txt|csv|png|jpe?g|gif|bmp|webp|mp4|avi|mov|mkv|webm|yaml|yml)|(?:\.{0,2}/|~/|/)[\w.\-/]+)")  # noqa: E501
_QUOTED_RE = re.compile(r"[\"“']([^\"”']{2,})[\"”']")


class AskInput(ToolInput):
    renamed = {"model": "llm"}

    request: str = Field(min_length=1, max_length=4000, description="What you want done, in plain words.")
    inputs: dict[str, Any] = Field(default_factory=dict, description="Typed inputs for the chosen tool (override).")
    execute: bool = Field(True, description="Run the chosen tool; false only chooses and fills the input.")
    top_k: int = Field(3, ge=1, le=20, description="How many ranked choices to return.")
    llm: str | None = Field(
        None, description="Tool-calling chat model (e.g. 'openai:ENDPOINT#MODEL'); default: offline tool retrieval."
    )
    text_model: str | None = Field(None, description="Text encoder for tool retrieval (default: settings).")


class Choice(BaseModel):
    tool: str = Field(description="Registry name of a candidate tool or graph.")
    score: float = Field(description="Similarity of the request to the entry (higher is closer).")


class Step(BaseModel):
    tool: str = Field(description="Tool run at this step.")
    input: dict[str, Any] = Field(description="The validated input it was given.")


class AskOutput(BaseModel):
    choice: list[Choice] = Field(description="Ranked candidate entries, best first.")
    reason: str = Field(description="Why this entry was chosen and how its input was filled.")
    input: dict[str, Any] | None = Field(None, description="The filled input of the chosen tool (when complete).")
    missing: list[str] = Field(default_factory=list, description="Required fields that could not be filled.")
    plan: list[Step] = Field(default_factory=list, description="Steps run (a chain when an input was produced).")
    output: dict[str, Any] | None = Field(None, description="Output of the last step, when executed.")


# -- tool retrieval -----------------------------------------------------------------------------
_CACHE: dict[tuple[str, tuple[str, ...]], Any] = {}
_LOCK = threading.Lock()
SUMMARY_WEIGHT, EXAMPLE_WEIGHT = 0.45, 0.55


def _entry_texts(e: EntrySpec) -> tuple[str, list[str]]:
    words = e.name.replace(".", " ").replace("_", " ")
    doc = f"{words}: {e.summary} Tags: {', '.join(e.tags)}."
    return doc, list(e.examples)


def _index(entries: list[EntrySpec], encoder: Any) -> tuple[Any, Any, list[int]]:
    key = (encoder.spec, tuple(f"{e.name}|{e.summary}|{e.examples}|{e.tags}" for e in entries))
    with _LOCK:
        if key not in _CACHE:
            docs, examples, owner = [], [], []
            for i, e in enumerate(entries):
                d, ex = _entry_texts(e)
                docs.append(d)
                for x in ex:
                    examples.append(x)
                    owner.append(i)
            dv = encoder.encode(docs)
            xv = encoder.encode(examples) if examples else None
            _CACHE.clear()
            _CACHE[key] = (dv, xv, owner)
        return _CACHE[key]


def rank_entries(request: str, encoder: Any, entries: list[EntrySpec] | None = None) -> list[tuple[str, float, str]]:
    """Entries ranked for ``request``: (name, score, closest example or '')."""
    import numpy as np

    entries = entries if entries is not None else [e for e in get_registry().list() if e.name != SELF]
    dv, xv, owner = _index(entries, encoder)
    q = encoder.encode([request])[0]
    doc_sim = dv @ q
    best_ex = np.full(len(entries), -1.0)
    best_text = [""] * len(entries)
    if xv is not None:
        ex_sim = xv @ q
        for j, i in enumerate(owner):
            if ex_sim[j] > best_ex[i]:
                best_ex[i], best_text[i] = ex_sim[j], entries[i].examples[j - owner.index(i)]
    # entries without examples are judged on their description alone
    score = np.where(best_ex > -1, SUMMARY_WEIGHT * doc_sim + EXAMPLE_WEIGHT * best_ex, doc_sim)
    low = request.lower()
    for i, e in enumerate(entries):  # naming a tool or its family is a strong hint
        if e.name in low or e.name.replace(".", "_") in low:
            score[i] += 0.3
    order = np.argsort(-score)
    return [(entries[i].name, float(score[i]), best_text[i]) for i in order]


# -- input filling ---------------------------------------------------------------------------------
def _known_collections(ctx: Context) -> list[str]:
    try:
        out = ctx.call("collection.list", {})
        return [c.name for c in out.collections]
    except (ToolError, AttributeError):
        return []


def fill_input(
    name: str, request: str, given: dict[str, Any], ctx: Context
) -> tuple[dict[str, Any], list[str], list[str]]:
    """(input, missing required fields, notes on how fields were filled)."""
    reg = get_registry()
    schema = reg.get(name).input_model.model_json_schema()
    props: dict[str, Any] = schema.get("properties", {})
    required = list(schema.get("required", []))
    inp = {k: v for k, v in given.items() if k in props}
    notes = [f"{k} given" for k in inp]
    quoted = _QUOTED_RE.findall(request)
    for field in props:
        if field in inp:
            continue
        if field in TEXT_FIELDS and (field in required or field in ("query", "question", "claim")):
            inp[field] = quoted[0] if quoted else _after_colon(request)
            notes.append(f"{field} from the request" + (" (quoted phrase)" if quoted else ""))
        elif field == "collection":
            words = set(re.findall(r"[\w.\-]+", request))
            hits = [c for c in _known_collections(ctx) if c in words]
            if hits:
                inp[field] = hits[0]
                notes.append(f"collection {hits[0]!r} named in the request")
        elif field in PATH_FIELDS:
            m = _PATH_RE.search(request)
            if m:
                inp[field] = m.group(1)
                notes.append(f"{field} {m.group(1)!r} from the request")
        elif field in ("k", "top_k", "n", "top_n"):
            m = re.search(r"\btop[ -]?(\d{1,4})\b|\b(\d{1,4}) (?:results|hits|documents|passages|images)\b", request)
            if m:
                inp[field] = int(m.group(1) or m.group(2))
                notes.append(f"{field}={inp[field]} from the request")
    missing = [f for f in required if f not in inp]
    return inp, missing, notes


def _after_colon(request: str) -> str:
    """'fact check: the sea is rising' -> 'the sea is rising' (a short instruction before a colon)."""
    head, sep, tail = request.partition(":")
    return tail.strip() if sep and tail.strip() and len(head.split()) <= 4 else request


# -- chaining through consumes/produces -------------------------------------------------------------
CHAINABLE = ("passages", "ranking", "evidence", "hits")

def _adapt(field: str, produced: dict[str, Any]) -> Any:
    """Map a producer's output onto a consumer's input field."""
    if field in produced:
        return produced[field]
    if field == "ranking" and "hits" in produced:
        return {"query": produced.get("query", ""), "hits": produced["hits"]}
    if field == "passages" and "hits" in produced:
        return [{"id": h["id"], "text": h.get("text", ""), "title": h.get("title", "")} for h in produced["hits"]]
    if field == "evidence" and "sentences" in produced:
        return [s["text"] for s in produced["sentences"]]
    if field == "evidence" and "hits" in produced:
        return [h["text"] for h in produced["hits"] if h.get("text")]
    return None


def _producers(spec: EntrySpec, ranked: list[tuple[str, float, str]]) -> list[str]:
    """Tools producing what ``spec`` consumes (and not consuming it themselves), best ranked first."""
    reg = get_registry()
    wanted = set(spec.consumes)
    out = []
    for name, _, _ in ranked:
        other = reg.spec(name)
        if name != spec.name and other.kind == "tool" and wanted & set(other.produces) - set(other.consumes):
            out.append(name)
    return out


@tool("agent.ask")
def ask(inp: AskInput, ctx: Context) -> AskOutput:
    """Route a free-text request to the right tool or graph (tool retrieval by embedding similarity), fill its input and
    run it.

    Returns the ranked choices with scores, the reason, the filled input and, unless
    ``execute`` is false, the output. With ``llm`` set, a tool-calling chat model drives a
    LangGraph loop over the top-ranked tools instead.
    """
    request = inp.request.strip()
    if not request:
        raise InvalidInput("the request is empty", hint="say what you want done in 'request'")
    ctx.progress(0, 3, "ranking tools")
    encoder = ctx.text(inp.text_model)
    ranked = rank_entries(request, encoder)
    choice = [Choice(tool=n, score=round(s, 4)) for n, s, _ in ranked[: inp.top_k]]
    best, score, example = ranked[0]
    reason = (f"ranked {len(ranked)} entries by {encoder.spec} similarity of the request to their summaries, tags "
              f"and examples; chose {best} ({score:.3f})" + (f", closest example: {example!r}" if example else ""))
    if inp.llm:
        from vltools.agents.loop import run_tool_loop

        names = [n for n, _, _ in ranked[: max(inp.top_k, 5)]]
        out = run_tool_loop(inp.llm, request, names, ctx)
        return AskOutput(choice=choice, reason=reason + f"; a tool-calling loop with {inp.llm} over {names}",
                         plan=[Step(tool=t, input=a) for t, a in out["calls"]], output={"answer": out["answer"]})
    ctx.progress(1, 3, f"filling {best}")
    reg = get_registry()
    filled, missing, notes = fill_input(best, request, inp.inputs, ctx)
    spec = reg.spec(best)
    problem = ", ".join(missing) if missing else _invalid(best, filled)
    # What the chosen entry consumes but the request does not give: chain after an entry producing it.
    chain_fields = [f for f in reg.get(best).input_model.model_fields
                    if f not in filled and (f in missing or f in CHAINABLE)] if problem else []
    producers: list[tuple[str, dict[str, Any]]] = []
    for cand in _producers(spec, ranked) if (problem and spec.consumes and chain_fields) else []:
        cand_input, cand_missing, _ = fill_input(cand, request, inp.inputs, ctx)
        if not cand_missing and not _invalid(cand, cand_input):
            producers.append((cand, cand_input))
    producer, pre_input = producers[0] if producers else (None, {})
    if producer:
        notes.append(f"{'/'.join(chain_fields)} from {producer} (it produces {', '.join(spec.consumes)})")
    if notes:
        reason += "; input: " + "; ".join(notes)
    if problem and not producer:
        reason += f"; incomplete input: {problem}"
        if inp.execute:
            raise InvalidInput(f"{best} needs {problem}, which the request does not give",
                               hint=f"pass it in 'inputs' (see `vltools describe {best}`) or use execute=false")
        return AskOutput(choice=choice, reason=reason, input=None, missing=missing or [problem])
    plan = [Step(tool=producer, input=pre_input)] if producer else []
    if not inp.execute:
        return AskOutput(choice=choice, reason=reason, input=filled, plan=plan)
    ctx.progress(2, 3, f"running {best}")
    if producer:
        pre = None
        for producer, pre_input in producers:  # the next producer when one cannot serve (e.g. no vectors)
            try:
                pre = ctx.call(producer, pre_input).model_dump(mode="json")
                break
            except Unsupported as err:
                reason += f"; {producer} unsupported here ({err.message})"
        if pre is None:
            raise Unsupported(f"no producer of {', '.join(spec.consumes)} could run for {best}",
                              hint="pass the input in 'inputs'")
        plan = [Step(tool=producer, input=pre_input)]
        for f in chain_fields:
            value = _adapt(f, pre)
            if value is not None:
                filled[f] = value
        if _invalid(best, filled):
            raise InvalidInput(f"{producer}'s output does not complete {best}'s input: {_invalid(best, filled)}",
                               hint="pass the fields in 'inputs'")
    out = ctx.call(best, filled)
    plan.append(Step(tool=best, input=filled))
    ctx.progress(3, 3, "done")
    return AskOutput(choice=choice, reason=reason, input=filled, plan=plan, output=out.model_dump(mode="json"))


def _invalid(name: str, filled: dict[str, Any]) -> str:
    """'' when ``filled`` validates against the tool's schema, else the validation message."""
    try:
        get_registry().validate_input(name, filled)
    except InvalidInput as err:
        return err.message
    return ""
