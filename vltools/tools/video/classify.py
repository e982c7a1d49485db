"""`video.classify`: zero-shot video classification over the caller's labels (ViFi-CLIP, P28).

Frame-level CLIP encoding, temporal mean pooling, similarity with prompt-template class embeddings,
softmax at the model's logit scale. ViFi-CLIP's gains come from its video-fine-tuned weights; a user
who has them loads them with ``clip: "open_clip:ARCH@CHECKPOINT"`` and the same code runs.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from vltools.core import Context, InvalidInput, tool
from vltools.schemas import ToolInput
from vltools.tools.video._frames import encode_video, normalise

VIDEO_TEMPLATES = ["{}", "a video of a {}.", "a photo of a {}."]


class ClassifyInput(ToolInput):
    videos: list[str] = Field(min_length=1, max_length=1000, description="Paths of the videos to classify.")
    labels: list[str] = Field(min_length=2, max_length=1000, description="Candidate class names.")
    clip: str | None = Field(
        None, description="CLIP spec (default: settings.clip); ViFi-CLIP weights: 'open_clip:ViT-B-16@/path/ckpt.pt'."
    )
    templates: list[str] | None = Field(None, max_length=100, description="Prompt templates with one '{}'.")
    frames: int = Field(8, ge=1, le=64, description="Frames sampled uniformly per video.")
    pooling: Literal["mean", "max"] = Field(
        "mean", description="'mean': ViFi-CLIP's temporal mean of frame features; 'max': best frame per label."
    )


class VideoClass(BaseModel):
    video: str = Field(description="The video path as given.")
    label: str = Field(description="The most probable label.")
    scores: dict[str, float] = Field(description="Probability per label (sums to 1).")
    frame_labels: list[str] = Field(description="Most probable label of each sampled frame, in time order.")
    times: list[float] = Field(description="Times (s) of the sampled frames.")


class ClassifyOutput(BaseModel):
    results: list[VideoClass] = Field(description="One per video, in input order.")
    templates: list[str] = Field(description="The prompt templates used.")
    model: str = Field(description="The CLIP spec used.")
    notices: list[str] = Field(default_factory=list, description="Sampling bounds and long prompts.")


@tool("video.classify")
def classify(inp: ClassifyInput, ctx: Context) -> ClassifyOutput:
    """Zero-shot classify videos among given labels from temporally pooled CLIP frame features (ViFi-CLIP).

    Load ViFi-CLIP's fine-tuned weights with clip "open_clip:ARCH@CHECKPOINT" when you have them.
    """
    from vltools.models.video import probe_video
    from vltools.tools.image import class_embeddings

    labels = [lab.strip() for lab in inp.labels]
    if any(not lab for lab in labels) or len(set(labels)) != len(labels):
        raise InvalidInput("labels must be non-empty and distinct", hint="remove empty or repeated labels")
    templates = inp.templates or VIDEO_TEMPLATES
    bad = [t for t in templates if t.count("{}") != 1]
    if bad:
        raise InvalidInput(f"template {bad[0]!r} must contain exactly one '{{}}'", hint="e.g. 'a video of a {}.'")
    for v in inp.videos:  # every file is checked before the model loads
        probe_video(v, ctx.settings)
    backend = ctx.clip(inp.clip)
    classes, notices = class_embeddings(backend, labels, templates, None)
    results = []
    for i, v in enumerate(inp.videos):
        ctx.progress(i, len(inp.videos), f"classifying {v.rsplit('/', 1)[-1]}")
        ff = encode_video(v, ctx, backend, frames=inp.frames, max_frames=inp.frames, dense=False)
        if ff.notice:
            notices.append(f"{v}: {ff.notice}")
        frame_sims = ff.glob @ classes.T
        sims = normalise(ff.glob.mean(0)) @ classes.T if inp.pooling == "mean" else frame_sims.max(0)
        logits = backend.logit_scale * sims
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        results.append(VideoClass(
            video=v, label=labels[int(probs.argmax())],
            scores={lab: float(p) for lab, p in zip(labels, probs, strict=True)},
            frame_labels=[labels[int(j)] for j in frame_sims.argmax(1)], times=ff.times,
        ))
    ctx.progress(len(inp.videos), len(inp.videos), "classified")
    return ClassifyOutput(results=results, templates=templates, model=backend.spec, notices=notices)
