"""rerank.cross_encoder — a trained cross-encoder (query and passage read together, one relevance
logit per pair) through sentence-transformers' ``CrossEncoder``, for users who have one: ``hf:PATH``
(a local folder, or a name already in the HF cache; never downloaded). Loaded once per process."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from vltools.core.context import Context
from vltools.core.errors import BackendUnavailable, InvalidInput, NotFound
from vltools.core.tool import tool
from vltools.schemas import Hit, Ranking, RunStats
from vltools.tools.rerank._common import RankInput

_MODELS: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


class CrossEncoderInput(RankInput):
    cross_encoder: str = Field(
        description="Cross-encoder spec hf:PATH: a local sentence-transformers / transformers folder, or a model "
        "name already in the HF cache (e.g. hf:cross-encoder/ms-marco-MiniLM-L6-v2)."
    )
    batch_size: int = Field(32, ge=1, le=1024, description="Query-passage pairs per forward pass.")
    max_length: int = Field(512, ge=16, le=8192, description="Token limit of a query-passage pair (longer is cut).")


class CrossEncoderOutput(Ranking):
    method: str = Field("cross_encoder", description="Which reranker produced this ranking.")
    cross_encoder: str = Field(description="The cross-encoder spec used.")
    stats: RunStats = Field(description="Forward passes (batches), pairs scored and seconds.")


def load_cross_encoder(spec: str, device: str) -> Any:
    """The ``CrossEncoder`` for ``hf:PATH`` on ``device`` (cached; local files only)."""
    if not spec.startswith("hf:") or len(spec) <= 3:
        raise InvalidInput(f"bad cross-encoder spec {spec!r}", hint="use hf:PATH (a local folder or a cached name)")
    target = spec[3:]
    if target.startswith(("/", ".", "~")) and not Path(target).expanduser().is_dir():
        raise NotFound(f"no cross-encoder folder at {target}", hint="give an existing folder")
    key = (spec, device)
    with _LOCK:
        if key not in _MODELS:
            from sentence_transformers import CrossEncoder

            try:
                _MODELS[key] = CrossEncoder(str(Path(target).expanduser()) if target.startswith(("/", ".", "~"))
                                            else target, device=device, local_files_only=True)
            except (OSError, ValueError) as err:
                raise BackendUnavailable(
                    f"cannot load cross-encoder {spec!r}: {str(err).splitlines()[0][:300]}",
                    hint="hf: needs a local folder or a model already in the HF cache (no downloads at run time)",
                ) from err
        return _MODELS[key]


@tool("rerank.cross_encoder")
def cross_encoder(inp: CrossEncoderInput, ctx: Context) -> CrossEncoderOutput:
    """Rerank passages with a trained cross-encoder that reads the query and each passage together (hf:PATH).

    Score = the model's relevance logit for the pair; ties keep the input order.
    """
    t0 = time.perf_counter()
    model = load_cross_encoder(inp.cross_encoder, ctx.settings.torch_device())
    texts = [f"{p.title}: {p.text}" if p.title and not p.text.startswith(p.title) else p.text for p in inp.passages]
    model.max_length = inp.max_length
    scores = model.predict(
        [(inp.query, t) for t in texts], batch_size=inp.batch_size, show_progress_bar=False, convert_to_numpy=True
    )
    flat = [float(s if getattr(s, "ndim", 0) == 0 else s[-1]) for s in scores]  # 2-label models: the last logit
    order = sorted(range(len(flat)), key=lambda i: -flat[i])
    hits = []
    for rank, i in enumerate(order[: inp.k] if inp.k else order):
        p = inp.passages[i]
        meta = dict(getattr(p, "metadata", None) or {})
        hits.append(Hit(id=p.id, score=flat[i], rank=rank + 1, text=p.text, title=p.title, metadata=meta))
    n = len(texts)
    stats = RunStats(
        forward_passes=-(-n // inp.batch_size), prompt_tokens=0, seconds=round(time.perf_counter() - t0, 4)
    )
    return CrossEncoderOutput(query=inp.query, hits=hits, cross_encoder=inp.cross_encoder, stats=stats)
