"""vltools.models.device: which runtime each backend gets on which device (no GPU needed: the
machine's capabilities are arguments of `plan`)."""

from __future__ import annotations

import pytest

from vltools.core.errors import BackendUnavailable
from vltools.core.settings import Settings
from vltools.models.device import AUTO_CPU_TEXT_BACKEND, current, plan


def s(**kw) -> Settings:
    return Settings(**kw)


def test_cuda_runs_half_precision_and_faiss_on_the_gpu_when_installed():
    p = plan(s(device="cuda"), cuda=True, bf16=True, onnxruntime=True, faiss_gpus=1)
    assert (p.device, p.clip_precision, p.text_backend, p.text_dtype, p.llm_dtype, p.faiss) == (
        "cuda", "fp16", "torch", "float16", "bfloat16", "gpu")
    old_gpu = plan(s(device="cuda:1"), cuda=True, bf16=False, faiss_gpus=2)
    assert (old_gpu.device, old_gpu.llm_dtype) == ("cuda:1", "float16")
    no_faiss_gpu = plan(s(device="cuda"), cuda=True, faiss_gpus=0)
    assert no_faiss_gpu.faiss == "cpu" and "faiss-gpu is not installed" in no_faiss_gpu.notes[0]
    assert plan(s(device="cuda", faiss_gpu=False), cuda=True, faiss_gpus=1).faiss == "cpu"


def test_auto_follows_the_machine():
    assert plan(s(device="auto"), cuda=True, faiss_gpus=1).device == "cuda"
    cpu = plan(s(device="auto"), cuda=False, onnxruntime=True, faiss_gpus=1)
    assert (cpu.device, cpu.clip_precision, cpu.text_dtype, cpu.llm_dtype, cpu.faiss) == (
        "cpu", "fp32", "float32", "float32", "cpu")
    assert cpu.text_backend == AUTO_CPU_TEXT_BACKEND
    assert plan(s(device="cpu"), cuda=True, onnxruntime=False).text_backend == "torch"


def test_text_backend_choices_and_their_errors():
    assert plan(s(device="cpu", text_backend="onnx-int8"), cuda=False, onnxruntime=True).text_backend == "onnx-int8"
    assert plan(s(device="cpu", text_backend="torch"), cuda=False, onnxruntime=True).text_backend == "torch"
    on_gpu = plan(s(device="cuda", text_backend="onnx"), cuda=True)
    assert on_gpu.text_backend == "torch" and "CPU only" in on_gpu.notes[0]
    with pytest.raises(BackendUnavailable, match="onnxruntime") as err:
        plan(s(device="cpu", text_backend="onnx"), cuda=False, onnxruntime=False)
    assert "scale" in err.value.hint
    with pytest.raises(BackendUnavailable, match="no CUDA device") as err:
        plan(s(device="cuda"), cuda=False)
    assert "VLTOOLS_DEVICE=cpu" in err.value.hint
    with pytest.raises(ValueError):
        Settings(text_backend="tensorrt")


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("VLTOOLS_DEVICE", "cpu")
    monkeypatch.setenv("VLTOOLS_TEXT_BACKEND", "torch")
    monkeypatch.setenv("VLTOOLS_FAISS_GPU", "false")
    got = current(Settings())
    assert (got.device, got.text_backend, got.faiss) == ("cpu", "torch", "cpu")


def test_faiss_searches_on_cpu_unless_cuda_and_faiss_gpu():
    from vltools.store import _faiss

    assert not _faiss.use_gpu(s(device="cpu"))
    assert not _faiss.use_gpu(s(device="cuda", faiss_gpu=False))
    has_gpus = int(getattr(_faiss._faiss(), "get_num_gpus", lambda: 0)()) > 0
    assert _faiss.use_gpu(s(device="cuda")) == has_gpus  # faiss-cpu here: False; faiss-gpu on a GPU: True
