"""Shared pieces of the `probe.*` tools: zero-shot scoring, calibration error, AUROC, world image
sets and the markdown + PNG report writer."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vltools.core.errors import BackendUnavailable, InvalidInput

TEMPLATES = ["a photo of a {}.", "{}", "a picture of a {}."]


class LabelledImage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = Field(min_length=1, description="Path of the image.")
    label: str = Field(min_length=1, description="Its true label (one of the candidate labels).")


class ReportFiles(BaseModel):
    report_path: str | None = Field(None, description="Markdown report written to report_dir, when asked for.")
    figure_path: str | None = Field(None, description="PNG figure written to report_dir, when asked for.")


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def text_matrix(backend: Any, texts: Sequence[str], templates: Sequence[str] = ("{}",)) -> np.ndarray:
    """(n, dim) unit mean over templates of each text's embedding."""
    prompts = [t.format(x) for x in texts for t in templates]
    emb, _ = backend.encode_texts(prompts, long_text="chunk")
    return unit(emb.reshape(len(texts), len(templates), -1).mean(1)).astype(np.float32)


def softmax_probs(backend: Any, img: np.ndarray, txt: np.ndarray) -> np.ndarray:
    """(n_images, n_texts) softmax of the model's scaled cosines."""
    logits = float(backend.logit_scale) * img @ txt.T
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(1, keepdims=True)


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: bin-weighted |accuracy - mean confidence| over equal-width confidence bins."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if confidence.size == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.mean() * abs(correct[sel].mean() - confidence[sel].mean())
    return float(total)


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count one half)."""
    pos, neg = np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)
    if pos.size == 0 or neg.size == 0:
        return 0.5
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def load_images(paths: Sequence[str], settings: Any) -> list[Any]:
    from vltools.models.media import check_path, load_image

    for p in paths:  # every path is checked before anything is decoded
        check_path(p, settings)
    return [load_image(p, settings) for p in paths]


def check_labels(items: Sequence[LabelledImage], labels: list[str] | None) -> list[str]:
    """The candidate labels (given, or the items' labels in first-seen order); every item's label must be one."""
    cands = list(dict.fromkeys(labels or [it.label for it in items]))
    if len(cands) < 2:
        raise InvalidInput("need at least two candidate labels", hint="pass labels, or items with two or more labels")
    missing = sorted({it.label for it in items} - set(cands))
    if missing:
        raise InvalidInput(f"item label {missing[0]!r} is not among the labels", hint="add it to labels",
                           details={"missing": missing})
    return cands


def world_concepts(n: int, seed: int, split: str, *, exclude_related: bool = True,
                   keep: Callable[[dict], bool] | None = None) -> list[str]:
    """``n`` distinct world concepts of ``split`` drawn by ``seed`` (no two related)."""
    from vltools.world.concept_table import concepts

    rows = [r for r in concepts(split) if keep is None or keep(r)]
    rng = np.random.default_rng([seed, 1301])
    order = rng.permutation(len(rows))
    out: list[dict] = []
    for i in order:
        r = rows[int(i)]
        if exclude_related and any(r["name"] in o["related"] or o["name"] in r["related"] for o in out):
            continue
        out.append(r)
        if len(out) == n:
            break
    if len(out) < n:
        raise InvalidInput(f"the world has only {len(out)} suitable concepts here, not {n}", hint="ask for fewer")
    return [r["name"] for r in out]


# -- reports ------------------------------------------------------------------------------------
def report_paths(report_dir: str | None, name: str, settings: Any) -> tuple[Path, Path] | None:
    """(markdown path, png path) in the checked report folder, or None when no report was asked for."""
    if report_dir is None:
        return None
    from vltools.core.paths import check_output_dir, resolve_under_roots

    try:
        import matplotlib  # noqa: F401
    except ImportError as err:
        raise BackendUnavailable(
            "report_dir needs matplotlib to draw the figure", hint="pip install 'vltools[plots]', or drop report_dir"
        ) from err
    folder = check_output_dir(resolve_under_roots(report_dir, settings, what="report_dir"), settings)
    return folder / f"{name}.md", folder / f"{name}.png"


def write_report(paths: tuple[Path, Path] | None, title: str, lines: list[str],
                 draw: Callable[[Any], None]) -> ReportFiles:
    """Write the markdown (title, ``lines``, the figure) and the PNG drawn by ``draw(axes)``."""
    if paths is None:
        return ReportFiles()
    from matplotlib.figure import Figure  # no pyplot: no global backend switch

    md, png = paths
    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    draw(ax)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(png)
    md.write_text("\n".join([f"# {title}", "", *lines, "", f"![{title}]({png.name})", ""]), encoding="utf-8")
    return ReportFiles(report_path=str(md), figure_path=str(png))


def md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else re.sub(r"\|", "/", str(v))

    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]]
