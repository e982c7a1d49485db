"""The synthetic world: seeded scenes and videos with exact captions and labels, in two themes.

Theme "shapes": coloured shapes. Theme "objects": 707 named everyday objects (Noto Emoji images)
on varied backgrounds and places, with masks, occlusion, tints, QA pairs and tracked videos.

    from vltools.world import generate_scene, generate_video, degrade, write_video, materialise
    sc = generate_scene(7)            # .image (PIL), .caption, .captions, .heldout_captions, .labels
    v = generate_video(7)             # .frames (uint8 arrays), .fps, .caption, .captions, .events, .labels
    from vltools.world import concepts, generate_object_scene, generate_object_video
    concepts()                        # [{"name", "aliases", "category", "subcategory", "split", "image", ...}]
    o = generate_object_scene(7)      # .image, .captions, .qa, .labels (boxes, RLE masks), .masks

Modules: `vocab` (words, held-out synonyms and phrasings), `render` (drawing), `scene`, `video`,
`degrade`, `dataset` (labels.jsonl + files on disk), `splits` (seed ranges and easy-VQA labels of the
demo CLIP's training and evaluation; the scripts themselves live in the repository's `scripts/`);
objects theme: `concept_table` (the table and images), `backgrounds`, `objects` (scenes), `objects_video`.
Names are resolved lazily so importing the package costs nothing.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "generate_scene": "vltools.world.scene",
    "Scene": "vltools.world.scene",
    "generate_video": "vltools.world.video",
    "Video": "vltools.world.video",
    "write_video": "vltools.world.video",
    "read_video": "vltools.world.video",
    "degrade": "vltools.world.degrade",
    "materialise": "vltools.world.dataset",
    "read_labels": "vltools.world.dataset",
    "concepts": "vltools.world.concept_table",
    "generate_object_scene": "vltools.world.objects",
    "ObjectScene": "vltools.world.objects",
    "generate_object_video": "vltools.world.objects_video",
    "ObjectVideo": "vltools.world.objects_video",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vltools.world' has no attribute {name!r}")
