"""No process-wide side effects and no unbounded state: settings own the environment, caches have caps,
and the operator's allow-list limits which models a call may load."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import numpy as np
import pytest

from vltools.core.cache import LRUCache, ModelCache
from vltools.core.errors import InvalidInput
from vltools.core.settings import Settings, check_model_allowed

PKG = Path(__file__).resolve().parents[2] / "vltools"
# Programs (not library code) own their process: the CLI entry point, the MCP server's entry point and
# the OpenAI-compatible test server's ``main``.
PROGRAMS = {"cli.py", "server.py", "testing/openai_server.py"}


def _library_files() -> list[Path]:
    return [p for p in PKG.rglob("*.py") if str(p.relative_to(PKG)) not in PROGRAMS]


def _calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            yield node


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return _dotted(node.value) + "." + node.attr
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        return _dotted(node.func) + "()"
    return "?"


def test_library_code_changes_no_environment_variable_or_root_logger():
    bad = []
    for path in _library_files():
        for call in _calls(path):
            name = _dotted(call.func)
            if name in ("os.environ.setdefault", "os.putenv", "os.environ.update", "logging.basicConfig") or (
                name.endswith(".setLevel") and name.startswith(("logging.getLogger()", "root"))
            ):
                bad.append(f"{path.relative_to(PKG)}:{call.lineno} {name}")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                bad += [f"{path.relative_to(PKG)}:{node.lineno} environ[...] =" for t in targets
                        if isinstance(t, ast.Subscript) and _dotted(t.value) == "os.environ"]
    assert bad == []


def test_vltools_settings_are_read_only_through_settings():
    """No VLTOOLS_* variable is read from the environment outside core/settings.py."""
    bad = []
    for path in PKG.rglob("*.py"):
        if path.name == "settings.py":
            continue
        for call in _calls(path):
            if _dotted(call.func) in ("os.environ.get", "os.getenv") and call.args:
                arg = call.args[0]
                if isinstance(arg, ast.Constant) and str(arg.value).startswith("VLTOOLS_"):
                    bad.append(f"{path.relative_to(PKG)}:{call.lineno} {arg.value}")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Subscript) and _dotted(node.value) == "os.environ":
                key = node.slice
                if isinstance(key, ast.Constant) and str(key.value).startswith("VLTOOLS_"):
                    bad.append(f"{path.relative_to(PKG)}:{node.lineno} {key.value}")
    assert bad == []


def test_settings_fields_for_the_former_environment_reads(monkeypatch, tmp_path):
    monkeypatch.setenv("VLTOOLS_MODEL_CACHE", str(tmp_path / "mc"))
    monkeypatch.setenv("VLTOOLS_NLTK_DATA", str(tmp_path / "nltk"))
    monkeypatch.setenv("VLTOOLS_LOG_LEVEL", "debug")
    monkeypatch.setenv("VLTOOLS_FAISS_THREADS", "3")
    monkeypatch.setenv("VLTOOLS_MAX_LOADED_MODELS", "1")
    monkeypatch.setenv("VLTOOLS_ALLOWED_MODELS", '["smollm2", "hf:/models/*"]')
    s = Settings()
    assert s.model_cache == tmp_path / "mc" and s.nltk_data == tmp_path / "nltk" and s.log_level == "debug"
    assert s.faiss_threads == 3 and s.max_loaded_models == 1 and s.allowed_models == ["smollm2", "hf:/models/*"]
    from vltools.models.llm import model_cache_dir

    assert model_cache_dir(s) == tmp_path / "mc"


# -- caches ---------------------------------------------------------------------------------------------
def test_lru_cache_keeps_the_most_recently_used():
    c: LRUCache[str, int] = LRUCache(maxsize=2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1  # a is now the most recent
    assert c.put("c", 3) == [("b", 2)]
    assert c.keys() == ["a", "c"] and "b" not in c and len(c) == 2
    assert c.resize(1) == [("a", 1)] and c.keys() == ["c"]


def test_model_cache_caps_models_and_loads_each_once():
    cache: ModelCache[object] = ModelCache("test")
    loads: list[str] = []
    gate = threading.Event()

    def loader(key: str):
        def load() -> object:
            gate.wait(5)
            loads.append(key)
            return object()

        return load

    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get_or_load("m1", loader("m1"), 2))) for _ in range(6)]
    for th in threads:
        th.start()
    gate.set()
    for th in threads:
        th.join()
    assert loads == ["m1"] and len({id(g) for g in got}) == 1  # six callers, one load, one model
    cache.get_or_load("m2", loader("m2"), 2)
    cache.get_or_load("m1", loader("m1"), 2)  # a hit: m1 becomes the most recent
    cache.get_or_load("m3", loader("m3"), 2)
    assert cache.keys() == ["m1", "m3"] and loads == ["m1", "m2", "m3"]


def test_llm_cache_is_bounded_by_the_setting():
    from vltools.models import llm

    llm.clear_cache()
    s = Settings(max_loaded_models=2, llm_endpoints={"dead": {"base_url": "http://127.0.0.1:9/v1"}})
    specs = [f"openai:dead#m{i}" for i in range(4)]  # constructing a client sends nothing
    backends = [llm.get_llm(spec, s) for spec in specs]
    assert [spec for spec, _ in llm.loaded()] == specs[2:]
    assert llm.get_llm(specs[3], s) is backends[3]
    llm.clear_cache()


def test_vqa_text_features_and_natlog_word_vectors_are_bounded(monkeypatch):
    from vltools.tools import _vqa_engine, natlog

    class FakeClip:
        spec = "fake-clip"

        def encode_texts(self, texts):
            return np.ones((len(texts), 2), dtype=np.float32), [False] * len(texts)

    monkeypatch.setattr(_vqa_engine, "_TEXTS", LRUCache(maxsize=5))
    feats = _vqa_engine.text_features(FakeClip(), [f"t{i}" for i in range(12)])
    assert feats.shape == (12, 2) and len(_vqa_engine._TEXTS) == 5
    assert isinstance(natlog._WORD_VECS, LRUCache) and natlog._WORD_VECS.maxsize <= 50_000


# -- the operator's allow-list ------------------------------------------------------------------------------
def test_allowed_models_are_glob_patterns_and_the_error_names_the_setting():
    s = Settings(allowed_models=["smollm2", "hf:/models/*"])
    check_model_allowed("smollm2", s)
    check_model_allowed("hf:/models/qwen", s)
    with pytest.raises(InvalidInput) as exc:
        check_model_allowed("hf:/elsewhere/qwen", s, what="LLM")
    assert "allowed_models" in exc.value.message and "VLTOOLS_ALLOWED_MODELS" in exc.value.message
    assert exc.value.details["setting"] == "allowed_models" and "smollm2" in exc.value.hint
    check_model_allowed("anything", Settings())  # unset: everything goes


def test_loaders_enforce_the_allow_list_before_loading_anything():
    from vltools.models.clip import get_clip
    from vltools.models.llm import get_llm
    from vltools.models.text import get_text_encoder

    s = Settings(allowed_models=["minilm"])
    for load, spec in ((get_llm, "openai:http://127.0.0.1:9/v1#m"), (get_text_encoder, "/some/model"),
                       (get_clip, "open_clip:ViT-B-32/openai")):
        with pytest.raises(InvalidInput, match="allowed_models"):
            load(spec, s)


def test_faiss_threads_are_set_for_the_calling_thread_only():
    faiss = pytest.importorskip("faiss")
    from vltools.core.settings import reset_settings
    from vltools.store import _faiss

    before = faiss.omp_get_max_threads()
    seen: list[int] = []

    def worker() -> None:
        _faiss._faiss()
        seen.append(faiss.omp_get_max_threads())

    reset_settings()
    th = threading.Thread(target=worker)
    th.start()
    th.join()
    assert seen == [1]  # the default setting, in the thread that searched
    assert faiss.omp_get_max_threads() == before  # the host's own threads are untouched
