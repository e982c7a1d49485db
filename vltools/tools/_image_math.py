"""Numpy pieces of the image-understanding-II tools (issue 12), kept free of models so they are
tested on their own: GDA and cache classifiers (P09, Tip-Adapter), generalized-mean pooling and
SuperGlobal refinement (P06), region pooling of dense features and box helpers (P46),
Schur-complement entropy and defocusing (P17), rank statistics.
"""

from __future__ import annotations

import numpy as np


def l2n(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), 1e-12)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


# -- few-shot classifiers (P09) -----------------------------------------------------------------
def gda_fit(feats: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """GDA with a shared covariance (P09): weights (C, d) and biases (C,) of the linear classifier
    ``x @ W.T + b`` given by Bayes' rule, class means from the data and the precision matrix from
    the empirical-Bayes ridge estimate ``d * ((N - 1) S + tr(S) I)^-1`` the paper uses."""
    x = np.asarray(feats, dtype=np.float64)
    n, d = x.shape
    mu = np.stack([x[y == c].mean(0) for c in range(n_classes)])
    centred = x - mu[y]
    cov = centred.T @ centred / max(n, 1)
    tr = float(np.trace(cov))
    if tr <= 1e-12:  # one image per class: no spread to estimate, the covariance is isotropic
        tr = 1.0
    prec = d * np.linalg.inv((n - 1) * cov + tr * np.eye(d))
    w = mu @ prec
    b = -0.5 * np.einsum("cd,cd->c", w, mu) + np.log(np.full(n_classes, 1.0 / n_classes))
    return w, b


def tip_adapter_logits(feats: np.ndarray, cache: np.ndarray, y: np.ndarray, n_classes: int, beta: float) -> np.ndarray:
    """Tip-Adapter's cache logits: ``exp(-beta (1 - f K^T)) @ onehot(y)`` (training-free variant)."""
    aff = np.exp(-beta * (1.0 - feats @ cache.T))
    return aff @ np.eye(n_classes)[y]


def match_scale(logits: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``logits`` centred per row and scaled to the spread of ``reference`` (so a fusion weight of 1
    means 'as much as the zero-shot classifier')."""
    z = logits - logits.mean(axis=1, keepdims=True)
    r = reference - reference.mean(axis=1, keepdims=True)
    return z * (float(r.std()) / max(float(z.std()), 1e-12))


# -- pooling and retrieval refinement (P06) -----------------------------------------------------
def gem(dense: np.ndarray, p: float = 3.0) -> np.ndarray:
    """Signed generalized-mean pooling of (n, gh, gw, d) dense features to (n, d), L2-normalised.

    CLIP's joint-space features are signed, so the power is applied to magnitudes and the sign kept
    (p = 1 is average pooling; large p approaches max pooling of magnitudes)."""
    x = dense.reshape(dense.shape[0], -1, dense.shape[-1]).astype(np.float64)
    m = np.mean(np.sign(x) * np.abs(x) ** p, axis=1)
    return l2n(np.sign(m) * np.abs(m) ** (1.0 / p))


def superglobal_rerank(q: np.ndarray, cands: np.ndarray, k: int, beta: float = 0.15) -> np.ndarray:
    """SuperGlobal's reranking scores (P06) of ``cands`` (m, d) for the query ``q`` (d,), as in the paper's code.

    Database side (top-M descriptor augmentation): each candidate becomes the weighted mean of itself
    (weight 1) and its ``k`` nearest candidates (weight ``beta`` x their similarity). Query side
    (maximum descriptor aggregation): the expanded query is the element-wise max of the ``k`` refined
    candidates that the query ranks highest. Score = mean of the query's and the expanded query's
    similarity with each refined candidate."""
    q = l2n(q)
    c = l2n(cands)
    m = len(c)
    k = max(1, min(k, m - 1)) if m > 1 else 0
    s = c @ c.T
    refined = np.empty_like(c)
    for i in range(m):
        others = [j for j in np.argsort(-s[i]) if j != i][:k]
        w = np.concatenate([[1.0], beta * s[i, others]])
        refined[i] = (w @ c[[i, *others]]) / w.sum()
    first = refined @ q
    top = np.argsort(-first)[: max(1, k)]
    expanded = refined[top].max(axis=0)
    return 0.5 * (first + refined @ expanded)


# -- regions (P46) ------------------------------------------------------------------------------
def preprocess_frame(width: int, height: int) -> tuple[float, float, float]:
    """(scale, left, top) of open_clip's resize-shortest-side + centre-crop: a pixel (x, y) of the
    image lands at ((x - left) * scale, (y - top) * scale) of the square input, in input pixels
    normalised so that the square's side is 1 (left/top are in image pixels)."""
    side = min(width, height)
    return 1.0 / side, (width - side) / 2.0, (height - side) / 2.0


def box_weights(box: tuple[float, float, float, float], width: int, height: int, gh: int, gw: int) -> np.ndarray:
    """(gh, gw) fraction of each dense cell covered by ``box`` (image pixels), the RoI-align reading
    of CLOC's promptable region embedding on a model's dense grid."""
    scale, left, top = preprocess_frame(width, height)
    x0, y0, x1, y1 = ((box[0] - left) * scale, (box[1] - top) * scale, (box[2] - left) * scale, (box[3] - top) * scale)
    xs = np.linspace(0.0, 1.0, gw + 1)
    ys = np.linspace(0.0, 1.0, gh + 1)
    ox = np.clip(np.minimum(xs[1:], x1) - np.maximum(xs[:-1], x0), 0, None) * gw
    oy = np.clip(np.minimum(ys[1:], y1) - np.maximum(ys[:-1], y0), 0, None) * gh
    return np.outer(oy, ox)


def pool_region(dense: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Coverage-weighted mean of one image's (gh, gw, d) dense features, L2-normalised (d,)."""
    tot = float(weights.sum())
    if tot <= 1e-9:
        return np.zeros(dense.shape[-1])
    return l2n(np.tensordot(weights, dense.astype(np.float64), axes=([0, 1], [0, 1])) / tot)


def iou(a: list[float] | np.ndarray, b: list[float] | np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def window_boxes(width: int, height: int, fractions: tuple[float, ...] = (0.25, 0.35, 0.5, 0.65, 0.8),
                 steps: int = 5) -> list[list[float]]:
    """Multi-scale sliding-window candidate boxes (square-ish windows of each fraction of the
    shorter side plus wide/tall variants), ``steps`` positions per axis."""
    side = min(width, height)
    out: list[list[float]] = []
    for f in fractions:
        for ar in (1.0, 1.5, 1 / 1.5):
            bw = max(1.0, min(width, f * side * ar**0.5))
            bh = max(1.0, min(height, f * side / ar**0.5))
            for yi in np.linspace(0, height - bh, steps):
                for xi in np.linspace(0, width - bw, steps):
                    out.append([float(xi), float(yi), float(xi + bw), float(yi + bh)])
    uniq = {tuple(round(v, 1) for v in b) for b in out}
    return [list(b) for b in sorted(uniq)]


def nms(boxes: list[list[float]], scores: np.ndarray, thresh: float, limit: int) -> list[int]:
    """Indices of boxes kept by greedy non-maximum suppression, best first."""
    keep: list[int] = []
    for i in np.argsort(-scores):
        if all(iou(boxes[i], boxes[j]) < thresh for j in keep):
            keep.append(int(i))
            if len(keep) == limit:
                break
    return keep


# -- Schur complement (P17) ---------------------------------------------------------------------
def matrix_entropy(cov: np.ndarray, normalise: bool = True) -> float:
    """Von Neumann entropy (nats) ``-sum(l log l)`` of a PSD matrix's eigenvalues ``l``, normalised to
    unit trace, or as they are (``normalise=False``: P17's Schur Complement Entropy, whose eigenvalues
    are a part of the unit-trace image covariance, so a small remainder has a small entropy)."""
    ev = np.clip(np.linalg.eigvalsh((cov + cov.T) / 2), 0, None)
    tot = ev.sum()
    if tot <= 1e-12:
        return 0.0
    p = ev[ev > 1e-12] / (tot if normalise else 1.0)
    return float(-(p * np.log(p)).sum())


def schur_decomposition(x: np.ndarray, t: np.ndarray, ridge: float = 1e-3) -> dict[str, np.ndarray]:
    """Covariance of image features ``x`` split into its text-explained part and the Schur complement
    ``C_xx - C_xt (C_tt + ridge I)^-1 C_tx`` (what the paired texts ``t`` do not explain), with the
    text→image map ``C_xt (C_tt + ridge I)^-1`` used for defocusing. Features are the cosine kernel's
    feature map (L2-normalised embeddings), uncentred as in P17's kernel covariance."""
    n = len(x)
    cxx = x.T @ x / n
    cxt = x.T @ t / n
    ctt = t.T @ t / n
    mapping = cxt @ np.linalg.inv(ctt + ridge * np.eye(ctt.shape[0]))
    explained = mapping @ cxt.T
    return {"cxx": cxx, "schur": cxx - explained, "explained": explained, "map": mapping}


# -- rank statistics ----------------------------------------------------------------------------
def spearman(a: list[float] | np.ndarray, b: list[float] | np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr

    r = spearmanr(np.asarray(a, dtype=float), np.asarray(b, dtype=float)).statistic
    return float(0.0 if np.isnan(r) else r)


def average_precision(relevant: list[bool], n_relevant: int | None = None) -> float:
    """AP of a ranked list of relevance flags, over ``n_relevant`` relevant items in all (default:
    those the list contains)."""
    hits = 0
    total = 0.0
    for i, r in enumerate(relevant, 1):
        if r:
            hits += 1
            total += hits / i
    denom = n_relevant if n_relevant is not None else hits
    return total / denom if denom else 0.0
