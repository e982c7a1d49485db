"""`world.generate`: materialise a synthetic-world dataset (images, videos, exact labels) on disk.

Writes ``images/*.png``, ``videos/*.mp4`` (H.264 via PyAV) and ``labels.jsonl`` (captions,
structured labels, video events with start/end seconds) under ``out_dir``, deterministically
from ``seed``. Two themes: ``shapes`` (coloured shapes; the default) and ``objects`` (named everyday
objects on backgrounds and places, with masks, QA pairs and per-frame tracks; held-out concepts
only with ``split``). Needs nothing but numpy, Pillow and PyAV; no model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from vltools.core.context import Context
from vltools.core.errors import Conflict, InvalidInput
from vltools.core.paths import check_output_dir, resolve_under_roots
from vltools.core.tool import tool
from vltools.schemas import ToolInput

Degradation = Literal["blur", "noise", "jpeg", "contrast", "pixelate"]
Theme = Literal["shapes", "objects"]
ConceptSplit = Literal["train", "heldout", "all"]
Background = Literal["plain", "gradient", "noise", "texture", "sky", "grass", "water", "road", "sand", "indoor"]
Tint = Literal["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "gray", "black"]


class WorldGenerateInput(ToolInput):
    out_dir: str = Field(min_length=1, description="Folder to write into (created; must lie under an allowed root).")
    images: int = Field(16, ge=0, le=5000, description="Number of still scenes (images/*.png).")
    videos: int = Field(0, ge=0, le=200, description="Number of video clips (videos/*.mp4).")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Dataset seed; the same arguments give the same files.")
    image_size: int | None = Field(
        None, ge=32, le=512, description="Side of every image in pixels (default: varied, 64-128)."
    )
    single: bool = Field(False, description="One object per image (colour x shape classification sets).")
    degradation: Degradation | None = Field(
        None, description="Degrade every image: blur, noise, jpeg, contrast, pixelate."
    )
    degradation_level: int = Field(2, ge=0, le=5, description="Degradation level 0 (none) .. 5 (worst).")
    video_width: int = Field(128, ge=32, le=512, multiple_of=2, description="Video frame width (even).")
    video_height: int = Field(96, ge=32, le=512, multiple_of=2, description="Video frame height (even).")
    fps: float = Field(8.0, gt=0, le=30, description="Video frame rate.")
    overwrite: bool = Field(False, description="Replace a dataset already in out_dir (its labels.jsonl).")
    theme: Theme = Field("shapes", description="shapes: coloured shapes; objects: named everyday objects.")
    split: ConceptSplit = Field(
        "train", description="objects theme: concepts drawn from the train split, the held-out split or all."
    )
    background: Background | None = Field(None, description="objects theme: one background for every item.")
    tint: Tint | None = Field(None, description="objects theme: tint every object in images this colour.")
    audio: bool = Field(
        False, description="objects theme: give each video event a tone of its object's category (AAC track; "
        "cue times and frequencies in the video's labels.audio)."
    )


class WorldGenerateOutput(BaseModel):
    out_dir: str = Field(description="The resolved output folder.")
    labels: str = Field(description="Path of labels.jsonl (one JSON record per image or video).")
    images: int = Field(description="Images written.")
    videos: int = Field(description="Videos written.")
    image_files: list[str] = Field(description="Paths of the images written.")
    video_files: list[str] = Field(description="Paths of the videos written.")


@tool("world.generate")
def generate(inp: WorldGenerateInput, ctx: Context) -> WorldGenerateOutput:
    """Generate a synthetic dataset of shape or everyday-object images and short videos with exact captions, labels,
    masks and event times, deterministic by seed.

    Shapes: colours, counts and positions. Objects: named everyday objects on backgrounds and places, with masks,
    occlusion, tints and question-answer pairs; videos carry timed events and per-frame tracks.
    """
    if inp.images + inp.videos == 0:
        raise InvalidInput("nothing to generate: images and videos are both 0", hint="ask for images or videos")
    if inp.theme == "shapes" and (inp.split != "train" or inp.background or inp.tint or inp.audio):
        raise InvalidInput("split, background, tint and audio apply to the objects theme only",
                           hint='add "theme": "objects"')
    out = resolve_under_roots(inp.out_dir, ctx.settings, what="out_dir")
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"{out} exists and is not a folder", hint="choose a folder path")
    if (out / "labels.jsonl").exists() and not inp.overwrite:
        raise Conflict(f"{out} already holds a dataset (labels.jsonl)", hint="pass overwrite=true or another out_dir")

    from vltools.world.dataset import materialise

    # At the moment of writing: real folders (not planted links) that still resolve under the roots.
    for folder in (out, out / "images", *([out / "videos"] if inp.videos else [])):
        check_output_dir(folder, ctx.settings)

    ctx.progress(0, inp.images + inp.videos, "generating")
    res = materialise(
        out,
        images=inp.images,
        videos=inp.videos,
        seed=inp.seed,
        image_size=inp.image_size,
        single=inp.single,
        degradation=inp.degradation,
        degradation_level=inp.degradation_level if inp.degradation else 0,
        video_size=(inp.video_width, inp.video_height),
        fps=inp.fps,
        progress=lambda d, t, note: ctx.progress(d, t, note),
        theme=inp.theme,
        split=inp.split,
        background=inp.background,
        tint=inp.tint,
        audio=inp.audio,
    )
    return WorldGenerateOutput(
        out_dir=str(out),
        labels=res["labels"],
        images=inp.images,
        videos=inp.videos,
        image_files=[str(out / "images" / f"img_{k:06d}.png") for k in range(inp.images)],
        video_files=[str(out / "videos" / f"vid_{k:06d}.mp4") for k in range(inp.videos)],
    )
