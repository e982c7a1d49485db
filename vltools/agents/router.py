"""`agent.ask`: pick the registry tool or graph for a free-text request, fill its input, run it safely.

Offline by default (tool retrieval): every catalogue entry is embedded from its summary, name,
tags and example requests with the text encoder (MiniLM); the request is ranked against them.
When the best score is below a threshold calibrated on out-of-scope requests, nothing fits:
the agent abstains and runs nothing. A request of several clauses ("index X into photos, then
find red hearts") becomes a plan of one step per clause, later steps taking what earlier ones
produce (registry `consumes`/`produces`). Each step's input is filled from the parsed request
by its schema (`vltools.agents.slots`); a required field that cannot be filled is reported as
``missing`` with a question, not run. Safety (`vltools.agents.safety`): destructive entries run
only with ``confirm: true``; writing entries write only where the request says. With a
tool-calling chat model (``llm``), a guarded LangGraph tool-calling loop runs instead.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from pydantic import BaseModel, Field

from vltools.core import Context, tool
from vltools.core.errors import InvalidInput, ToolError, Unsupported
from vltools.core.registry import EntrySpec, get_registry
from vltools.schemas import ToolInput

SELF = "agent.ask"
# Abstain when the best entry scores below this. Calibrated on the dev split of
# tests/data/router_bench.jsonl (out-of-scope requests labelled) by benchmarks/bench_router.py.
ABSTAIN_BELOW = 0.2757
# Among entries within FIT_MARGIN of the best score (at most FIT_CANDIDATES), choose the one whose
# required input the request fills best (tuned on the dev split).
FIT_MARGIN, FIT_CANDIDATES = 0.12, 4
TECHNIQUE_BOOST = 0.15  # the request names an entry's technique ("bm25", "ICR")


class AskInput(ToolInput):
    renamed = {"model": "llm"}

    request: str = Field(min_length=1, max_length=4000, description="What you want done, in plain words.")
    inputs: dict[str, Any] = Field(default_factory=dict, description="Typed inputs for the chosen tool (override).")
    execute: bool = Field(True, description="Run the plan; false only chooses and fills the input.")
    confirm: bool = Field(False, description="Allow destructive entries (e.g. collection.delete) to run.")
    top_k: int = Field(3, ge=1, le=20, description="How many ranked choices to return.")
    min_score: float | None = Field(
        None, ge=-1, le=2, description="Abstain when the best score is below this (default: the calibrated threshold)."
    )
    llm: str | None = Field(
        None, description="Tool-calling chat model (e.g. 'openai:ENDPOINT#MODEL'); default: offline tool retrieval."
    )
    text_model: str | None = Field(None, description="Text encoder for tool retrieval (default: settings).")


class Choice(BaseModel):
    tool: str = Field(description="Registry name of a candidate tool or graph.")
    score: float = Field(description="Similarity of the request to the entry (higher is closer).")


class Step(BaseModel):
    tool: str = Field(description="Tool run (or planned) at this step.")
    input: dict[str, Any] = Field(description="Its input (fields taken from an earlier step are filled when run).")
    clause: str = Field("", description="The part of the request this step does.")
    from_steps: dict[str, int] = Field(default_factory=dict, description="Fields taken from an earlier step's output.")
    missing: list[str] = Field(default_factory=list, description="Required fields the request does not give.")
    ran: bool = Field(False, description="Whether this step was run.")


class AskOutput(BaseModel):
    choice: list[Choice] | None = Field(description="Ranked candidate entries, best first; null when abstaining.")
    reason: str = Field(description="Why this entry was chosen (or none), and how its input was filled.")
    input: dict[str, Any] | None = Field(None, description="The filled input of the (last) chosen tool.")
    missing: list[str] = Field(default_factory=list, description="Required fields that could not be filled.")
    questions: list[str] = Field(default_factory=list, description="What to tell the agent to complete the input.")
    needs_confirmation: bool = Field(False, description="A destructive step was planned and not run: pass confirm.")
    plan: list[Step] = Field(default_factory=list, description="The steps, in order, with their inputs.")
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


def candidate_entries() -> list[EntrySpec]:
    """Every entry the router may choose: all but agents (an agent never routes to itself)."""
    return [e for e in get_registry().list() if e.name != SELF and e.kind != "agent"]


def rank_entries(request: str, encoder: Any, entries: list[EntrySpec] | None = None) -> list[tuple[str, float, str]]:
    """Entries ranked for ``request``: (name, score, closest example or '')."""
    import numpy as np

    entries = entries if entries is not None else candidate_entries()
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
        elif _names_technique(e, request):
            score[i] += TECHNIQUE_BOOST
    order = np.argsort(-score)
    return [(entries[i].name, float(score[i]), best_text[i]) for i in order]


def _names_technique(e: EntrySpec, request: str) -> bool:
    """The request names the entry's technique: its last name part with a digit ('bm25'), or written as
    the acronym its summary uses ('ICR', 'FIRST', 'ETVA'), in capitals."""
    seg = e.name.rsplit(".", 1)[-1]
    if any(ch.isdigit() for ch in seg):
        return re.search(rf"\b{re.escape(seg)}\b", request, re.IGNORECASE) is not None
    acronym = seg.upper()
    return (re.search(rf"\b{acronym}\b", e.summary) is not None
            and re.search(rf"\b{acronym}\b", request) is not None)


# -- input filling ---------------------------------------------------------------------------------
def known_collections(ctx: Context) -> dict[str, str]:
    """Existing collections (name -> kind), through the registry's collection.list."""
    try:
        out = ctx.call("collection.list", {})
        return {c.name: str(c.kind) for c in out.collections}
    except (ToolError, AttributeError):
        return {}


def fill_input(name: str, request: str, given: dict[str, Any], ctx: Context,
               collections: dict[str, str] | None = None, carry: dict[str, Any] | None = None,
               parsed: Any = None) -> Any:
    """Fill ``name``'s input from ``request`` (a `vltools.agents.slots.Filled`)."""
    from vltools.agents.parse import parse
    from vltools.agents.slots import fill

    reg = get_registry()
    collections = known_collections(ctx) if collections is None else collections
    parsed = parse(request, list(collections)) if parsed is None else parsed
    schema = reg.get(name).input_model.model_json_schema()
    return fill(schema, parsed, given, collections, carry, allow_new=reg.spec(name).effects == "writes")


def pick_by_fit(ranked: list[tuple[str, float, str]], fills: dict[str, Any], parsed: Any = None,
                margin: float = FIT_MARGIN) -> str:
    """Among entries scoring within ``margin`` of the best, the one whose input the request fills best.

    Fewest required fields missing first (ranking/passages/evidence an earlier step can give do
    not count), then fewest paths and lists of the request left unused; ties keep the ranking's order.
    """
    best = ranked[0][1]
    close = [n for n, sc, _ in ranked[:FIT_CANDIDATES] if sc >= best - margin and n in fills]
    if not close:
        return ranked[0][0]

    def unused(n: str) -> int:
        if parsed is None:
            return 0
        values = json.dumps(fills[n].input, default=str)
        left = sum(json.dumps(p.text)[1:-1] not in values for p in parsed.paths)
        return left + sum(not any(isinstance(v, list) and v == items for v in fills[n].input.values())
                          for items in parsed.lists[:1])

    def missing(n: str) -> int:
        m = len([f for f in fills[n].missing if f not in CHAINABLE])
        return m if m or _chain_fields(n, fills[n].input) else int(bool(_invalid(n, fills[n].input)))

    return min(close, key=lambda n: (missing(n), unused(n)))


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


def _chain_fields(name: str, filled: dict[str, Any]) -> list[str]:
    """The field of ``name`` an earlier step's ranking or evidence goes into (none when filled)."""
    if not {"ranking", "evidence"} & set(get_registry().spec(name).consumes):
        return []
    fields = get_registry().get(name).input_model.model_fields
    return [f for f in ("ranking", "passages", "evidence") if f in fields and f not in filled][:1]


def _invalid(name: str, filled: dict[str, Any]) -> str:
    """'' when ``filled`` validates against the tool's schema, else the validation message."""
    try:
        get_registry().validate_input(name, filled)
    except InvalidInput as err:
        return err.message
    return ""


# -- the tool -----------------------------------------------------------------------------------------
@tool("agent.ask")
def ask(inp: AskInput, ctx: Context) -> AskOutput:
    """Route a free-text request to the right tool or graph (tool retrieval by embedding similarity), fill its input and
    run it.

    Returns the ranked choices, the reason, the plan with each step's input and, when every
    step could run, the last output. It abstains (``choice`` null) when no entry fits, asks
    (``missing``, ``questions``) when a required input is not in the request, and asks for
    ``confirm`` before anything destructive.
    """
    from vltools.agents.parse import parse, split_clauses
    from vltools.agents.safety import check_call

    request = inp.request.strip()
    if not request:
        raise InvalidInput("the request is empty", hint="say what you want done in 'request'")
    reg = get_registry()
    threshold = ABSTAIN_BELOW if inp.min_score is None else inp.min_score
    ctx.progress(0, 3, "ranking tools")
    encoder = ctx.text(inp.text_model)
    clauses = split_clauses(request)
    ranked_all = [rank_entries(c, encoder) for c in clauses]
    ranked = ranked_all[-1] if len(clauses) > 1 else ranked_all[0]
    choice = [Choice(tool=n, score=round(s, 4)) for n, s, _ in ranked[: inp.top_k]]
    best, score, example = ranked[0]
    reason = (f"ranked {len(ranked)} entries by {encoder.spec} similarity to their summaries, tags and examples; "
              + ("; ".join(f"{c!r} -> {r[0][0]} ({r[0][1]:.3f})" for c, r in zip(clauses, ranked_all, strict=True))
                 if len(clauses) > 1 else f"chose {best} ({score:.3f})"
                 + (f", closest example: {example!r}" if example else "")))
    if inp.llm:
        from vltools.agents.loop import run_tool_loop

        names = list(dict.fromkeys(n for r in ranked_all for n, _, _ in r[: max(inp.top_k, 5)]))
        out = run_tool_loop(inp.llm, request, names, ctx, confirm=inp.confirm, given=inp.inputs)
        return AskOutput(choice=choice, reason=reason + f"; a guarded tool-calling loop with {inp.llm} over {names}"
                         + (f"; refused: {'; '.join(out['refused'])}" if out["refused"] else ""),
                         plan=[Step(tool=t, input=a, ran=True) for t, a in out["calls"]],
                         output={"answer": out["answer"]})
    weakest = min(range(len(clauses)), key=lambda i: ranked_all[i][0][1])
    if ranked_all[weakest][0][1] < threshold:
        part = f" for {clauses[weakest]!r}" if len(clauses) > 1 else ""
        return AskOutput(choice=None, reason=f"no tool fits{part}: the closest entry, {ranked_all[weakest][0][0]}, "
                         f"scores {ranked_all[weakest][0][1]:.3f} < {threshold:.3f}; nothing was run")
    ctx.progress(1, 3, "filling inputs")
    collections = known_collections(ctx)
    steps: list[Step] = []
    notes: list[str] = []
    questions: list[str] = []
    carry: dict[str, Any] = {}
    alternatives: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    for i, (clause, r) in enumerate(zip(clauses, ranked_all, strict=True)):
        given = inp.inputs if i == len(clauses) - 1 else {}
        parsed = parse(clause, list(collections))
        fills = {n: fill_input(n, clause, given, ctx, collections, carry, parsed)
                 for n, sc, _ in r[:FIT_CANDIDATES] if sc >= r[0][1] - FIT_MARGIN}
        name = pick_by_fit(r, fills, parsed)
        filled = fills[name]
        if name != r[0][0]:
            notes.append(f"{name} rather than {r[0][0]}: the request fills its input")
            if i == len(clauses) - 1:
                choice.sort(key=lambda c: c.tool != name)
                if name not in [c.tool for c in choice]:
                    choice = [Choice(tool=name, score=round(next(sc for n, sc, _ in r if n == name), 4)), *choice]
                    choice = choice[: inp.top_k]
        spec = reg.spec(name)
        step = Step(tool=name, input=filled.input, clause=clause if len(clauses) > 1 else "")
        # what this step consumes and an earlier step produces is taken from that step's output
        for f in _chain_fields(name, filled.input):
            for j in range(len(steps) - 1, -1, -1):
                if set(spec.consumes) & set(reg.spec(steps[j].tool).produces):
                    step.from_steps[f] = j
                    break
        step.missing = [f for f in filled.missing if f not in step.from_steps]
        chain = _chain_fields(name, filled.input)
        if chain and i == 0 and len(clauses) == 1 and (step.missing or _invalid(name, filled.input)):
            # a single request consuming what it does not give: chain after an entry producing it
            viable = []
            for cand in _producers(spec, r):
                pre = fill_input(cand, clause, inp.inputs, ctx, collections, parsed=parsed)
                if not pre.missing and not _invalid(cand, pre.input):
                    viable.append((cand, pre.input))
            if viable:
                steps.append(Step(tool=viable[0][0], input=viable[0][1]))
                alternatives[0] = viable[1:]  # tried in turn when one cannot serve (e.g. no vectors)
                step.from_steps = {f: 0 for f in chain}
                step.missing = [f for f in filled.missing if f not in chain]
                notes.append(f"{'/'.join(chain)} from {viable[0][0]} (it produces {', '.join(spec.consumes)})")
        notes += [f"{name}: {n}" if len(clauses) > 1 else n for n in filled.notes]
        questions += [q for q in filled.questions if any(f"`{m}`" in q for m in step.missing)]
        steps.append(step)
        for f, kind in filled.targets.items():
            if kind == "collection" and f in filled.input:
                carry = {"collection": filled.input[f], "collection_kind": collections.get(filled.input[f], "")}
    if notes:
        reason += "; input: " + "; ".join(notes)
    last = steps[-1]
    missing = [m for s in steps for m in s.missing]
    base = AskOutput(choice=choice, reason=reason, input=last.input, plan=steps)
    if missing:
        base.reason += f"; incomplete input: {', '.join(missing)} (nothing was run)"
        base.missing, base.questions = missing, questions
        base.input = None if last.missing else last.input
        return base
    for s in steps:  # inputs that are complete must validate (chained fields are checked when run)
        problem = _invalid(s.tool, s.input) if not s.from_steps else ""
        if problem:
            base.reason += f"; {s.tool}'s filled input is not valid: {problem} (nothing was run)"
            base.missing = [s.tool]
            base.questions = [f"Give {s.tool}'s input in 'inputs' ({problem})"]
            return base
    parsed_all = parse(request, list(collections))
    blocked = [(s, check_call(s.tool, s.input, parsed_all, confirm=inp.confirm, given=inp.inputs)) for s in steps]
    blocked = [(s, why) for s, why in blocked if why]
    if blocked:
        base.needs_confirmation = any(reg.spec(s.tool).effects == "destructive" for s, _ in blocked)
        base.reason += "; not run: " + "; ".join(why for _, why in blocked)
        return base
    if not inp.execute:
        return base
    ctx.progress(2, 3, f"running {' -> '.join(s.tool for s in steps)}")
    outputs: list[dict[str, Any]] = []
    for k, s in enumerate(steps):
        for f, j in s.from_steps.items():
            value = _adapt(f, outputs[j])
            if value is not None:
                s.input[f] = value
        if s.from_steps and _invalid(s.tool, s.input):
            raise InvalidInput(f"step {k + 1}'s output does not complete {s.tool}'s input: {_invalid(s.tool, s.input)}",
                               hint="pass the fields in 'inputs'")
        while True:
            try:
                out = ctx.call(s.tool, s.input)
                break
            except Unsupported as err:
                if not alternatives.get(k):
                    raise Unsupported(f"step {k + 1} ({s.tool}) cannot run here: {err.message}",
                                      hint=err.hint) from err
                base.reason += f"; {s.tool} unsupported here ({err.message})"
                s.tool, s.input = alternatives[k].pop(0)
                if get_registry().spec(s.tool).effects != "read_only":
                    raise
        outputs.append(out.model_dump(mode="json"))
        s.ran = True
    ctx.progress(3, 3, "done")
    base.input, base.output = steps[-1].input, outputs[-1]
    return base
