"""Class-agnostic object proposals for counting and locating in `vqa.zero_shot`.

CLIP's dense grid is too coarse to separate objects (the `demo` CLIP gives 3 x 3 cells), so objects
are found from the image itself, with no labels: SLIC superpixels (scikit-image, as in the
`proposals` mode of `segment.open_vocab`), and the boundary prior of salient-object detection (Zhu et
al., CVPR 2014: the image border is mostly background): a superpixel is foreground when its mean
CIELAB colour is far from every superpixel that touches the border. Connected foreground
components, after a one-pixel opening, of at least ``MIN_AREA`` of the image are the objects; pieces
that are ``LINK`` pixels apart count as one component (an object's parts split by a thin outline or
a one-pixel gap stay one object). Each
can be cut out (mask-adapted crop on grey, P41) and named by CLIP. Thresholds were chosen on dev
scenes of the world v2 (`benchmarks/bench_vqa_world.py` dev split; `LINK` with `benchmarks/bench_objects_dev.py`),
not on its test scenes.

Known limits: objects that touch or overlap merge into one component (undercount); an object whose
colour matches the border's background is missed; a busy background can yield extra components.
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
    out = []
    for i in range(1, k + 1):
        m = comp == i
        area = float(m.sum()) / (h * w)
        if area < min_area:
            continue
        ys, xs = np.nonzero(m)
        out.append(ObjectRegion(m, (xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h),
                                (float(xs.mean() + 0.5) / w, float(ys.mean() + 0.5) / h), area))
    out.sort(key=lambda r: -r.area)
    return out[:MAX_OBJECTS]


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
