"""Loading CLIP models by spec: parse, check the local cache, create through open_clip, cache per process.

Nothing is downloaded and no process-wide switch (``HF_HUB_OFFLINE``) is set: pretrained weights
and hub repos are resolved to files already in the local Hugging Face / open_clip cache (a missing
one fails at once, before open_clip could reach for the network, with instructions), HF text
towers and tokenizers are loaded from their cached snapshot folders (found with
``local_files_only``), and open_clip is then given local paths only.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vltools.core.cache import ModelCache
from vltools.core.errors import BackendUnavailable, InvalidInput, NotFound
from vltools.core.settings import Settings, check_model_allowed
from vltools.models.clip._encode import ClipBackend
from vltools.models.clip._portable import resolve_ref, resolved_text_cfg

# Loaded models kept per process (at most settings.max_loaded_models), least recently used evicted first.
_CACHE: ModelCache[ClipBackend] = ModelCache("clip")

SPEC_FORMS = (
    "demo, demo-shapes, open_clip:ARCH/PRETRAINED, open_clip:local-dir:PATH, open_clip:hf-hub:ORG/REPO "
    "or open_clip:ARCH@CHECKPOINT"
)
_HUB_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
_PREPROCESS_KEYS = {"mean": "image_mean", "std": "image_std", "interpolation": "image_interpolation",
                    "resize_mode": "image_resize_mode"}


@dataclass(frozen=True)
class ClipSpec:
    """A parsed CLIP spec. ``target``: folder, hub repo, checkpoint path or pretrained tag by ``kind``."""

    spec: str
    kind: Literal["demo", "local-dir", "hf-hub", "checkpoint", "pretrained", "random"]
    arch: str = ""
    target: str = ""


def parse_spec(spec: str) -> ClipSpec:
    """Parse a CLIP spec string (no file or cache access); `InvalidInput` naming the valid forms."""
    spec = spec.strip()
    if spec in ("demo", "demo-shapes"):  # v2 (objects + shapes) / v1 (shapes only)
        return ClipSpec(spec, "demo")
    if not spec.startswith("open_clip:"):
        raise InvalidInput(f"unknown CLIP spec {spec!r}", hint=f"use {SPEC_FORMS}")
    rest = spec[len("open_clip:") :]
    if rest.startswith("local-dir:"):
        return ClipSpec(spec, "local-dir", target=rest[len("local-dir:") :])
    if rest.startswith("hf-hub:"):
        return ClipSpec(spec, "hf-hub", target=rest[len("hf-hub:") :])
    if "@" in rest:
        arch, _, ckpt = rest.partition("@")
        return ClipSpec(spec, "checkpoint", arch, ckpt)
    arch, sep, tag = rest.partition("/")
    if not sep or not tag:
        raise InvalidInput(
            f"CLIP spec {spec!r} names no pretrained weights",
            hint=f"use open_clip:{arch}/TAG (see open_clip.list_pretrained()) or open_clip:{arch}@CHECKPOINT",
        )
    return ClipSpec(spec, "random" if tag == "random" else "pretrained", arch, tag)


def get_clip(spec: str | None, settings: Settings) -> ClipBackend:
    """The cached `ClipBackend` for ``spec`` (default ``settings.clip``) on ``settings.torch_device()``.

    At most ``settings.max_loaded_models`` models stay loaded; the least recently used is dropped
    first. A spec outside ``settings.allowed_models`` (when set) is refused before anything loads.
    """
    parsed = parse_spec(spec or settings.clip)
    check_model_allowed(parsed.spec, settings, what="CLIP")
    if parsed.kind == "pretrained":
        _nothing_cached_precheck(parsed.arch, parsed.target)  # no open_clip/torch import (~20 s on a busy machine)
        cached_pretrained(parsed.arch, parsed.target)  # fails at once, before anything could reach the network
    device = settings.torch_device()
    return _CACHE.get_or_load((parsed.spec, device), lambda: _load(parsed, device), settings.max_loaded_models)


def clear_cache() -> None:
    """Forget loaded models (tests, memory)."""
    _CACHE.clear()


def loaded_specs() -> list[tuple[str, str]]:
    """(spec, device) of the models currently loaded, least recently used first."""
    return [key for key in _CACHE.keys() if isinstance(key, tuple)]


# -- the local cache ------------------------------------------------------------------------------
def _fetch_hint(arch: str, tag: str) -> str:
    return (
        "on a connected machine run "
        f"`python -c \"import open_clip; open_clip.create_model_and_transforms('{arch}', pretrained='{tag}')\"` "
        "and copy its ~/.cache/huggingface/hub (or $HF_HOME) to this machine, or save the model to a folder "
        "(open_clip_config.json + weights) and use open_clip:local-dir:PATH"
    )


def _hf_cache_dir() -> str:
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return os.path.join(home, "hub")


def _hub_cached(repo_id: str, filenames: Sequence[str]) -> str | None:
    """Path of the first of ``filenames`` in the local HF cache of ``repo_id``; never touches the network."""
    from huggingface_hub import try_to_load_from_cache

    for name in filenames:
        got = try_to_load_from_cache(repo_id, name, cache_dir=_hf_cache_dir())
        if isinstance(got, str) and os.path.isfile(got):
            return got
    return None


def _snapshot(repo_id: str, what: str) -> str:
    """The cached snapshot folder of a hub repo (``local_files_only``); BackendUnavailable if absent."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(repo_id, cache_dir=_hf_cache_dir(), local_files_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError) as err:
        raise BackendUnavailable(
            f"{what} {repo_id} is not cached on this machine and vltools never downloads at run time",
            hint=f"on a connected machine run `huggingface-cli download {repo_id}` and copy the HF cache "
            f"({_hf_cache_dir()}) here",
        ) from err


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def _builtin_arch_names() -> set[str]:
    """open_clip's builtin architectures: the stems of its ``model_configs/*.json`` data files, found
    with ``importlib.util.find_spec`` (which locates the package without importing it)."""
    import importlib.util

    found = importlib.util.find_spec("open_clip")
    if found is None or not found.submodule_search_locations:
        return set()
    return {p.stem for loc in found.submodule_search_locations for p in (Path(loc) / "model_configs").glob("*.json")}


def _weights_cached_anywhere() -> bool:
    """Whether the local caches hold any file that could be open_clip weights (directory listings only)."""
    hub = Path(_hf_cache_dir())
    for snaps in hub.glob("models--*/snapshots") if hub.is_dir() else []:
        if any(p.name.endswith(_WEIGHT_SUFFIXES) for p in snaps.rglob("*")):
            return True
    clip_dir = Path(os.path.expanduser("~/.cache/clip"))
    return clip_dir.is_dir() and any(clip_dir.iterdir())


def _nothing_cached_precheck(arch: str, tag: str) -> None:
    """Fail at once when no weights at all are cached, without importing open_clip (and torch).

    Only for builtin architectures while open_clip is not yet imported; otherwise (or when some
    weights are cached) `cached_pretrained` decides, with exact messages about tags.
    """
    import sys

    if "open_clip" in sys.modules or arch not in _builtin_arch_names() or _weights_cached_anywhere():
        return
    raise BackendUnavailable(
        f"pretrained weights for open_clip:{arch}/{tag} are not cached on this machine (no open_clip weights "
        f"in {_hf_cache_dir()} or ~/.cache/clip) and vltools never downloads at run time",
        hint=_fetch_hint(arch, tag) + f"; valid tags: open_clip.list_pretrained_tags_by_model('{arch}')",
    )


def _check_arch(arch: str) -> None:
    import open_clip

    names = open_clip.list_models()
    if arch not in names:
        close = difflib.get_close_matches(arch, names, n=5, cutoff=0.5)
        raise InvalidInput(
            f"unknown open_clip architecture {arch!r}",
            hint=("close names: " + ", ".join(close)) if close else "see open_clip.list_models() for valid names",
        )


def cached_pretrained(arch: str, tag: str) -> tuple[str, dict[str, Any]]:
    """(local weights path, open_clip's pretrained config) for ``arch``/``tag``; never downloads.

    Raises:
        InvalidInput: unknown architecture or tag (the hint lists close names / known tags).
        BackendUnavailable: the weights are not in the local cache (the hint says how to fetch them).
    """
    import open_clip

    _check_arch(arch)
    cfg = open_clip.get_pretrained_cfg(arch, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise InvalidInput(
            f"open_clip has no pretrained tag {tag!r} for {arch}",
            hint=f"known tags: {', '.join(tags) or 'none'} (or use random, or ARCH@CHECKPOINT)",
        )
    if cfg.get("file"):
        return cfg["file"], cfg
    where = []
    if cfg.get("hf_hub"):
        hub = cfg["hf_hub"]
        if hub.endswith("/"):  # repo only: open_clip's default weight names
            repo, names = hub.rstrip("/"), _HUB_WEIGHTS
        else:
            repo, filename = os.path.split(hub)
            names = (os.path.splitext(filename)[0] + ".safetensors", filename)
        found = _hub_cached(repo, names)
        if found:
            return found, cfg
        where.append(f"HF hub repo {repo} in {_hf_cache_dir()}")
    if cfg.get("url"):
        target = os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(cfg["url"]))
        if os.path.isfile(target):
            return target, cfg
        where.append(target)
    raise BackendUnavailable(
        f"pretrained weights for open_clip:{arch}/{tag} are not cached on this machine "
        f"(looked for {'; '.join(where)}) and vltools never downloads at run time",
        hint=_fetch_hint(arch, tag),
    )


def _tokenizer(name: str, text_cfg: dict[str, Any]) -> Any:
    """open_clip's tokenizer for ``name``; an HF tokenizer named by hub id is read from its snapshot folder.

    Mirrors the HF branch of ``open_clip.get_tokenizer``: given a hub id, transformers builds request
    headers (which may query the Hub) even with ``local_files_only``; a folder needs no request at all.
    """
    import open_clip

    hub_id = text_cfg.get("hf_tokenizer_name")
    if not hub_id or name.startswith("local-dir:") or Path(hub_id).is_dir():
        return open_clip.get_tokenizer(name)
    if resolve_ref(hub_id, "the HF tokenizer") != hub_id:  # a pkg: name or a moved absolute folder
        hub_id = resolve_ref(hub_id, "the HF tokenizer")
        return open_clip.tokenizer.HFTokenizer(
            hub_id, context_length=text_cfg.get("context_length", open_clip.tokenizer.DEFAULT_CONTEXT_LENGTH),
            tokenizer_mode=text_cfg.get("tokenizer_mode"), **text_cfg.get("tokenizer_kwargs", {}))
    return open_clip.tokenizer.HFTokenizer(
        _snapshot(hub_id, "the HF tokenizer"),
        context_length=text_cfg.get("context_length", open_clip.tokenizer.DEFAULT_CONTEXT_LENGTH),
        tokenizer_mode=text_cfg.get("tokenizer_mode"),
        **text_cfg.get("tokenizer_kwargs", {}),
    )


def _local_text_cfg(text_cfg: dict[str, Any]) -> dict[str, Any] | None:
    """``text_cfg`` with an HF text tower named by hub id replaced by its cached snapshot folder.

    open_clip's HF tower calls ``AutoConfig.from_pretrained(name)`` with no way to pass
    ``local_files_only``; a local folder never reaches the network. None when nothing changes.
    """
    name = text_cfg.get("hf_model_name")
    if not name:
        return None
    resolved = resolved_text_cfg({"text_cfg": text_cfg})["text_cfg"]  # pkg: names, moved absolute folders
    if resolved != text_cfg:
        return resolved
    if Path(name).is_dir():
        return None
    return {**text_cfg, "hf_model_name": _snapshot(name, "the HF text tower")}


# -- creating ---------------------------------------------------------------------------------------
def _precision(device: str) -> str:
    return "fp16" if device.startswith("cuda") else "fp32"


def _create(name: str, device: str, spec: str, model_cfg: dict[str, Any] | None, **kw: Any) -> ClipBackend:
    """open_clip's ``create_model_and_transforms`` + ``get_tokenizer`` on local files only."""
    import open_clip

    text_cfg = dict((model_cfg or {}).get("text_cfg") or {})
    try:
        local_text = _local_text_cfg(text_cfg)
        if local_text is not None:
            kw["text_cfg"] = local_text  # open_clip applies model kwargs over the config
        model, _, preprocess = open_clip.create_model_and_transforms(
            name, device=device, precision=_precision(device), **kw
        )
        tokenizer = _tokenizer(name, text_cfg)
    except (InvalidInput, BackendUnavailable):
        raise
    except Exception as err:  # config/weights/HF text tower problems: say which spec and why
        raise BackendUnavailable(
            f"cannot load CLIP {spec}: {type(err).__name__}: {err}",
            hint="check the spec, the folder/checkpoint, and that any HF text tower it names is cached locally",
        ) from err
    return ClipBackend(spec, model, preprocess, tokenizer, device)


def _load_demo(spec: str, device: str) -> ClipBackend:
    try:
        from vltools.models import clip_demo, clip_demo_v2
    except ImportError as err:
        raise BackendUnavailable(f"the demo CLIP is not available: {err}", hint="reinstall vltools") from err
    try:
        model, preprocess, tokenizer = clip_demo_v2.load(device) if spec == "demo" else clip_demo.load_demo(device)
    except FileNotFoundError as err:
        script = "train_demo_clip_v2.py" if spec == "demo" else "train_demo_clip.py"
        raise BackendUnavailable(
            f"the demo CLIP weights are missing: {err}",
            hint=f"reinstall vltools or retrain with scripts/{script}",
        ) from err
    if device.startswith("cuda"):
        model = model.half()
    return ClipBackend(spec, model, preprocess, tokenizer, device)


def _read_local_dir(folder: Path) -> dict[str, Any]:
    import json

    if not (folder / "open_clip_config.json").is_file():
        raise NotFound(
            f"{folder} has no open_clip_config.json",
            hint="a local-dir model is a folder with open_clip_config.json and a weight file",
        )
    weights = [p for ext in ("*.safetensors", "*.bin", "*.pth", "*.pt") for p in folder.glob(ext)]
    if not weights:  # open_clip would only warn and return random weights
        raise NotFound(f"{folder} has no weight file (.safetensors/.bin/.pth)", hint="copy the weights next to it")
    try:
        return json.loads((folder / "open_clip_config.json").read_text(encoding="utf-8")).get("model_cfg") or {}
    except (ValueError, AttributeError) as err:
        raise InvalidInput(f"{folder}/open_clip_config.json is not valid: {err}") from None


def _moe_layout_of(folder: Path) -> dict[str, Any] | None:
    """The ``vltools_moe`` layout of a local-dir model (adapt.upcycle_moe), or None for a dense one."""
    import json

    try:
        layout = json.loads((folder / "open_clip_config.json").read_text(encoding="utf-8")).get("vltools_moe")
    except (ValueError, AttributeError):
        return None
    if layout is None:
        return None
    if not isinstance(layout, dict):
        raise InvalidInput(f"{folder}/open_clip_config.json: vltools_moe is not an object")
    return layout


class _DropRandomInitWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Model initialized randomly" not in record.getMessage()


@contextlib.contextmanager
def _without_random_init_warning() -> Iterator[None]:
    """Hide open_clip's root-logger warning that a model built without weights is random (removed after)."""
    f = _DropRandomInitWarning()
    logging.getLogger().addFilter(f)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(f)


def _load_moe(folder: Path, device: str, spec: str, cfg: dict[str, Any], layout: dict[str, Any]) -> ClipBackend:
    """A mixture-of-experts checkpoint: open_clip builds the dense model from the config (no weights),
    its MoE layers are rebuilt from the layout, then the saved weights are loaded strictly."""
    from safetensors.torch import load_file

    from vltools.models.clip._moe import apply_layout

    weights = folder / "open_clip_model.safetensors"
    if not weights.is_file():
        raise NotFound(f"{weights} is missing", hint="a mixture-of-experts checkpoint keeps its weights there")
    with _without_random_init_warning():  # the weights are loaded just below
        backend = _create(f"local-dir:{folder.resolve()}", device, spec, cfg, load_weights=False)
    model = backend.model
    apply_layout(model, layout)
    p = next(model.parameters())
    try:
        state = load_file(str(weights), device="cpu")
        model.load_state_dict({k: v.to(p.dtype) if v.is_floating_point() else v for k, v in state.items()})
    except (RuntimeError, OSError) as err:
        raise BackendUnavailable(f"cannot load the mixture-of-experts weights of {spec}: {err}",
                                 hint="re-create the checkpoint with adapt.upcycle_moe") from None
    model.eval()
    return backend


def _load(parsed: ClipSpec, device: str) -> ClipBackend:
    import open_clip

    spec = parsed.spec
    if parsed.kind == "demo":
        return _load_demo(spec, device)
    if parsed.kind in ("local-dir", "hf-hub"):
        if parsed.kind == "hf-hub":
            repo = parsed.target
            if not _hub_cached(repo, ("open_clip_config.json",)) or not _hub_cached(repo, _HUB_WEIGHTS):
                raise BackendUnavailable(
                    f"open_clip hub repo {repo} is not cached on this machine and vltools never downloads at run time",
                    hint=f"on a connected machine run `python -c \"import open_clip; "
                    f"open_clip.create_model_and_transforms('hf-hub:{repo}')\"` and copy the HF cache here",
                )
            folder = Path(_snapshot(repo, "open_clip hub repo"))  # the cached repo is a local-dir model
        else:
            folder = Path(parsed.target).expanduser()
        cfg = _read_local_dir(folder)
        layout = _moe_layout_of(folder)
        if layout is not None:
            return _load_moe(folder, device, spec, cfg, layout)
        return _create(f"local-dir:{folder.resolve()}", device, spec, cfg)
    _check_arch(parsed.arch)
    cfg = open_clip.get_model_config(parsed.arch)
    if parsed.kind == "checkpoint":
        path = Path(parsed.target).expanduser()
        if not path.is_file():
            raise NotFound(f"checkpoint {parsed.target} does not exist", hint="give the path of a local checkpoint")
        return _create(parsed.arch, device, spec, cfg, pretrained=str(path.resolve()))
    if parsed.kind == "random":
        return _create(parsed.arch, device, spec, cfg, pretrained=None)
    path, pcfg = cached_pretrained(parsed.arch, parsed.target)
    # A local file instead of the tag (the tag would make open_clip call the hub), with the tag's preprocessing.
    pre = {arg: pcfg[key] for key, arg in _PREPROCESS_KEYS.items() if pcfg.get(key) is not None}
    return _create(parsed.arch, device, spec, cfg, pretrained=path, **pre)
