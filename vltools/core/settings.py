"""Settings read from the environment (prefix ``VLTOOLS_``) with pydantic-settings.

Every ``VLTOOLS_*`` variable vltools reads is a field here; library code reads settings, never
``os.environ``, and sets no environment variable, logger level or thread count of its host.
"""

from __future__ import annotations

import fnmatch
import os
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from vltools.core.errors import InvalidInput


def _default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "vltools"


def _default_model_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vltools"


class LLMEndpoint(BaseModel):
    """One operator-approved OpenAI-compatible server: its URL and where its API key comes from."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(pattern=r"^https?://", description="Base URL, e.g. http://127.0.0.1:8000/v1.")
    api_key_env: str | None = Field(
        None, description="Environment variable holding this endpoint's API key (sent only to this URL)."
    )


class Settings(BaseSettings):
    """Where data lives, which models are the defaults, and the safety limits."""

    # A project may keep its settings in a `.env` file in the working directory; the
    # environment wins over it.
    model_config = SettingsConfigDict(env_prefix="VLTOOLS_", extra="ignore", env_file=".env")

    home: Path = Field(default_factory=_default_home, description="Root folder for collections and caches.")
    model_cache: Path = Field(
        default_factory=_default_model_cache,
        description="Converted model weights (e.g. the dequantised SmolLM2), shared by every VLTOOLS_HOME.",
    )
    device: str = Field("auto", description="torch device: auto, cpu, cuda, cuda:1, mps.")
    text_backend: str = Field(
        "auto",
        pattern=r"^(auto|torch|onnx|onnx-int8)$",
        description="Text encoder runtime: torch, onnx (onnxruntime, same vectors, faster on CPU), onnx-int8 "
        "(quantised, fastest, vectors differ slightly), or auto (onnx on CPU when onnxruntime is installed, "
        "else torch; fp16 torch on CUDA). See benchmarks/README.md (faster CPU text encoding).",
    )
    faiss_gpu: bool = Field(
        True, description="Search FAISS indexes on the GPU when the device is cuda and faiss-gpu is installed."
    )
    text_model: str = Field("minilm", description="Default text-encoder spec.")
    llm: str = Field("smollm2", description="Default LLM spec.")
    clip: str = Field("demo", description="Default CLIP spec.")
    timeout_s: float = Field(1800.0, gt=0, description="Per-call timeout of a registry call, seconds.")
    allowed_roots: list[Path] = Field(
        default_factory=list,
        description="Folders that tools may read files from; empty = VLTOOLS_HOME only (plus extra_roots).",
    )
    extra_roots: list[Path] = Field(
        default_factory=list,
        description="Folders allowed in addition to allowed_roots (or to VLTOOLS_HOME); relative to the working dir.",
    )
    model_dirs: list[Path] = Field(
        default_factory=list,
        description="Folders model specs may name (hf:PATH, open_clip:local-dir:PATH...), besides the allowed roots "
        "and the model cache.",
    )
    llm_endpoints: dict[str, LLMEndpoint] = Field(
        default_factory=dict,
        description="Named OpenAI-compatible servers a call may use as openai:NAME#MODEL (JSON object).",
    )
    allow_any_endpoint: bool = Field(
        False,
        description="DANGEROUS: let calls name any openai: URL (request forgery); keys still go only to listed URLs.",
    )
    max_glob_files: int = Field(100_000, gt=0, description="Most filesystem entries one glob or folder walk visits.")
    max_mcp_sessions: int = Field(100, gt=0, description="Most open HTTP MCP sessions; a new one beyond it gets 503.")
    mcp_session_idle_s: float = Field(600.0, gt=0, description="HTTP MCP sessions idle this long are closed, seconds.")
    max_image_pixels: int = Field(40_000_000, gt=0, description="Largest image (w*h) a tool decodes.")
    max_file_mb: float = Field(512.0, gt=0, description="Largest input file a tool reads, MiB.")
    max_video_seconds: float = Field(3600.0, gt=0, description="Longest video decoded in full.")
    max_video_frames: int = Field(256, gt=0, description="Most frames sampled from one video per call.")
    max_video_pixels: int = Field(8_847_360, gt=0, description="Largest video frame (w*h) decoded (default 4096x2160).")
    max_document_chars: int = Field(2_000_000, gt=0, description="Longest single document accepted.")
    http_token: str | None = Field(None, description="Bearer token required by the HTTP MCP server off loopback.")
    server: str | None = Field(
        None, description="URL of a running `vltools serve --transport http`; `vltools call` sends calls there.",
    )
    nltk_data: Path | None = Field(None, description="Extra folder searched first for NLTK data (WordNet).")
    log_level: str = Field("WARNING", description="Log level of `vltools serve` (the server process owns its logging).")
    faiss_threads: int = Field(
        1,
        ge=0,
        description="OpenMP threads FAISS uses for vltools' searches (set per call, in the calling thread); "
        "0 leaves FAISS's own default. One query at a time is fastest single-threaded on a busy machine.",
    )
    max_loaded_models: int = Field(
        2, ge=1, description="Most models of each kind (text, llm, clip) kept loaded; least recently used go first."
    )
    allowed_models: list[str] | None = Field(
        None,
        description="If set, the only model specs a call may load (glob patterns, e.g. "
        "[\"smollm2\", \"hf:/models/*\"]); a server operator's guard against clients loading model after model.",
    )

    @property
    def collections_dir(self) -> Path:
        return self.home / "collections"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    def roots(self) -> list[Path]:
        """The folders input files must lie under (resolved).

        By default only ``VLTOOLS_HOME``: a server started from ``/`` must not serve the whole disk.
        The operator adds folders with ``VLTOOLS_ALLOWED_ROOTS`` / ``VLTOOLS_EXTRA_ROOTS``; the
        interactive ``vltools call`` adds the working directory (see `vltools.cli`).
        """
        base = list(self.allowed_roots) if self.allowed_roots else [self.home]
        return [Path(p).expanduser().resolve() for p in [*base, *self.extra_roots]]

    def torch_device(self) -> str:
        """Resolve ``auto`` to cuda when available (imports torch: call only from backends)."""
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"


def check_model_allowed(spec: str, settings: Settings, *, what: str = "model") -> None:
    """Raise `InvalidInput` naming the setting unless ``spec`` matches ``settings.allowed_models``."""
    allowed = settings.allowed_models
    if allowed is None or any(fnmatch.fnmatchcase(spec, pattern) for pattern in allowed):
        return
    raise InvalidInput(
        f"{what} spec {spec!r} is not allowed here: it matches none of the patterns in the setting "
        f"allowed_models (VLTOOLS_ALLOWED_MODELS)",
        hint="use one of: " + (", ".join(allowed) or "(none: the operator allowed no models)"),
        details={"spec": spec, "setting": "allowed_models", "allowed_models": list(allowed)},
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests change the environment)."""
    get_settings.cache_clear()
