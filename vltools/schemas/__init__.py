"""Types that cross tools, so outputs chain into inputs without glue (a retriever's `Ranking`
feeds a reranker, `evidence.select`'s `EvidenceSentence`s feed a proof). Imports only pydantic.

New tools reuse these rather than defining their own hit, verdict, box or mask types; a tool whose
catalogue entry ``produces`` a kind returns the matching type (see `vltools.core.vocab.PRODUCED_TYPES`).
"""

from vltools.schemas.base import ToolInput
from vltools.schemas.factcheck import (
    EvidenceSentence,
    Operator,
    PartCoverage,
    ProofStep,
    SentenceJudgement,
    Verdict,
)
from vltools.schemas.media import Box, ImageRef, Mask, VideoRef
from vltools.schemas.ranking import Hit, Ranking
from vltools.schemas.scene import SceneEntity, SceneEvent, SceneGraph, SceneRelation
from vltools.schemas.stats import RunStats
from vltools.schemas.text import Document, Passage

__all__ = [
    "Box",
    "Document",
    "EvidenceSentence",
    "Hit",
    "ImageRef",
    "Mask",
    "Operator",
    "Passage",
    "PartCoverage",
    "ProofStep",
    "SentenceJudgement",
    "Ranking",
    "RunStats",
    "SceneEntity",
    "SceneEvent",
    "SceneGraph",
    "SceneRelation",
    "ToolInput",
    "Verdict",
    "VideoRef",
]
