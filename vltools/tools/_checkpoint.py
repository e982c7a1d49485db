"""Adapted CLIP checkpoints under ``VLTOOLS_HOME/models/``: the base model's open_clip config, and a
no-overwrite save in open_clip's local-dir layout, so the new spec ``open_clip:local-dir:PATH`` loads
through the same `vltools.models.clip` path every image/video tool uses.

Also the labelled-data readers shared by the ``adapt.*`` tools: an ImageFolder (one sub-folder per
class) or an image-caption JSONL, read through the allowed roots with every image decoded up front
(unreadable ones are reported together, before any training).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vltools.core.errors import Conflict, InvalidInput, NotFound, ToolError
from vltools.core.paths import check_path
from vltools.core.settings import Settings

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}", re.ASCII)
MAX_IMAGES = 20_000


# -- labelled data ---------------------------------------------------------------------------------
@dataclass
class Labelled:
    """Images with a class index each (ImageFolder) or a caption each (JSONL)."""

    paths: list[str]
    targets: list[int]  # index into `classes`
    classes: list[str]  # class names (ImageFolder) or the distinct captions (JSONL)
    kind: str  # "folder" | "captions"
    images: list[Any] = field(default_factory=list)  # decoded PIL images, same order


def read_labelled(path: str, settings: Settings, *, what: str = "data", max_images: int = MAX_IMAGES) -> Labelled:
    """Read an ImageFolder or an image-caption JSONL (``{"image": PATH, "text": CAPTION}`` per line).

    Raises:
        InvalidInput: fewer than two classes, an empty class folder, a malformed JSONL line,
            or unreadable images (all of them named in ``details``).
        NotFound / TooLarge: as `check_path`.
    """
    from vltools.models.media import IMAGE_EXTENSIONS

    p = check_path(path, settings, kinds=("file", "dir"), what=what)
    if p.is_dir():
        subdirs = sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))
        classes = [d.name.replace("_", " ") for d in subdirs]
        paths: list[str] = []
        targets: list[int] = []
        empty = []
        for ci, d in enumerate(subdirs):
            files = sorted(f for f in d.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                empty.append(d.name)
            paths += [str(f) for f in files]
            targets += [ci] * len(files)
        if len(subdirs) < 2:
            raise InvalidInput(
                f"{what} {p} has {len(subdirs)} class folder(s); fine-tuning a classifier needs at least two",
                hint="put one sub-folder per class (named by the class) with its images in it, two classes or more",
                details={"classes": classes},
            )
        if empty:
            raise InvalidInput(
                f"{what}: class folder(s) with no images: {', '.join(empty[:10])}",
                hint=f"add images ({', '.join(sorted(IMAGE_EXTENSIONS))}) or remove the empty folders",
                details={"empty_classes": empty},
            )
        kind = "folder"
    else:
        rows = _read_jsonl(p, what)
        caps: dict[str, int] = {}
        paths, targets = [], []
        for i, r in enumerate(rows):
            img, text = r.get("image"), r.get("text")
            if not isinstance(img, str) or not isinstance(text, str) or not text.strip():
                raise InvalidInput(
                    f"{what} line {i + 1} needs \"image\" (a path) and \"text\" (a caption)",
                    hint='one JSON object per line: {"image": "a.png", "text": "a photo of ..."}',
                    details={"line": i + 1},
                )
            ip = Path(img) if Path(img).is_absolute() else p.parent / img
            paths.append(str(ip))
            targets.append(caps.setdefault(text.strip(), len(caps)))
        classes = list(caps)
        if len(classes) < 2:
            raise InvalidInput(f"{what} has {len(classes)} distinct caption(s); contrastive training needs two or more",
                               hint="give pairs with different captions")
        kind = "captions"
    if len(paths) > max_images:
        raise InvalidInput(f"{what} has {len(paths)} images, above the limit of {max_images}",
                           hint="use a smaller sample")
    return Labelled(paths, targets, classes, kind)


def _read_jsonl(p: Path, what: str) -> list[dict[str, Any]]:
    from vltools.tools.data._io import iter_json_objects

    rows = [r for _, r in iter_json_objects(p, what)]
    if not rows:
        raise InvalidInput(f"{what} {p} has no records", hint="one JSON object per line")
    return rows


def decode_all(data: Labelled, settings: Settings, what: str = "data") -> None:
    """Decode every image of ``data`` (RGB PIL) into ``data.images``; all failures reported together."""
    from vltools.models.media import load_image

    images, bad = [], []
    for path in data.paths:
        try:
            images.append(load_image(path, settings))
        except ToolError as err:
            bad.append({"path": path, "error": err.message if hasattr(err, "message") else str(err)})
    if bad:
        raise InvalidInput(
            f"{what}: {len(bad)} of {len(data.paths)} images cannot be read "
            f"(first: {bad[0]['path']}: {bad[0]['error']})",
            hint="remove or re-export the unreadable files",
            details={"unreadable": bad[:50]},
        )
    data.images = images


# -- the base model's config ---------------------------------------------------------------------------
def base_config(spec: str, model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(open_clip ``model_cfg``, ``preprocess_cfg``) of the loaded base model named by ``spec``."""
    import open_clip

    from vltools.models.clip import parse_spec

    parsed = parse_spec(spec)
    if parsed.kind == "demo":
        from vltools.models import clip_demo, clip_demo_v2

        cfg = clip_demo_v2.model_config() if parsed.spec == "demo" else clip_demo.model_config()
    elif parsed.kind in ("local-dir", "hf-hub"):
        if parsed.kind == "hf-hub":
            raise InvalidInput("adapting an open_clip:hf-hub: model is not supported",
                               hint="save it with open_clip and pass open_clip:local-dir:PATH")
        folder = Path(parsed.target).expanduser()
        cfg = json.loads((folder / "open_clip_config.json").read_text(encoding="utf-8")).get("model_cfg") or {}
    else:
        cfg = open_clip.get_model_config(parsed.arch) or {}
    if not cfg:
        raise NotFound(f"no open_clip config found for {spec}", hint="use a spec whose architecture open_clip knows")
    pre = dict(getattr(model.visual, "preprocess_cfg", None) or {})
    pre.setdefault("mean", list(open_clip.OPENAI_DATASET_MEAN))
    pre.setdefault("std", list(open_clip.OPENAI_DATASET_STD))
    size = getattr(model.visual, "image_size", None)
    if size is not None:
        pre["size"] = list(size) if isinstance(size, list | tuple) else [int(size), int(size)]
    from vltools.models.clip._portable import resolved_text_cfg

    # this install's folders for building models; save_checkpoint writes portable names
    return resolved_text_cfg(json.loads(json.dumps(cfg))), json.loads(json.dumps(pre, default=str))


# -- saving ------------------------------------------------------------------------------------------
def models_dir(settings: Settings) -> Path:
    return settings.home / "models"


def _models_folder(folder: Path, settings: Settings) -> Path:
    """Create ``folder`` (VLTOOLS_HOME/models) and check it is a real folder (no planted link) under VLTOOLS_HOME."""
    import stat

    try:
        folder.mkdir(parents=True, exist_ok=True)
        st = os.lstat(folder)
    except OSError as err:
        raise InvalidInput(f"cannot create {folder}: {os.strerror(err.errno or 5)}",
                           hint="check VLTOOLS_HOME is writable") from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise InvalidInput(f"{folder} is a symlink or not a folder; checkpoints are not written through links",
                           hint="remove the link")
    if not folder.resolve().is_relative_to(settings.home.expanduser().resolve()):
        raise InvalidInput(f"{folder} resolves outside VLTOOLS_HOME", hint="remove the link")
    return folder


def plan_output(name: str | None, default_stem: str, settings: Settings) -> Path:
    """The folder a new checkpoint will take; Conflict when it exists (checkpoints are never overwritten)."""
    if name is not None and not NAME_RE.fullmatch(name):
        raise InvalidInput(f"checkpoint name {name!r} is not a plain name",
                           hint="letters, digits, '.', '_' and '-', at most 80 characters, no slashes")
    if name is None:
        name = f"{default_stem}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    out = models_dir(settings) / name
    if os.path.lexists(out):
        raise Conflict(f"a checkpoint named {name!r} already exists ({out}); checkpoints are never overwritten",
                       hint="pass another name, or delete the old folder yourself", details={"path": str(out)})
    return out


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json",
                    "merges.txt", "added_tokens.json", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model")


def _copy_tokenizer(model_cfg: dict[str, Any], folder: Path) -> None:
    """Copy an HF tokenizer's files into the checkpoint: open_clip reads a local-dir model's HF tokenizer from the
    folder itself, whatever ``hf_tokenizer_name`` says."""
    import shutil

    from vltools.models.clip._portable import resolve_ref

    name = (model_cfg.get("text_cfg") or {}).get("hf_tokenizer_name")
    if not name:
        return
    src = Path(resolve_ref(name, "the HF tokenizer"))
    if not src.is_dir():
        from vltools.models.clip._load import _snapshot

        src = Path(_snapshot(name, "the HF tokenizer"))
    for f in _TOKENIZER_FILES:
        if (src / f).is_file():
            shutil.copyfile(src / f, folder / f)


def save_checkpoint(model: Any, model_cfg: dict[str, Any], pre_cfg: dict[str, Any], out: Path,
                    settings: Settings, meta: dict[str, Any]) -> str:
    """Save ``model`` (full state, fp32) as an open_clip local-dir folder at ``out``; returns its spec.

    The config names an HF text tower inside an installed package as ``pkg:PACKAGE/PATH`` (resolved
    at load time), not by this machine's absolute path, so the folder loads on another install. A
    model with mixture-of-experts layers (`adapt.upcycle_moe`) also records their layout.
    Written into a fresh temp folder beside it and renamed into place, so a crash leaves no half
    checkpoint and an existing folder (even one that appeared meanwhile) is never replaced.
    """
    from safetensors.torch import save_model

    from vltools.models.clip._moe import moe_layout
    from vltools.models.clip._portable import portable_text_cfg

    config: dict[str, Any] = {"model_cfg": portable_text_cfg(model_cfg), "preprocess_cfg": pre_cfg}
    layout = moe_layout(model)
    if layout is not None:
        config["vltools_moe"] = layout
    parent = _models_folder(out.parent, settings)
    tmp = parent / f".tmp-{out.name}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        save_model(model, str(tmp / "open_clip_model.safetensors"), metadata={"vltools": json.dumps(meta)[:60_000]})
        (tmp / "open_clip_config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
        (tmp / "vltools_adapt.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        _copy_tokenizer(model_cfg, tmp)
        try:
            os.rename(tmp, out)  # fails if `out` appeared meanwhile (a non-empty folder) or is a file
        except OSError:
            raise Conflict(f"{out} appeared while training; checkpoints are never overwritten",
                           hint="pass another name") from None
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return f"open_clip:local-dir:{out}"
