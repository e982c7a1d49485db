"""The closed vocabularies of registry.yaml: tags, needs and the data kinds tools consume and produce.

One place, so a new tool reuses a word instead of coining a near-duplicate, and a typo in the
catalogue fails loudly (`EntrySpec` validates against these). To add a word, add it here with a
reason it is not one of the existing ones; for a new data kind also add its rule to
`PRODUCED_RULES` / `CONSUMED_RULES` (tests/core/test_registry_sync.py applies them).
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel

Tag = Literal[
    # what it works on
    "text", "image", "video",
    # collections and indexing
    "collection", "indexing",
    # retrieval and ranking
    "retrieval", "sparse", "dense", "hybrid", "rerank", "embedding",
    # models and methods
    "clip", "llm", "generation", "attention", "reasoning", "fast", "zero-shot", "classification",
    # evaluation
    "evaluation", "text-to-video", "question-generation",
    # question answering and fact checking
    "question-answering", "vqa", "rag", "fact-checking", "natural-logic", "wordnet", "evidence", "multi-hop",
    # data
    "dataset", "synthetic",
    # adapting models: fine-tuning, distillation, upcycling (they train and write a new checkpoint)
    "training",
    # what a CLIP sees inside an image and where it fails (issue 13)
    "segmentation",  # per-pixel masks for labels (not boxes, not image-level classes)
    "probe",  # a diagnostic report on a model's failure modes (not a task tool's evaluation metric)
    # orchestration
    "graph", "agent", "workflow",
]  # fmt: skip

Need = Literal[
    "store",  # the collection store under VLTOOLS_HOME (SQLite + FAISS + BM25)
    "text-encoder",  # a text encoder spec (settings.text_model, 'minilm')
    "clip",  # a CLIP spec (settings.clip, 'demo')
    "av",  # PyAV, to decode video
    "wordnet",  # WordNet 3.0 laid out by scripts/setup_data.py
    "llm",  # any LLM backend (generate)
    "llm:generate",  # an LLM that generates text (every backend)
    "llm:next_token_logits",  # an LLM exposing next-token logits
    "llm:attentions",  # an LLM exposing attention weights (local models, not openai:)
    "cross-encoder",  # trained cross-encoder weights the user brings (hf:PATH); not a text encoder (pairs in)
]

DataKind = Literal[
    "collection",  # a named collection in the store
    "ranking",  # a shared `Ranking` of `Hit`s
    "evidence",  # evidence sentences (`EvidenceSentence`, or plain sentences as input)
    "verdict",  # a fact-checking `Verdict`
    "answer",  # a generated answer text with its sources
    "text",  # generated text
    "vector",  # an embedding vector
    "questions",  # atomic yes/no questions
]

TAGS: tuple[str, ...] = typing.get_args(Tag)
NEEDS: tuple[str, ...] = typing.get_args(Need)
DATA_KINDS: tuple[str, ...] = typing.get_args(DataKind)


# -- what a declared kind means for a tool's models --------------------------------------------
def _fields(model: type[BaseModel]) -> dict[str, Any]:
    return {name: f.annotation for name, f in model.model_fields.items()}


def _list_of(annotation: Any, item: type) -> bool:
    args = typing.get_args(annotation)
    return typing.get_origin(annotation) is list and bool(args) and isinstance(args[0], type) and issubclass(
        args[0], item
    )


def _produces_ranking(out: type[BaseModel]) -> bool:
    from vltools.schemas import Hit, Ranking

    return issubclass(out, Ranking) and _list_of(_fields(out)["hits"], Hit)


def _produces_evidence(out: type[BaseModel]) -> bool:
    from vltools.schemas import EvidenceSentence

    return any(_list_of(a, EvidenceSentence) for a in _fields(out).values())


def _produces_verdict(out: type[BaseModel]) -> bool:
    from vltools.schemas import Verdict

    return _fields(out).get("verdict") == Verdict


def _produces_collection(out: type[BaseModel]) -> bool:
    f = _fields(out)
    return f.get("collection") is str or (f.get("name") is str and "kind" in f)


def _produces_questions(out: type[BaseModel]) -> bool:
    a = _fields(out).get("questions")
    args = typing.get_args(a)
    return typing.get_origin(a) is list and bool(args) and "question" in getattr(args[0], "model_fields", {})


# kind -> (the rule in words, a check of the output model)
PRODUCED_RULES: dict[str, tuple[str, Callable[[type[BaseModel]], bool]]] = {
    "ranking": ("the output is a schemas.Ranking whose hits are schemas.Hit", _produces_ranking),
    "evidence": ("a field is a list of schemas.EvidenceSentence", _produces_evidence),
    "verdict": ("a 'verdict' field typed schemas.Verdict", _produces_verdict),
    "collection": ("a str 'collection' field, or str 'name' plus 'kind' (collection info)", _produces_collection),
    "answer": ("a str 'answer' field", lambda out: _fields(out).get("answer") is str),
    "text": ("a str 'text' field", lambda out: _fields(out).get("text") is str),
    "vector": ("a list[float] 'vector' field", lambda out: _fields(out).get("vector") == list[float]),
    "questions": ("a 'questions' list of models with a 'question'", _produces_questions),
}


def _consumes_ranking(inp: type[BaseModel]) -> bool:
    from vltools.schemas import Passage

    return _list_of(_fields(inp).get("passages"), Passage)


def _consumes_evidence(inp: type[BaseModel]) -> bool:
    a = _fields(inp).get("evidence")
    return a is not None and list[str] in (a, *typing.get_args(a))


# kind -> (the rule in words, a check of the input model)
CONSUMED_RULES: dict[str, tuple[str, Callable[[type[BaseModel]], bool]]] = {
    "collection": ("a 'collection' input naming it", lambda inp: "collection" in inp.model_fields),
    "ranking": ("a 'passages' input: a list of schemas.Passage (hits are accepted as passages)", _consumes_ranking),
    "evidence": ("an 'evidence' input: a list of sentences", _consumes_evidence),
}
