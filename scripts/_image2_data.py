"""World v2 data for the image-understanding-II adapters and benchmark (issue 12): sets ordered by an
attribute (P02), object tracks for re-identification (P22) and places seen from shifted views (P15).

Deterministic by seed; `split` picks the concept pool ("train" for training, "heldout" for the
benchmark's transfer rows), seed bases keep training and evaluation scenes apart.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageEnhance

ATTRIBUTES = ("count", "size", "position", "degradation")


def _names(split: str) -> list[str]:
    from vltools.world import concepts

    return [c["name"] for c in concepts(split)]


def ordering_set(attr: str, seed: int, split: str) -> dict[str, Any]:
    """Five images of one concept differing in ``attr``; 'values' grow with what the 'query' asks for."""
    from vltools.world import generate_object_scene
    from vltools.world.concept_table import concept
    from vltools.world.degrade import KINDS, degrade

    rng = np.random.default_rng([seed, 12])
    names = _names(split)
    c = names[int(rng.integers(len(names)))]
    bg = str(rng.choice(["plain", "gradient", "texture", "grass", "indoor", "sand"]))
    images, values = [], []
    if attr == "count":
        for n in range(1, 6):
            sc = generate_object_scene(seed * 10 + n, concept_names=[c] * n, split="all", background=bg,
                                       image_size=128, overlap_p=0.0)
            images.append(sc.image)
            values.append(n)
        query = f"more {concept(c)['plural']}"
    elif attr == "size":
        for k, s in enumerate((0.2, 0.32, 0.45, 0.6, 0.8)):
            sc = generate_object_scene(seed * 10 + k, concept_names=[c], split="all", background=bg, image_size=128,
                                       scale=(s, s))
            images.append(sc.image)
            values.append(s)
        query = str(rng.choice(["bigger", f"a bigger {c}"]))
    elif attr == "position":
        xs = []
        k = 0
        while len(images) < 5 and k < 60:
            sc = generate_object_scene(seed * 100 + k, concept_names=[c], split="all", background=bg, image_size=128,
                                       scale=(0.3, 0.3))
            k += 1
            x = sc.labels["objects"][0]["x"]
            if all(abs(x - o) > 0.08 for o in xs):
                xs.append(x)
                images.append(sc.image)
        left = bool(rng.random() < 0.5)
        values = [-x if left else x for x in xs]
        query = "further left" if left else "further right"
    else:
        sc = generate_object_scene(seed * 10, concept_names=[c], split="all", background=bg, image_size=128)
        kind = str(KINDS[int(rng.integers(len(KINDS)))])
        for lv in range(5):
            images.append(degrade(sc.image, kind, lv, seed=seed))
            values.append(lv)
        query = "more degraded"
    return {"attr": attr, "concept": c, "images": images, "values": values, "query": query}


def crops_of_tracks(seed: int, split: str, pool: list[str], frames: tuple[int, ...]) -> list[dict[str, Any]]:
    """Object crops of one world video: [{'identity', 'frame', 'image'}] at the given frame indices;
    objects come from a small concept ``pool`` so that different identities look alike."""
    from vltools.world import generate_object_video

    rng = np.random.default_rng([seed, 22])
    names = [str(n) for n in rng.choice(pool, size=3, replace=False)]
    v = generate_object_video(seed, concept_names=names, n_objects=3, split="all", size=(160, 120),
                              event_types=["move", "change_tint", "approach", "pass"])
    out = []
    n = len(v.frames)
    for f in frames:
        fi = min(f, n - 1)
        img = Image.fromarray(v.frames[fi])
        for t in v.labels["tracks"][fi]:
            x0, y0, x1, y1 = t["bbox"]
            if (x1 - x0) * (y1 - y0) < 100:
                continue
            out.append({"identity": f"{seed}:{t['id']}", "frame": fi, "image": img.crop((x0, y0, x1, y1)),
                        "concept": t["concept"]})
    return out


def place_views(place: int, n_views: int, split: str = "all", size: int = 128) -> list[Image.Image]:
    """Views of one 'place': a fixed background arrangement (a place background with three landmark
    objects at fixed spots) seen with a shifted, scaled viewpoint, changed distractor objects and
    lighting."""
    from vltools.world.backgrounds import PLACES, make_background
    from vltools.world.objects import object_sprite, paste

    rng = np.random.default_rng([place, 15])
    names = _names(split)
    big = 2 * size
    canvas = make_background(str(PLACES[int(rng.integers(len(PLACES)))]), big, big, rng).convert("RGBA")
    for _ in range(3):
        s = int(rng.uniform(0.18, 0.3) * big)
        sprite = object_sprite(names[int(rng.integers(len(names)))], s, float(rng.uniform(-20, 20)), None)
        paste(canvas, sprite, int(rng.integers(0, big - s)), int(rng.integers(0, big - s)))
    views = []
    for v in range(n_views):
        vr = np.random.default_rng([place, v, 16])
        side = int(big * vr.uniform(0.7, 0.9))
        x0 = int(vr.uniform(0, big - side))
        y0 = int(vr.uniform(0, big - side))
        view = canvas.crop((x0, y0, x0 + side, y0 + side)).resize((size, size))
        for _ in range(int(vr.integers(0, 3))):
            s = int(vr.uniform(0.15, 0.25) * size)
            sprite = object_sprite(names[int(vr.integers(len(names)))], s, 0.0, None)
            paste(view, sprite, int(vr.integers(0, size - s)), int(vr.integers(0, size - s)))
        img = ImageEnhance.Brightness(view.convert("RGB")).enhance(float(vr.uniform(0.7, 1.3)))
        views.append(img)
    return views
