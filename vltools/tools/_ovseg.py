"""Training-free open-vocabulary segmentation with any dense CLIP (the engine of `segment.open_vocab`).

Per-pixel label scores come from one of three readings of a CLIP, all on a square, padded canvas:

- ``plain``: the whole image's dense features (`ClipBackend.encode_dense`), upsampled: the baseline.
- ``dense`` (Trident, P33, adapted): overlapping sub-image windows are each encoded at the model's
  input size (so a 3 x 3 dense model sees 3 x 3 cells per window, not per image), their features
  are spliced onto a fine grid and averaged, then every cell is re-aggregated over the whole image
  with an affinity of spliced features, global-image features and colour (the global-context step
  Trident gives to SAM; here a training-free affinity, no extra model).
- ``proposals`` (P41, mask-adapted CLIP, training-free): class-agnostic regions from SLIC
  superpixels merged on a region-adjacency graph (scikit-image); each region is cut out on a grey
  fill, CLIP-embedded as an image and classified.

Text side: each label is a mean of prompt embeddings over its expansions (P27: synonyms, hypernyms or
LLM paraphrases), optionally calibrated against the global text prototype (the mean over all labels
and background prompts: the shared "an object" component is removed, so a rare label is not
swamped by frequent ones), and optionally refined with the image's own features (P48, MAFT+:
each label embedding moves towards the image features that attend to it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

PROMPTS = ("a photo of a {}.", "{}", "a picture of a {}.")
BACKGROUND_PROMPTS = ("background", "a plain background", "a wall", "the floor", "the ground", "a texture",
                      "the sky", "a pattern")


@dataclass
class SegResult:
    """Per-pixel label map (-1 = background) and per-label confidences at the image's resolution."""

    labels: list[str]
    label_map: np.ndarray  # (h, w) int, index into labels or -1
    probs: np.ndarray  # (n_labels, h, w) probability of each label (background excluded)
    presence: np.ndarray  # (n_labels,) image-level probability of each label (whole-image CLIP)


def _unit(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), 1e-12)


def square_canvas(image: Any) -> tuple[Any, tuple[int, int, int, int]]:
    """The image padded to a square with its mean colour, and the (x0, y0, w, h) of the image in it."""
    from PIL import Image

    img = image.convert("RGB")
    w, h = img.size
    side = max(w, h)
    if w == h:
        return img, (0, 0, w, h)
    mean = tuple(int(v) for v in np.asarray(img, dtype=np.float32).reshape(-1, 3).mean(0))
    canvas = Image.new("RGB", (side, side), mean)
    x0, y0 = (side - w) // 2, (side - h) // 2
    canvas.paste(img, (x0, y0))
    return canvas, (x0, y0, w, h)


# -- text -------------------------------------------------------------------------------------
def label_embeddings(backend: Any, names: list[list[str]], prompts: tuple[str, ...] = PROMPTS) -> np.ndarray:
    """(n, dim): for each entry, the unit mean of its prompts over all its names (name 0 = the label)."""
    texts, owner = [], []
    for i, group in enumerate(names):
        for name in group:
            for p in prompts:
                texts.append(p.format(name))
                owner.append(i)
    emb, _ = backend.encode_texts(texts, long_text="chunk")
    owner_arr = np.asarray(owner)
    out = np.stack([_unit(emb[owner_arr == i].mean(0)) for i in range(len(names))])
    return out.astype(np.float32)


def calibrate(text: np.ndarray, strength: float) -> np.ndarray:
    """Remove ``strength`` times the global text prototype (mean of all rows) and renormalise (P27)."""
    if strength <= 0:
        return text
    proto = text.mean(0, keepdims=True)
    return _unit(text - strength * proto).astype(np.float32)


def refine_text(text: np.ndarray, feats: np.ndarray, strength: float, scale: float) -> np.ndarray:
    """Content-dependent text embeddings (P48, training-free): each moves towards the image features
    (n_cells, dim) that attend to it (softmax over cells of scaled cosines)."""
    if strength <= 0:
        return text
    logits = scale * (text @ feats.T)
    logits -= logits.max(1, keepdims=True)
    att = np.exp(logits)
    att /= att.sum(1, keepdims=True)
    pooled = _unit(att @ feats)
    return _unit(text + strength * pooled).astype(np.float32)


# -- image features -----------------------------------------------------------------------------
def _resize_feats(f: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Bilinear resize of a (gh, gw, d) feature grid to (rows, cols, d)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(f.transpose(2, 0, 1)))[None]
    out = torch.nn.functional.interpolate(t, size=(rows, cols), mode="bilinear", align_corners=False)
    return out[0].numpy().transpose(1, 2, 0)


def window_boxes(side: int, window: float, stride: float) -> list[tuple[int, int, int, int]]:
    """Square sub-image windows (x0, y0, x1, y1) of ``window`` x side, every ``stride`` x side, covering the image."""
    ws = max(1, int(round(window * side)))
    step = max(1, int(round(stride * side)))
    starts = list(range(0, max(1, side - ws) + 1, step))
    if starts[-1] + ws < side:
        starts.append(side - ws)
    return [(x, y, x + ws, y + ws) for y in starts for x in starts]


def plain_features(backend: Any, canvas: Any, grid: int) -> np.ndarray:
    """The whole image's dense features on a (grid, grid, d) canvas grid (the baseline)."""
    f = backend.encode_dense([canvas])[0]
    return _unit(_resize_feats(f, grid, grid))


def trident_features(
    backend: Any, canvas: Any, grid: int, *, window: float = 0.5, stride: float = 0.25,
) -> tuple[np.ndarray, np.ndarray]:
    """(spliced sub-window features, global features), both (grid, grid, d) unit vectors (P33, splice)."""
    side = canvas.size[0]
    boxes = window_boxes(side, window, stride)
    crops = [canvas.crop(b) for b in boxes]
    dense = backend.encode_dense([canvas, *crops])
    glob = _unit(_resize_feats(dense[0], grid, grid))
    acc = np.zeros((grid, grid, dense.shape[-1]), dtype=np.float32)
    cnt = np.zeros((grid, grid, 1), dtype=np.float32)
    for (x0, y0, x1, y1), f in zip(boxes, dense[1:], strict=True):
        r0, r1 = int(round(y0 * grid / side)), int(round(y1 * grid / side))
        c0, c1 = int(round(x0 * grid / side)), int(round(x1 * grid / side))
        if r1 <= r0 or c1 <= c0:
            continue
        acc[r0:r1, c0:c1] += _unit(_resize_feats(f, r1 - r0, c1 - c0))
        cnt[r0:r1, c0:c1] += 1
    spliced = np.where(cnt > 0, acc / np.maximum(cnt, 1), glob)
    return _unit(spliced), glob


def global_refine(
    feats: np.ndarray, glob: np.ndarray, colours: np.ndarray, *, beta: float = 10.0, sigma: float = 0.15,
) -> np.ndarray:
    """Re-aggregate every cell over the whole image (P33's global step, training-free): weights are a
    softmax of feature and global-feature similarity minus colour distance."""
    g = feats.shape[0]
    f = feats.reshape(g * g, -1)
    gl = glob.reshape(g * g, -1)
    c = colours.reshape(g * g, -1)
    d2 = ((c[:, None, :] - c[None, :, :]) ** 2).sum(-1)
    logits = beta * (f @ f.T + gl @ gl.T) / 2 - d2 / (2 * sigma**2)
    logits -= logits.max(1, keepdims=True)
    w = np.exp(logits)
    w /= w.sum(1, keepdims=True)
    return _unit(w @ f).reshape(feats.shape).astype(np.float32)


def cell_colours(canvas: Any, grid: int) -> np.ndarray:
    """(grid, grid, 3) mean RGB in [0, 1] of each cell."""
    from PIL import Image

    return np.asarray(canvas.resize((grid, grid), Image.BOX), dtype=np.float32) / 255.0


# -- proposals (P41) ----------------------------------------------------------------------------
def region_proposals(image: Any, *, n_segments: int = 80, merge_threshold: float = 0.08) -> np.ndarray:
    """(h, w) int region ids: SLIC superpixels merged on a mean-colour region adjacency graph."""
    try:
        from skimage import graph, segmentation
    except ImportError as err:
        from vltools.core.errors import BackendUnavailable

        raise BackendUnavailable("mode 'proposals' needs scikit-image",
                                 hint="pip install 'vltools[data]' (scikit-image), or use mode 'dense'") from err

    arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    sp = segmentation.slic(arr, n_segments=n_segments, compactness=10, start_label=0, channel_axis=-1)
    rag = graph.rag_mean_color(arr, sp, mode="distance")
    merged = graph.cut_threshold(sp, rag, merge_threshold)
    _, inv = np.unique(merged, return_inverse=True)
    return inv.reshape(merged.shape)


def region_crops(image: Any, regions: np.ndarray, *, margin: float = 0.15, min_pixels: int = 16) -> tuple[
        list[Any], list[int]]:
    """A square crop per region (bbox plus margin) with everything outside the region on grey (mask-adapted input)."""
    arr = np.asarray(image.convert("RGB"))
    crops, ids = [], []
    for rid in range(int(regions.max()) + 1):
        m = regions == rid
        if m.sum() < min_pixels:
            continue
        crops.append(masked_square(arr, m, margin, np.full(3, 128, dtype=np.uint8)))
        ids.append(rid)
    return crops, ids


def masked_square(arr: np.ndarray, mask: np.ndarray, margin: float, fill: np.ndarray) -> Any:
    """A square crop of ``arr`` (h, w, 3 uint8) around the mask's bbox plus ``margin`` of its longer side on
    each side, centred on the bbox, with everything outside the mask (and outside the image) on ``fill``."""
    from PIL import Image

    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = int(max(y1 - y0, x1 - x0) * (1 + 2 * margin)) + 1
    sy0, sx0 = (y0 + y1) // 2 - side // 2, (x0 + x1) // 2 - side // 2
    out = np.empty((side, side, 3), np.uint8)
    out[:] = fill
    fy, fx = slice(max(0, sy0), min(h, sy0 + side)), slice(max(0, sx0), min(w, sx0 + side))
    out[fy.start - sy0: fy.stop - sy0, fx.start - sx0: fx.stop - sx0] = np.where(mask[fy, fx, None], arr[fy, fx], fill)
    return Image.fromarray(out, "RGB")


# -- decisions ----------------------------------------------------------------------------------
def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def upsample_scores(scores: np.ndarray, size: int) -> np.ndarray:
    """(k, g, g) -> (k, size, size), bilinear."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(scores))[None]
    return torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)[0].numpy()


@dataclass
class ImageFeatures:
    """What the image side gives, computed once per (image, mode): reused across label sets and text options."""

    mode: str
    side: int
    crop: tuple[int, int, int, int]  # (x0, y0, w, h) of the image in the square canvas
    image_embedding: np.ndarray  # (dim,)
    cells: np.ndarray  # (n_cells, dim): grid cells (plain/dense) or regions (proposals)
    grid: int = 0  # plain/dense: cells form a grid x grid canvas grid
    regions: np.ndarray | None = None  # proposals: (side, side) region ids
    region_ids: list[int] | None = None  # proposals: the region id of each row of cells


def image_features(
    backend: Any, image: Any, *, mode: str = "dense", grid: int = 24, window: float = 0.5, stride: float = 0.25,
    refine_global: bool = True, n_segments: int = 80,
) -> ImageFeatures:
    """The image side of `segment` for ``mode`` (plain | dense | proposals)."""
    canvas, crop = square_canvas(image)
    side = canvas.size[0]
    img_emb = backend.encode_images([canvas])[0]
    if mode == "proposals":
        regions = region_proposals(canvas, n_segments=n_segments)
        crops, ids = region_crops(canvas, regions)
        emb = backend.encode_images(crops) if crops else np.zeros((0, img_emb.shape[0]), np.float32)
        return ImageFeatures(mode, side, crop, img_emb, emb, regions=regions, region_ids=ids)
    if mode == "plain":
        feats = plain_features(backend, canvas, grid)
    elif mode == "dense":
        feats, glob = trident_features(backend, canvas, grid, window=window, stride=stride)
        if refine_global:
            feats = global_refine(feats, glob, cell_colours(canvas, grid))
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return ImageFeatures(mode, side, crop, img_emb, feats.reshape(grid * grid, -1), grid=grid)


def decide(
    backend: Any, feats: ImageFeatures, label_names: list[list[str]], *,
    background: tuple[str, ...] = BACKGROUND_PROMPTS, calibration: float = 0.0, text_refine: float = 0.0,
    text: np.ndarray | None = None,
) -> SegResult:
    """The text side of `segment`: label (and background) embeddings against the image features, per pixel."""
    n = len(label_names)
    if text is None:
        text = label_embeddings(backend, [*label_names, *([b] for b in background)])
    text = calibrate(text, calibration)
    scale = float(backend.logit_scale)
    presence = _softmax(scale * (text @ feats.image_embedding), 0)
    label_presence = presence[:n] / max(float(presence[:n].sum()), 1e-12)
    side = feats.side
    t = refine_text(text, feats.cells, text_refine, scale) if len(feats.cells) else text
    if feats.mode == "proposals":
        region_logits = scale * (feats.cells @ t.T)  # (n_regions, k)
        logits_full = np.full((len(text), side, side), -1e4, dtype=np.float32)
        logits_full[n] = 0.0  # unlabelled (tiny) regions stay background
        for rid, row in zip(feats.region_ids or [], region_logits, strict=True):
            logits_full[:, feats.regions == rid] = row[:, None]
    else:
        g = feats.grid
        logits = scale * (feats.cells @ t.T).T.reshape(-1, g, g)
        logits_full = upsample_scores(logits.astype(np.float32), side)
    probs = _softmax(logits_full, 0)
    fg = probs[:n]
    bg = probs[n:].sum(0)
    best = fg.argmax(0)
    label_map = np.where(fg.max(0) > bg, best, -1)
    x0, y0, w, h = feats.crop
    crop = (slice(y0, y0 + h), slice(x0, x0 + w))
    return SegResult(
        labels=[g[0] for g in label_names],
        label_map=label_map[crop].astype(np.int32),
        probs=fg[(slice(None), *crop)].astype(np.float32),
        presence=label_presence.astype(np.float32),
    )


def segment(
    backend: Any,
    image: Any,
    label_names: list[list[str]],
    *,
    mode: str = "dense",
    background: tuple[str, ...] = BACKGROUND_PROMPTS,
    calibration: float = 0.0,
    text_refine: float = 0.0,
    grid: int = 24,
    window: float = 0.5,
    stride: float = 0.25,
    refine_global: bool = True,
    n_segments: int = 80,
) -> SegResult:
    """Segment ``image`` into the labels (each a list of names: label first, then expansions) or background.

    ``mode``: plain | dense | proposals. ``calibration``: P27 prototype strength (0 = off).
    ``text_refine``: P48 strength (0 = off).
    """
    feats = image_features(backend, image, mode=mode, grid=grid, window=window, stride=stride,
                           refine_global=refine_global, n_segments=n_segments)
    return decide(backend, feats, label_names, background=background, calibration=calibration,
                  text_refine=text_refine)


# -- grounding (image.ground, CLOC P46, on the same dense features) -----------------------------------
GROUND_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def query_map(backend: Any, feats: ImageFeatures, text: np.ndarray, *, text_refine: float = 1.0) -> np.ndarray:
    """(grid, grid) probability per cell of row 0 of ``text`` (the query) against its other rows (background
    prompts, optionally a contrast vocabulary), after P48 text refinement on the image's own cells."""
    scale = float(backend.logit_scale)
    t = refine_text(text, feats.cells, text_refine, scale)
    return _softmax(scale * (feats.cells @ t.T), 1)[:, 0].reshape(feats.grid, feats.grid)


def map_regions(feats: ImageFeatures, prob: np.ndarray, thresholds: tuple[float, ...] = GROUND_THRESHOLDS) -> list[
        tuple[list[float], np.ndarray]]:
    """Candidate regions of a query map: connected components of ``prob >= t * max`` for each relative
    threshold t, each as (box [x0, y0, x1, y1] in image pixels, (grid, grid) boolean cell mask). Components
    lying in the canvas padding only are dropped; duplicates (same cells) are kept once."""
    from scipy import ndimage

    g, side = feats.grid, feats.side
    x0c, y0c, w, h = feats.crop
    out, seen = [], set()
    top = float(prob.max())
    for t in thresholds:
        lab, n = ndimage.label(prob >= t * top)
        for j in range(1, n + 1):
            m = lab == j
            key = m.tobytes()
            if key in seen:
                continue
            seen.add(key)
            ys, xs = np.nonzero(m)
            box = [max(0.0, xs.min() * side / g - x0c), max(0.0, ys.min() * side / g - y0c),
                   min(float(w), (xs.max() + 1) * side / g - x0c), min(float(h), (ys.max() + 1) * side / g - y0c)]
            if box[2] - box[0] >= 1 and box[3] - box[1] >= 1:
                out.append((box, m))
    return out


def region_mass(feats: ImageFeatures, prob: np.ndarray, mask: np.ndarray) -> float:
    """A region's evidence for the query: mean probability over its cells times the square root of its share of
    the image's cells (a mean alone favours single hot cells, a sum favours spilling into the background)."""
    x0c, y0c, w, h = feats.crop
    image_cells = max(1.0, feats.grid**2 * (w * h) / feats.side**2)
    return float(prob[mask].mean() * np.sqrt(mask.sum() / image_cells))


def box_cells(feats: ImageFeatures, box: list[float]) -> np.ndarray:
    """(grid, grid) fraction of each canvas cell covered by ``box`` (image pixels)."""
    g, side = feats.grid, feats.side
    x0c, y0c, _, _ = feats.crop
    edges = np.linspace(0.0, float(side), g + 1)
    ox = np.clip(np.minimum(edges[1:], box[2] + x0c) - np.maximum(edges[:-1], box[0] + x0c), 0, None) * g / side
    oy = np.clip(np.minimum(edges[1:], box[3] + y0c) - np.maximum(edges[:-1], box[1] + y0c), 0, None) * g / side
    return np.outer(oy, ox)


def pooled_region(feats: ImageFeatures, weights: np.ndarray) -> np.ndarray:
    """Unit (dim,) mean of the dense cells weighted by ``weights`` (grid, grid): a region embedding read from the
    same spliced features the grounding map uses."""
    v = weights.reshape(-1) @ feats.cells
    return _unit(v.astype(np.float64))
