"""Which runtime each backend uses on the configured device: one decision, testable without a GPU.

Settings: ``VLTOOLS_DEVICE`` (auto | cpu | cuda[:N] | mps), ``VLTOOLS_TEXT_BACKEND`` (auto | torch |
onnx | onnx-int8) and ``VLTOOLS_FAISS_GPU``. `plan` is a pure function of the settings and of what
the machine has (CUDA, bf16 support, onnxruntime, FAISS GPUs); `current` probes the machine.

On CUDA: CLIP runs in fp16 (`vltools.models.clip`), the text encoder in fp16, the HF LLM in bf16
(fp16 where the GPU has no bf16), and FAISS searches on the GPU when faiss-gpu (install extra
``gpu``) is installed. On CPU: fp32 torch, and the text encoder on onnxruntime when installed
(benchmarks/README.md, "Faster CPU text encoding", measured the choice).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from vltools.core.errors import BackendUnavailable

# The CPU text backend "auto" picks when onnxruntime is installed (chosen by measurement).
AUTO_CPU_TEXT_BACKEND = "onnx"


@dataclass(frozen=True)
class DevicePlan:
    device: str
    clip_precision: str = "fp32"
    text_backend: str = "torch"
    text_dtype: str = "float32"
    llm_dtype: str = "float32"
    faiss: str = "cpu"
    notes: tuple[str, ...] = ()


def plan(settings: Any, *, cuda: bool, bf16: bool = False, onnxruntime: bool = False, faiss_gpus: int = 0
         ) -> DevicePlan:  # fmt: skip
    """The runtimes for ``settings`` on a machine with the given capabilities."""
    wanted = settings.device
    device = ("cuda" if cuda else "cpu") if wanted == "auto" else wanted
    notes: list[str] = []
    on_cuda = device.startswith("cuda")
    if on_cuda and not cuda:
        raise BackendUnavailable(
            f"VLTOOLS_DEVICE={wanted} but torch sees no CUDA device",
            hint="set VLTOOLS_DEVICE=cpu (or auto), or install a CUDA build of torch on a GPU machine",
        )
    text = settings.text_backend
    if text == "auto":
        text = AUTO_CPU_TEXT_BACKEND if (device == "cpu" and onnxruntime) else "torch"
    elif text.startswith("onnx"):
        if device != "cpu":
            notes.append(f"text_backend {text} runs on CPU only; the text encoder uses torch on {device}")
            text = "torch"
        elif not onnxruntime:
            raise BackendUnavailable(
                f"VLTOOLS_TEXT_BACKEND={text} needs onnxruntime, which is not installed",
                hint="pip install -e '.[scale]' (or set VLTOOLS_TEXT_BACKEND=torch)",
            )
    faiss = "gpu" if on_cuda and settings.faiss_gpu and faiss_gpus > 0 else "cpu"
    if on_cuda and settings.faiss_gpu and faiss_gpus == 0:
        notes.append("FAISS searches on CPU: faiss-gpu is not installed (pip install -e '.[gpu]')")
    return DevicePlan(
        device=device,
        clip_precision="fp16" if on_cuda else "fp32",
        text_backend=text,
        text_dtype="float16" if on_cuda else "float32",
        llm_dtype=("bfloat16" if bf16 else "float16") if on_cuda else "float32",
        faiss=faiss,
        notes=tuple(notes),
    )


def _faiss_gpus() -> int:
    try:
        import faiss
    except ImportError:
        return 0
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def current(settings: Any) -> DevicePlan:
    """`plan` for this machine (imports torch; call from backends only)."""
    import torch

    cuda = bool(torch.cuda.is_available())
    return plan(
        settings,
        cuda=cuda,
        bf16=bool(cuda and torch.cuda.is_bf16_supported()),
        onnxruntime=importlib.util.find_spec("onnxruntime") is not None,
        faiss_gpus=_faiss_gpus() if cuda else 0,
    )
