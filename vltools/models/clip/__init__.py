"""The CLIP backend: any open_clip model (and the embedded ``demo``) behind one small interface.

Specs (resolved once per process and device, then cached; see `_load`):

- ``demo`` — the small CLIP v2 trained by this project on the world's everyday objects and shapes
  (`vltools.models.clip_demo_v2`), works offline; ``demo-shapes`` — the v1 model that knows only
  the shapes world (`vltools.models.clip_demo`).
- ``open_clip:ARCH/PRETRAINED`` — an open_clip architecture and weight tag, e.g.
  ``open_clip:ViT-B-32/openai`` or ``open_clip:MobileCLIP-S2/datacompdr`` (P43). The weights must
  already be in the local Hugging Face / open_clip cache: nothing is downloaded at run time, and a
  missing cache fails at once with instructions. ``PRETRAINED`` = ``random`` gives random weights
  (for cost benchmarks only).
- ``open_clip:local-dir:PATH`` — a folder with ``open_clip_config.json`` and a weight file
  (open_clip's hf-hub layout). The ``adapt.*`` tools write such folders: an HF text tower inside an
  installed package is named ``pkg:PACKAGE/PATH`` (`_portable`), and mixture-of-experts layers
  (``adapt.upcycle_moe``) are listed under ``vltools_moe`` and rebuilt before the weights load (`_moe`).
- ``open_clip:hf-hub:ORG/REPO`` — an open_clip hub repo already in the local cache.
- ``open_clip:ARCH@CHECKPOINT`` — an open_clip architecture and a local checkpoint file.

Modules: `_load` (specs, local cache, open_clip creation, the bounded model cache), `_encode`
(`ClipBackend`: batched image/text encoding, dense features, progress, ``should_stop``), `_longtext` (P08,
Long-CLIP: long texts are stretched, extended or chunked, never silently cut), `_portable` (portable text-tower
names in saved configs), `_moe` (CLIP-MoE layers and their saved layout).
Importing this package imports neither torch nor open_clip.
"""

from vltools.models.clip._encode import ClipBackend, Progress, ShouldStop
from vltools.models.clip._load import ClipSpec, cached_pretrained, clear_cache, get_clip, loaded_specs, parse_spec
from vltools.models.clip._longtext import (
    FIT_NOTES,
    LONG_TEXT_MODES,
    MAX_CHUNKS,
    STRETCH_FACTOR,
    STRETCH_KEEP,
    LongText,
    stretch_positions,
)

__all__ = [
    "FIT_NOTES",
    "LONG_TEXT_MODES",
    "MAX_CHUNKS",
    "STRETCH_FACTOR",
    "STRETCH_KEEP",
    "ClipBackend",
    "ClipSpec",
    "LongText",
    "Progress",
    "ShouldStop",
    "cached_pretrained",
    "clear_cache",
    "get_clip",
    "loaded_specs",
    "parse_spec",
    "stretch_positions",
]
