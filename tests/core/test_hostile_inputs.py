"""The issue-21 probe's low-severity inputs, each a `ToolError` (never a raw exception), through the
registry exactly as the faces call it. No model is loaded: each input fails before one would be."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import vltools
from vltools.core.errors import InvalidInput, ToolError


def _deep(n: int) -> list:
    v: list = []
    for _ in range(n):
        v = [v]
    return v


@pytest.fixture(scope="module")
def bm25(vltools_home):
    name = "hostile_bm25"
    vltools.call("collection.create", {"name": name, "kind": "text", "text_model": "none"})
    vltools.call("collection.add", {"collection": name, "documents": [{"id": "d1", "text": "jet engines"},
                                                                     {"id": "d2", "text": "bread dough"}]})
    yield name
    vltools.call("collection.delete", {"collection": name})


CASES = [
    # (id, tool, input, expected ToolError code)
    ("deep-list-stop", "llm.generate", {"prompt": "x", "stop": _deep(900)}, "invalid_input"),
    ("deep-list-docs", "collection.add", {"collection": "x", "documents": [{"id": "a", "text": "t", "m": _deep(900)}]},
     "invalid_input"),
    ("deep-dict", "retrieve.bm25", {"collection": "x", "query": "q", "filter": {"a": {"b": {"c": _deep(900)}}}},
     "invalid_input"),
    ("spec-nul", "llm.generate", {"prompt": "x", "llm": "hf:ab\x00cd"}, "invalid_input"),
    ("spec-file-url", "llm.generate", {"prompt": "x", "llm": "hf:file:///etc/passwd"}, "invalid_input"),
    ("spec-at-passwd", "image.classify", {"images": ["/nonexistent.png"], "labels": ["a", "b"],
                                          "clip": "open_clip:ViT-B-32@/etc/passwd"}, "invalid_input"),
    ("spec-at-passwd-bare", "llm.generate", {"prompt": "x", "llm": "@/etc/passwd"}, "invalid_input"),
    ("text-model-url", "collection.create", {"name": "tm", "kind": "text", "text_model": "file:///etc/passwd"},
     "invalid_input"),
    ("tilde-unknown-user", "image.index", {"collection": "h1", "paths": ["~nosuchuser/x.png"], "create": True},
     "invalid_input"),
    ("tilde-unknown-user-glob", "image.index", {"collection": "h1", "paths": ["~nosuchuser/*.png"], "create": True},
     "invalid_input"),
    ("long-path", "image.index", {"collection": "h1", "paths": ["/tmp/" + "a" * 5000], "create": True},
     "invalid_input"),
    ("long-path-component", "collection.add", {"collection": "x", "path": "/tmp/" + "b" * 300 + ".jsonl"}, None),
    ("surrogate-text", "llm.generate", {"prompt": "a\ud800b"}, "invalid_input"),
    ("surrogate-path", "image.index", {"collection": "h1", "paths": ["/tmp/\ud800.png"], "create": True},
     "invalid_input"),
    ("surrogate-key", "collection.add", {"collection": "x", "documents": [{"id": "a", "text": "t", "\udfff": 1}]},
     "invalid_input"),
    ("proc-glob", "image.index", {"collection": "h1", "paths": ["/proc/1/*"], "create": True}, "not_found"),
    ("nl-name", "collection.create", {"name": "nl\n", "kind": "text", "text_model": "none"}, "invalid_input"),
    ("nan-min-score", "evidence.select", {"claim": "c", "passages": [{"id": "a", "text": "t"}],
                                          "min_score": math.nan}, "invalid_input"),
    ("inf-min-score", "graph.rag", {"collection": "x", "question": "q", "min_score": math.inf}, "invalid_input"),
    ("nan-times", "vqa.zero_shot", {"video": "/tmp/x.mp4", "question": "is it red?", "times": [math.nan]},
     "invalid_input"),
]


@pytest.mark.parametrize(("tool", "inp", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_input_is_a_tool_error(tool, inp, code):
    with pytest.raises(ToolError) as exc:
        vltools.call(tool, inp)
    if code:
        assert exc.value.code == code, exc.value.render()
    text = exc.value.render()
    assert len(text) < 2000  # never echoes a 5,000-character path or a deep structure back
    assert "\ud800" not in text and "\x00" not in text


def test_input_depth_limit_allows_ordinary_nesting():
    from vltools.core.limits import check_input_shape

    check_input_shape({"a": [{"b": [[1, 2], {"c": "x"}]}]})
    with pytest.raises(InvalidInput, match="deeper than 32"):
        check_input_shape(_deep(40))
    check_input_shape(_deep(30))


def test_cli_json_nested_beyond_the_parser_is_exit_2(run_cli):
    code, out, err = run_cli("call", "llm.generate", "--json", "[" * 100_000 + "]" * 100_000)
    assert code == 2 and out == "" and "nests too deeply" in err


def test_tiny_temperature_is_greedy(monkeypatch):
    """temperature 1e-38 overflowed logits / T in torch; now it is greedy (0) before the backend sees it."""
    from vltools.models import llm as llm_mod

    seen: list[float] = []

    class Stub(llm_mod.LLM):
        spec = "stub"
        capabilities = frozenset({"generate"})

        def complete(self, messages, *, max_tokens=256, temperature=0.0, stop=None, top_logprobs=0):
            seen.append(temperature)
            return llm_mod.Completion(text="ok", usage=llm_mod.Usage(1, 1, 1))

    monkeypatch.setattr(llm_mod, "get_llm", lambda spec=None, settings=None: Stub())
    vltools.call("llm.generate", {"prompt": "x", "temperature": 1e-38})
    vltools.call("llm.generate", {"prompt": "x", "temperature": 0.7})
    assert seen == [0.0, 0.7]


def test_qrels_relevance_1e30_and_private_files(bm25, tmp_path):
    q = [{"id": "q1", "text": "jet"}]
    with pytest.raises(InvalidInput, match="relevance grade"):
        vltools.call("eval.retrieval", {"collection": bm25, "queries": q, "qrels": {"q1": {"d1": 10**30}}})
    for content in ("q1 d1 1e30\n", "q1 d1 inf\n"):
        f = tmp_path / "big.qrels"
        f.write_text(content)
        with pytest.raises(InvalidInput):
            vltools.call("eval.retrieval", {"collection": bm25, "queries": q, "qrels_path": str(f)})
    private = tmp_path / "private.txt"
    private.write_text("user password hunter2\nroot token S3CRET-TOKEN-XYZ\n")
    with pytest.raises(ToolError) as exc:
        vltools.call("eval.retrieval", {"collection": bm25, "queries": q, "qrels_path": str(private)})
    assert "S3CRET" not in exc.value.render() and "hunter2" not in exc.value.render()


def test_nl_name_creates_no_folder(vltools_home):
    with pytest.raises(InvalidInput):
        vltools.call("collection.create", {"name": "nl\n", "kind": "text", "text_model": "none"})
    assert not [p for p in Path(vltools_home).rglob("*") if "\n" in p.name]


def test_store_name_check_uses_fullmatch():
    """The schema's pattern guards the tools; the store's own check (Python API) must hold too."""
    from vltools.store._manifest import check_name

    for bad in ("nl\n", "a/b", "", ".hidden"):
        with pytest.raises(InvalidInput):
            check_name(bad)
    assert check_name("ok.name-1") == "ok.name-1"
