"""Class-agnostic object proposals for counting and locating in `vqa.zero_shot`.

CLIP's dense grid is too coarse to separate objects (the `demo` CLIP gives 3 x 3 cells), so objects
are found from the image itself, with no labels: SLIC superpixels (scikit-image, as in the
`proposals` mode of `segment.open_vocab`), and the boundary prior of salient-object detection (Zhu et
al., CVPR 2014: the image border is mostly background): a superpixel is foreground when its mean
CIELAB colour is far from every superpixel that touches the border. Connected foreground
components, after a one-pixel opening, of at least ``MIN_AREA`` of the image are the objects; pieces
that are ``LINK`` pixels apart count as one component (an object's parts split by a thin outline or
a one-pixel gap stay one object). Each
can be cut out (mask-adapted crop on grey, P41, for counting) and named by CLIP (`naming_views`: box
crops on the image's own background plus the mask on its border colour, for 'what is on the left').
Thresholds were chosen on dev
scenes of the world v2 (`benchmarks/bench_vqa_world.py` dev split; `LINK` with `benchmarks/bench_objects_dev.py`),
not on its test scenes.

Known limits: objects that touch or overlap merge into one component (undercount); an object whose
colour matches the border's background is missed; a busy background can yield extra components.

Second method, ``learned_regions``: a tiny class-agnostic net trained on world v2 scenes
(`vltools.models.objectness`: per-pixel foreground and centre-ness) decoded by marker watershed
(`decode`): the cores (centre-ness above ``CORE``) are the markers, the foreground the mask. It
applies to world-v2-like images only (the `demo` CLIP declares it in its world); `regions` picks the
method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

FG_DISTANCE = 8.0  # CIELAB distance from the nearest border superpixel above which a superpixel is foreground
MIN_AREA = 0.005  # smallest object, as a fraction of the image
N_SEGMENTS = 80  # SLIC superpixels per image
MAX_OBJECTS = 12
LINK = 1  # pieces at most this many pixels apart are one object (chosen on dev scenes: 0.7625 vs 0.7375 at 0)


@dataclass
class ObjectRegion:
    """One proposed object: its mask, box and centre (fractions of width/height) and area (fraction)."""

    mask: np.ndarray
    box: tuple[float, float, float, float]
    centre: tuple[float, float]
    area: float


def object_regions(image: Any, *, fg_distance: float = FG_DISTANCE, min_area: float = MIN_AREA,
                   n_segments: int = N_SEGMENTS, link: int | None = None) -> list[ObjectRegion]:
    """Objects in ``image`` (largest first, at most MAX_OBJECTS): see the module docstring. ``link``
    (default ``LINK``): pieces at most this many pixels apart are labelled as one object."""
    from scipy import ndimage as ndi

    try:
        from skimage import color, segmentation
    except ImportError as err:
        from vltools.core.errors import BackendUnavailable

        raise BackendUnavailable("object proposals need scikit-image",
                                 hint="pip install 'vltools[data]' (scikit-image), or pass objects: false") from err
    arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    h, w = arr.shape[:2]
    lab = color.rgb2lab(ndi.uniform_filter(arr, size=(3, 3, 1)))
    sp = segmentation.slic(arr, n_segments=n_segments, compactness=10, start_label=0, channel_axis=-1)
    n = int(sp.max()) + 1
    idx = sp.ravel()
    sizes = np.maximum(np.bincount(idx, minlength=n), 1)
    means = np.stack([np.bincount(idx, lab[..., c].ravel(), minlength=n) for c in range(3)], 1) / sizes[:, None]
    border = np.bincount(np.concatenate([sp[0], sp[-1], sp[:, 0], sp[:, -1]]), minlength=n)
    bg = np.nonzero(border >= 2)[0]
    if len(bg) == 0:
        return []
    dist = np.linalg.norm(means[:, None] - means[None, bg], axis=2).min(1)
    fg = ndi.binary_opening(dist[sp] > fg_distance, iterations=1)
    comp, k = components(fg, LINK if link is None else link)
    return labelled_regions(comp, range(1, k + 1), min_area)


def labelled_regions(labels: np.ndarray, ids: Any, min_area: float) -> list[ObjectRegion]:
    """One region per label id in ``ids`` (an (h, w) label image) of at least ``min_area`` of the image,
    largest first, at most MAX_OBJECTS."""
    h, w = labels.shape
    out = []
    for i in ids:
        m = labels == i
        area = float(m.sum()) / (h * w)
        if area < min_area:
            continue
        ys, xs = np.nonzero(m)
        out.append(ObjectRegion(m, (xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h),
                                (float(xs.mean() + 0.5) / w, float(ys.mean() + 0.5) / h), area))
    out.sort(key=lambda r: -r.area)
    return out[:MAX_OBJECTS]


# Decoding of the learned proposals, chosen on the 300 dev scenes of `benchmarks/bench_objects_dev.py --scenes 150`:
FG_THRESHOLD = 0.4  # learned: foreground probability above which a pixel is an object's
CORE = 0.3  # learned: centre-ness above which a pixel is an object's core (a watershed marker)
MIN_CORE = 0.002  # learned: smallest core, as a fraction of the image
DEPTH = 0.3  # learned: a core whose peak rises less than this above its pass to a neighbour is that neighbour's lobe
LEARNED_MIN_AREA = 0.01  # learned: smallest object, as a fraction of the image
METHODS = ("superpixels", "learned")


def regions(image: Any, method: str = "superpixels") -> list[ObjectRegion]:
    """Object proposals by ``method``: "superpixels" (`object_regions`) or "learned" (`learned_regions`)."""
    if method == "learned":
        return learned_regions(image)
    if method == "superpixels":
        return object_regions(image)
    from vltools.core.errors import InvalidInput

    raise InvalidInput(f"unknown proposal method {method!r}", hint=f"use one of {', '.join(METHODS)}")


def learned_regions(image: Any, *, fg_threshold: float = FG_THRESHOLD, core: float = CORE,
                    min_area: float = LEARNED_MIN_AREA, min_core: float = MIN_CORE,
                    depth: float = DEPTH) -> list[ObjectRegion]:
    """Objects in ``image`` from the learned proposal net (largest first, at most MAX_OBJECTS)."""
    from vltools.models import objectness

    fg, centre = objectness.predict(image)
    return decode(fg, centre, fg_threshold=fg_threshold, core=core, min_area=min_area, min_core=min_core,
                  depth=depth)


def decode(fg: np.ndarray, centre: np.ndarray, *, fg_threshold: float = FG_THRESHOLD, core: float = CORE,
           min_area: float = LEARNED_MIN_AREA, min_core: float = MIN_CORE, depth: float = DEPTH) -> list[ObjectRegion]:
    """Instances from a foreground probability map and a centre-ness map (both (h, w), 0..1): marker
    watershed of -centre-ness inside the foreground, the markers being the connected cores (centre-ness
    above ``core``, at least ``min_core`` of the image). Touching regions are then merged by their
    peaks' dynamics (h-maxima): a region whose peak centre-ness is less than ``depth`` above the pass to a
    neighbour (the highest centre-ness along their shared edge) is a lobe of that neighbour; between
    two objects the centre-ness falls to ~0 at the edge. A foreground piece no core reaches is an object of its own
    when it is at least ``min_area``; regions under ``min_area`` are dropped."""
    from scipy import ndimage as ndi
    from skimage.segmentation import watershed

    h, w = fg.shape
    mask = fg > fg_threshold
    cores, k = ndi.label((centre > core) & mask)
    if k:
        sizes = np.bincount(cores.ravel(), minlength=k + 1)
        keep = sizes >= max(1.0, min_core * h * w)
        keep[0] = False
        cores = np.where(keep[cores], cores, 0)
    labels = watershed(-centre, cores, mask=mask) if cores.any() else np.zeros((h, w), np.int64)
    labels = _merge_lobes(labels, centre, depth)
    rest, r = ndi.label(mask & (labels == 0))
    if r:
        labels = np.where(rest > 0, rest + labels.max(), labels)
    return labelled_regions(labels, [i for i in np.unique(labels) if i != 0], min_area)


def _merge_lobes(labels: np.ndarray, centre: np.ndarray, depth: float) -> np.ndarray:
    """Labels with touching regions joined, highest pass first, while the lower of the two (merged)
    peaks is less than ``depth`` above their pass (the highest min(c(p), c(q)) over 4-neighbour pixel
    pairs across their border)."""
    from scipy import ndimage as ndi

    saddle: dict[tuple[int, int], float] = {}
    for a, b, ca, cb in ((labels[:, :-1], labels[:, 1:], centre[:, :-1], centre[:, 1:]),
                         (labels[:-1], labels[1:], centre[:-1], centre[1:])):
        edge = (a != b) & (a > 0) & (b > 0)
        for i, j, v in zip(a[edge], b[edge], np.minimum(ca, cb)[edge], strict=True):
            key = (int(min(i, j)), int(max(i, j)))
            saddle[key] = max(saddle.get(key, 0.0), float(v))
    ids = [int(i) for i in np.unique(labels) if i]
    parent = {i: i for i in ids}
    peak = dict(zip(ids, ndi.maximum(centre, labels, ids), strict=True)) if ids else {}

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for (i, j), v in sorted(saddle.items(), key=lambda kv: -kv[1]):
        ri, rj = root(i), root(j)
        if ri != rj and min(peak[ri], peak[rj]) - v < depth:
            parent[rj] = ri
            peak[ri] = max(peak[ri], peak[rj])
    lut = np.arange(int(labels.max()) + 1)
    for i in parent:
        lut[i] = root(i)
    return lut[labels]


def components(fg: np.ndarray, link: int) -> tuple[np.ndarray, int]:
    """Connected components of a foreground mask where pieces at most ``link`` pixels apart share a
    label (labelled on the mask dilated by ``link``); the labels cover only the foreground pixels."""
    from scipy import ndimage as ndi

    comp, k = ndi.label(ndi.binary_dilation(fg, iterations=link) if link > 0 else fg)
    return np.where(fg, comp, 0), k


def crops(image: Any, regions: list[ObjectRegion], margin: float = 0.15) -> list[Any]:
    """A square crop per region with everything outside its mask on grey (P41's mask-adapted input)."""
    from vltools.tools._ovseg import region_crops

    if not regions:
        return []
    ids = np.full(regions[0].mask.shape, -1, dtype=np.int64)
    for i, r in enumerate(regions):
        ids[r.mask] = i
    out, kept = region_crops(image, ids, margin=margin, min_pixels=1)
    by_id = dict(zip(kept, out, strict=True))
    return [by_id[i] for i in range(len(regions)) if i in by_id]


def box_crop(image: Any, region: ObjectRegion, margin: float = 0.15) -> Any:
    """A square crop of the region's box plus ``margin`` (a fraction of its longer side) on each side,
    on the image's own background (nothing masked); where the square leaves the image, its edge pixels
    are repeated. Square because CLIP preprocessing centre-crops: a long box would lose its ends."""
    from PIL import Image

    arr = np.asarray(image.convert("RGB"))
    h, w = arr.shape[:2]
    x0, y0, x1, y1 = region.box
    bw, bh = (x1 - x0) * w, (y1 - y0) * h
    side = max(2, int(round(max(bw, bh) * (1 + 2 * margin))))
    cx, cy = (x0 + x1) / 2 * w, (y0 + y1) / 2 * h
    sx0, sy0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    pad = max(0, -sx0, -sy0, sx0 + side - w, sy0 + side - h)
    padded = np.pad(arr, ((pad, pad), (pad, pad), (0, 0)), mode="edge") if pad else arr
    return Image.fromarray(np.ascontiguousarray(padded[sy0 + pad: sy0 + pad + side, sx0 + pad: sx0 + pad + side]),
                           "RGB")


def border_colour(image: Any) -> np.ndarray:
    """The median RGB colour of the image's outermost pixels (mostly background, the boundary prior)."""
    arr = np.asarray(image.convert("RGB"))
    return np.median(np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]]), 0).astype(np.uint8)


def mask_crop(image: Any, region: ObjectRegion, margin: float = 0.15, fill: Any = None) -> Any:
    """A square crop around the region's box (``margin`` of its longer side each side) with everything
    outside its mask on ``fill`` (RGB; default the image's `border_colour`: a plain background the
    image itself has, where grey is a colour CLIP rarely saw behind this object)."""
    from vltools.tools._ovseg import masked_square

    fill = border_colour(image) if fill is None else np.asarray(fill, dtype=np.uint8)
    return masked_square(np.asarray(image.convert("RGB")), region.mask, margin, fill)


NAMING_BOX_MARGINS: tuple[float, ...] = (0.1, 0.3, 0.6)  # chosen on dev scenes (bench_leftright_views.py)


def naming_views(image: Any, region: ObjectRegion) -> list[Any]:
    """The views of one object that CLIP names it from (their embeddings are averaged): its box on the
    image's own background at each of ``NAMING_BOX_MARGINS`` (context as in a whole-image training
    picture, at three scales), plus its mask on the image's border colour (the object alone). Chosen
    on dev scenes over the mask on grey, single boxes and mixing in the image half
    (`benchmarks/bench_leftright_views.py`, benchmarks/README.md)."""
    return [box_crop(image, region, m) for m in NAMING_BOX_MARGINS] + [mask_crop(image, region, 0.15)]


_ANCHORS = {"left": (0.0, None), "right": (1.0, None), "top": (None, 0.0), "bottom": (None, 1.0),
            "centre": (0.5, 0.5), "top left": (0.0, 0.0), "top right": (1.0, 0.0), "bottom left": (0.0, 1.0),
            "bottom right": (1.0, 1.0)}


def at_position(regions: list[ObjectRegion], position: str) -> int | None:
    """Index of the region a position names: the leftmost centre for 'left', the topmost for 'top', the
    nearest to the centre or to a corner otherwise; None when there are no regions."""
    if not regions or position not in _ANCHORS:
        return None
    ax, ay = _ANCHORS[position]
    d = [((r.centre[0] - ax) ** 2 if ax is not None else 0.0) + ((r.centre[1] - ay) ** 2 if ay is not None else 0.0)
         for r in regions]
    return int(np.argmin(d))
