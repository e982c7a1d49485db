"""The onnxruntime text backends against torch fp32 on the bundled MiniLM (export cached per model)."""

from __future__ import annotations

import numpy as np
import pytest

from vltools.core.settings import Settings
from vltools.models.text import clear_cache, get_text_encoder

pytest.importorskip("onnxruntime")
TEXTS = ["aircraft wing flutter at supersonic speed", "banana bread recipe", "a", "jet engine noise " * 40,
         "boundary layer transition on a flat plate", "information retrieval of titles"]


@pytest.mark.heavy
def test_onnx_gives_torch_vectors_and_int8_close_ones(tmp_path):
    clear_cache()  # encoders are cached per (spec, device, backend): export into this test's cache
    torch_enc = get_text_encoder("minilm", Settings(text_backend="torch", device="cpu", model_cache=tmp_path))
    onnx_enc = get_text_encoder("minilm", Settings(text_backend="onnx", device="cpu", model_cache=tmp_path))
    int8_enc = get_text_encoder("minilm", Settings(text_backend="onnx-int8", device="cpu", model_cache=tmp_path))
    assert (torch_enc.backend, onnx_enc.backend, int8_enc.backend) == ("torch", "onnx", "onnx-int8")
    exports = sorted(p.name for p in (tmp_path / "onnx").iterdir())
    assert len(exports) == 2 and all(p.startswith("text-") and p.endswith(".onnx") for p in exports)
    a = torch_enc.encode(TEXTS, batch_size=4)
    b = onnx_enc.encode(TEXTS, batch_size=4)
    c = int8_enc.encode(TEXTS, batch_size=4)
    assert b.shape == a.shape == c.shape and b.dtype == np.float32
    assert np.allclose(np.linalg.norm(b, axis=1), 1, atol=1e-5)
    assert (a * b).sum(1).min() > 0.9999  # the same model, another runtime
    assert (a * c).sum(1).min() > 0.97  # int8 weights: close, not equal
    # retrieval order on a tiny task is the same
    q = torch_enc.encode(["wing flutter"]), onnx_enc.encode(["wing flutter"])
    assert np.argmax(a @ q[0][0]) == np.argmax(b @ q[1][0]) == 0
