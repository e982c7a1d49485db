"""Seed ranges and labelled splits shared by the demo CLIP's training and evaluation scripts.

Training (``scripts/train_demo_clip.py``) draws world scenes from ``TRAIN_SEED_BASE + k``, the
evaluation (``scripts/eval_demo_clip.py``, benchmarks) from ``EVAL_SEED_BASE + k``; `dataset`
uses seeds far above both. easy-VQA's images get (colour, shape) labels from its Q/A pairs.
"""

from __future__ import annotations

TRAIN_SEED_BASE = 1_000_000
EVAL_SEED_BASE = 9_000_000


def easy_vqa_labels(split: str) -> list[tuple[str, str, str]]:
    """[(image_path, colour, shape)] for easy-VQA ``split`` ('train' or 'test'), from its Q/A pairs."""
    import easy_vqa

    if split == "train":
        qs, ans, ids = easy_vqa.get_train_questions()
        paths = easy_vqa.get_train_image_paths()
    else:
        qs, ans, ids = easy_vqa.get_test_questions()
        paths = easy_vqa.get_test_image_paths()
    shapes = ("circle", "rectangle", "triangle")
    colours = ("red", "green", "blue", "yellow", "gray", "teal", "black", "brown")
    colour: dict[int, str] = {}
    shape: dict[int, str] = {}
    absent: dict[int, set[str]] = {}
    for q, a, i in zip(qs, ans, ids, strict=True):
        words = q.rstrip("?").split()
        qs_shape = [s for s in shapes if s in words]
        qs_colour = [c for c in colours if c in words]
        if a in shapes:  # "what shape is ...", "what is the blue shape?"
            shape[i] = a
            if qs_colour:
                colour[i] = qs_colour[0]
        elif a in colours:  # "what color is the triangle?"
            colour[i] = a
            if qs_shape:
                shape[i] = qs_shape[0]
        elif a in ("yes", "no"):
            present = (a == "yes") != ("not" in words or "no" in words)  # "is no red shape present?" -> "no": present
            if present and qs_shape:
                shape[i] = qs_shape[0]
            if present and qs_colour:
                colour[i] = qs_colour[0]
            if not present and qs_shape:
                absent.setdefault(i, set()).add(qs_shape[0])
    for i, gone in absent.items():  # one shape per image: two absent shapes name the third
        left = [s for s in shapes if s not in gone]
        if i not in shape and len(left) == 1:
            shape[i] = left[0]
    out = []
    for i in sorted(paths):
        if i in colour and i in shape:
            out.append((paths[i], colour[i], shape[i]))
    return out
