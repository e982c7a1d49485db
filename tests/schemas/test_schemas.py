"""vltools.schemas: import-light shared types; ToolInput rejects unknown fields and warns on renamed ones."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from pydantic import BaseModel, ValidationError

from vltools.core.errors import RegistryError
from vltools.core.tool import tool
from vltools.schemas import Box, Hit, Mask, Ranking, ToolInput, VideoRef


def test_schemas_import_only_pydantic():
    code = (
        "import sys, vltools.schemas; heavy = {'torch', 'numpy', 'transformers', 'open_clip', 'faiss', 'av'}"
        " & set(sys.modules); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_core_types_is_a_re_export():
    from vltools.core import types

    assert types.Hit is Hit and types.Ranking is Ranking


class _Old(ToolInput):
    renamed = {"model": "clip"}
    clip: str | None = None
    k: int = 3


def test_tool_input_rejects_unknown_fields_by_name():
    with pytest.raises(ValidationError, match="kk"):
        _Old.model_validate({"kk": 3})


def test_renamed_field_is_accepted_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="'model' is deprecated, use 'clip'"):
        assert _Old.model_validate({"model": "demo"}).clip == "demo"
    with pytest.raises(ValidationError, match="deprecated name"):
        _Old.model_validate({"model": "demo", "clip": "demo"})


class _Loose(BaseModel):
    text: str


class _Out(BaseModel):
    text: str


def _loose(inp: _Loose, ctx: object) -> _Out:
    return _Out(text=inp.text)


def test_tool_decorator_refuses_an_input_model_that_accepts_unknown_fields():
    with pytest.raises(RegistryError, match="must reject unknown fields"):
        tool("test.loose")(_loose)


@pytest.mark.parametrize("shape", [(3, 4), (1, 1), (5, 7)])
def test_mask_rle_round_trips(shape):
    rng = np.random.default_rng(sum(shape))
    for a in (rng.random(shape) > 0.5, np.ones(shape, bool), np.zeros(shape, bool)):
        m = Mask.from_array(a, label="x")
        assert m.area == int(a.sum()) and np.array_equal(m.to_array(), a)
        assert Mask.model_validate(m.model_dump()).counts == m.counts


def test_mask_box_and_video_span_are_checked():
    with pytest.raises(ValidationError, match="sum to"):
        Mask(height=2, width=2, counts=[1, 2])
    with pytest.raises(ValidationError, match="out of order"):
        Box(x0=5, y0=0, x1=1, y1=2)
    with pytest.raises(ValidationError, match="before start"):
        VideoRef(path="v.mp4", start=3, end=1)
