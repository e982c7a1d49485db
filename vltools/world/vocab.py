"""The world's vocabulary: shapes, colours, sizes, positions, and which words training may use.

Some words and phrasings are **held out** on purpose: the demo CLIP never sees them in a training
caption, so evaluations with them (synonyms such as "crimson", "box"; unseen sentence templates)
measure what the locked MiniLM text tower transfers, not what was memorised.
"""

from __future__ import annotations

# Shapes drawn by the world. "rectangle" is a non-square box (easy-VQA draws those).
SHAPES: tuple[str, ...] = ("circle", "square", "rectangle", "triangle", "star", "cross", "hexagon", "heart")

# Colour name -> base RGB. Rendering jitters around the base (and "green" spans lime to dark green,
# as easy-VQA's green is (0, 255, 0)).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 20, 20),
    "orange": (255, 140, 0),
    "yellow": (250, 230, 0),
    "green": (0, 190, 0),
    "teal": (0, 128, 128),
    "blue": (20, 40, 230),
    "purple": (130, 30, 170),
    "pink": (255, 110, 190),
    "brown": (150, 75, 35),
    "gray": (128, 128, 128),
    "black": (15, 15, 15),
}
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)

SIZES: tuple[str, ...] = ("small", "large")

# 3x3 grid of regions; a caption names the region of an object (or of a group).
POSITIONS: tuple[str, ...] = (
    "top left", "top", "top right", "left", "centre", "right", "bottom left", "bottom", "bottom right",
)

BACKGROUNDS: tuple[str, ...] = ("plain", "striped", "noisy")

NUMBER_WORDS = {1: "one", 2: "two", 3: "three"}

PLURALS = {s: s + "es" if s.endswith("ss") else s + "s" for s in SHAPES}
PLURALS["cross"] = "crosses"

# Words never used in training captions, mapped to the world word they mean (evaluation only).
HELDOUT_SYNONYMS: dict[str, str] = {
    "crimson": "red",
    "scarlet": "red",
    "navy": "blue",
    "azure": "blue",
    "violet": "purple",
    "lime": "green",
    "golden": "yellow",
    "grey": "gray",
    "box": "square",
    "ring": "circle",
    "disc": "circle",
    "plus sign": "cross",
    "six-sided shape": "hexagon",
    "five-pointed star": "star",
}

# Sentence templates. {obj} is a noun phrase ("a small red circle", "two blue stars").
TRAIN_TEMPLATES: tuple[str, ...] = (
    "{obj}",
    "a picture of {obj}",
    "an image of {obj}",
    "{obj} on a {bg} background",
    "there is {obj}",
)
# Never used in training; evaluation of phrasing transfer.
HELDOUT_TEMPLATES: tuple[str, ...] = (
    "a photo showing {obj}",
    "this drawing contains {obj}",
    "we can see {obj} here",
)

# Single-object classification prompt used by the evaluation ("a red circle").
CLASSIFY_TEMPLATE = "a {colour} {shape}"


def article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
