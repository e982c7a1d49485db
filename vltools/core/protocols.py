"""What tools may rely on from each backend kind, as typing Protocols.

`Context.text()`, `.clip()`, `.llm()` and `.collection()` return these types, so a renamed or
removed backend method is a type error (and fails tests/core/test_protocols.py) rather than an
``AttributeError`` at run time. The real classes live in ``vltools.models`` and
``vltools.store``; nothing here imports them (or numpy, or torch) at run time.

Cancellation: the encoding and generation methods take ``should_stop``, a no-argument callable
that says the call's deadline passed or it was cancelled; backends check it between batches
(encoders) or between generated tokens (LLMs) and raise `Timeout`. Left as None, they use
the running tool call's (`vltools.core.cancel.current_should_stop`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    from pydantic import BaseModel

    from vltools.core.context import Context
    from vltools.models._llm_base import AttentionMass, Completion, Messages, NextToken

ProgressFn = Callable[[float, float | None, str], None]
StopFn = Callable[[], bool]
LongText = Literal["stretch", "chunk", "truncate", "error"]


@runtime_checkable
class TextEncoder(Protocol):
    """A sentence encoder: texts -> float32 (n, dim), L2-normalised (inner product = cosine)."""

    spec: str
    dim: int
    device: str

    def encode(
        self,
        texts: list[str],
        *,
        batch_size: int = 64,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
    ) -> np.ndarray: ...


@runtime_checkable
class ClipBackend(Protocol):
    """A CLIP model: images and texts into one L2-normalised space."""

    spec: str
    dim: int
    device: str
    context_length: int
    image_size: int
    logit_scale: float
    logit_bias: float | None

    def encode_images(
        self,
        images: list[Any],
        *,
        batch_size: int = 32,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
    ) -> np.ndarray: ...

    def encode_image_regions(self, image: Any, grid: int) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...

    def encode_texts(
        self,
        texts: list[str],
        *,
        batch_size: int = 64,
        long_text: LongText = "stretch",
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
    ) -> tuple[np.ndarray, list[bool]]: ...

    def encode_texts_detailed(
        self,
        texts: list[str],
        *,
        batch_size: int = 64,
        long_text: LongText = "stretch",
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
    ) -> tuple[np.ndarray, list[str | None]]: ...

    def fit_notices(self, texts: list[str], notes: list[str | None], what: str = "text") -> list[str]: ...


@runtime_checkable
class LLM(Protocol):
    """A chat LLM with declared capabilities (generate, next_token_logits, attentions)."""

    spec: str
    capabilities: frozenset[str]
    context_length: int
    exact_tokens: bool

    def count_tokens(self, text: str) -> int: ...

    def truncate(self, text: str, max_tokens: int) -> tuple[str, bool]: ...

    def is_single_token(self, text: str) -> bool: ...

    def require(self, capability: str, who: str = "this tool") -> None: ...

    def chat_prompt(self, messages: Messages) -> str: ...

    def generate(
        self,
        messages: Messages,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        should_stop: StopFn | None = None,
    ) -> str: ...

    def complete(
        self,
        messages: Messages | str,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        top_logprobs: int = 0,
        should_stop: StopFn | None = None,
    ) -> Completion: ...

    def next_token_logits(self, prompt_or_messages: str | Messages, candidates: list[str]) -> dict[str, float]: ...

    def next_token(self, prompt_or_messages: str | Messages, candidates: list[str]) -> NextToken: ...

    def attentions(self, segments: list[str], *, source: int) -> AttentionMass: ...


@runtime_checkable
class Collection(Protocol):
    """A named store of records with a vector index (unless model 'none') and, for text, BM25."""

    path: Path
    manifest: dict[str, Any]

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def count(self) -> int: ...

    @property
    def index_type(self) -> str: ...

    @property
    def has_vectors(self) -> bool: ...

    @property
    def has_bm25(self) -> bool: ...

    def require_kind(self, kind: str, tool: str = "this tool") -> None: ...

    def refresh(self) -> Collection: ...

    def check(self) -> Collection: ...

    def verify(self) -> Collection: ...

    def search_many(self, vectors: np.ndarray, k: int) -> list[list[tuple[str, float]]]: ...

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]: ...

    def bm25_search(self, query: str, k: int) -> list[tuple[str, float]]: ...

    def get(self, ids: list[str]) -> list[dict[str, Any]]: ...

    def has(self, ids: list[str]) -> set[str]: ...

    def find_by(self, field: str, value: str) -> list[str]: ...

    def add(
        self,
        records: list[dict[str, Any]],
        vectors: np.ndarray | None = None,
        *,
        upsert: bool = False,
        progress: ProgressFn | None = None,
    ) -> dict[str, int]: ...


class ToolCaller(Protocol):
    """What a `Context` needs from the registry that runs it: a way to call another tool."""

    def call(self, name: str, inp: Any = None, *, ctx: Context | None = None) -> BaseModel: ...
