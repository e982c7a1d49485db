"""The fuzz harness shared by ``tests/core/test_fuzz.py`` (bounded, in CI) and
``benchmarks/bench_fuzz.py`` (deeper): every registry tool's input schema, valid-shaped inputs
from ``hypothesis-jsonschema`` sprinkled with meaningful values (real files, collections, specs)
and hostile ones, plus malformed inputs (wrong types, hostile strings, deep nesting, NaN).

Every call goes through ``Registry.call`` as the faces do; the only accepted failure is a
`ToolError`. What is not real, said plainly: the LLM is a stub (canned, sometimes malformed
answers) so that generation-heavy tools finish in milliseconds; CLIP is the bundled ``demo`` model
and the text encoder the bundled MiniLM (both real). Calls run under a short deadline; a call that
reaches it is a `Timeout` (a `ToolError`), counted separately.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from vltools.core.context import Context
from vltools.core.errors import ToolError
from vltools.core.registry import get_registry
from vltools.core.settings import Settings
from vltools.models import llm as llm_mod

# -- the stub LLM ------------------------------------------------------------------------------
CANNED = [
    "",
    "[2] > [1] > [3]",
    "[1]",
    "yes",
    "no",
    "<think>compare</think><answer>[2]</answer>",
    "The answer is Paris. [1]",
    '{"entities": [{"id": "e1", "name": "dog"}], "relations": [], "events": []}',
    '{"entities": "broken", ',
    "[9] > [0] > [-1] > [x]",
    "\u2028\x00 garbage ]]][[[",
]


class StubLLM(llm_mod.LLM):
    """Canned answers chosen by a hash of the prompt; logits likewise. No attentions (Unsupported)."""

    capabilities = frozenset({"generate", "next_token_logits"})
    exact_tokens = False
    context_length = 2048

    def __init__(self, spec: str) -> None:
        self.spec = spec

    @staticmethod
    def _h(obj: Any) -> int:
        return int(hashlib.sha256(json.dumps(obj, default=str).encode("utf-8", "replace")).hexdigest()[:8], 16)

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4) if text else 0

    def truncate(self, text: str, max_tokens: int) -> tuple[str, bool]:
        return (text, False) if len(text) <= 4 * max_tokens else (text[: 4 * max_tokens], True)

    def complete(self, messages, *, max_tokens=256, temperature=0.0, stop=None, top_logprobs=0):
        text = CANNED[self._h(messages) % len(CANNED)][: 4 * max_tokens]
        return llm_mod.Completion(text=text, usage=llm_mod.Usage(1, self.count_tokens(str(messages)), 1))

    def next_token(self, prompt_or_messages, candidates):
        h = self._h(prompt_or_messages)
        logits = {c: float((h >> (i % 24)) % 17) - 8.0 for i, c in enumerate(candidates)}
        return llm_mod.NextToken(logits, llm_mod.Usage(1, 1, 0))


class FuzzContext(Context):
    """A context whose LLM is the stub (other backends real); nested calls keep it."""

    def llm(self, spec: str | None = None) -> Any:
        from vltools.core.paths import check_model_spec

        check_model_spec("llm", spec, self.settings)
        s = (spec or self.settings.llm).strip()
        kind, _, _ = llm_mod.parse_spec(s)  # unknown specs fail as they would for real
        if kind == "smollm2":
            return StubLLM(s)
        return llm_mod.get_llm(s, self.settings)  # hf: / openai: fail fast (offline, no endpoints)

    def child(self) -> Context:
        ctx = FuzzContext(progress=self._progress_cb, deadline=self.deadline, settings=self.settings,
                          logger=self.logger, registry=self.registry)
        ctx.cancelled = self.cancelled
        return ctx


# -- the world the fuzz runs in ----------------------------------------------------------------
def build_world(base: Path) -> tuple[Settings, list[str]]:
    """Settings (roots under ``base``) and the meaningful strings fuzzed inputs may use."""
    from PIL import Image

    root, home, out = base / "root", base / "home", base / "root" / "out"
    (root / "img").mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / "img" / f"i{i}.png")
    (root / "notes.txt").write_text("not an image\n")
    docs = [{"id": f"d{i}", "text": t} for i, t in enumerate(
        ["Jet engines compress air and burn fuel.", "Bread rises because yeast ferments sugar.",
         "A wing makes lift from a pressure difference.", "The cat sat on the red mat."])]
    (root / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (root / "queries.jsonl").write_text('{"id": "q1", "text": "jet engines"}\n{"id": "q2", "text": "bread"}\n')
    (root / "qrels.tsv").write_text("q1 d0 1\nq2 d1 2\n")
    video = root / "clip.mp4"
    if not video.exists():
        _write_video(video)
    settings = Settings(home=home, allowed_roots=[root], device="cpu", timeout_s=30, _env_file=None)
    strings = [
        str(root / "img" / "i0.png"), str(root / "img"), str(root / "img" / "*.png"), str(root / "notes.txt"),
        str(root / "docs.jsonl"), str(root / "queries.jsonl"), str(root / "qrels.tsv"), str(video), str(out),
        "fz_text", "fz_bm25", "fz_img", "fz_vid", "demo", "minilm", "smollm2", "none", "bm25", "dense", "hybrid",
        "rerank.first", "retrieve.bm25", "retrieve.hybrid", "a red circle", "is the circle red?", "jet engines",
        "d0", "q1", "image", "video", "text",
    ]
    return settings, strings


def _write_video(path: Path) -> None:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=4)
        s.height, s.width, s.pix_fmt = 32, 32, "yuv420p"
        for i in range(8):
            arr = np.full((32, 32, 3), (i * 30) % 256, np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def ensure_collections(settings: Settings) -> None:
    """(Re)create the fixture collections the fuzz may have deleted."""
    from vltools.store import open_collection

    root = settings.allowed_roots[0]
    specs = [
        ("fz_bm25", {"name": "fz_bm25", "kind": "text", "text_model": "none"}, {"collection": "fz_bm25",
                                                                            "path": str(root / "docs.jsonl")}),
        ("fz_text", {"name": "fz_text", "kind": "text", "text_model": "minilm"}, {"collection": "fz_text",
                                                                              "path": str(root / "docs.jsonl")}),
        ("fz_img", None, {"collection": "fz_img", "paths": [str(root / "img")], "create": True, "clip": "demo"}),
        ("fz_vid", None, {"collection": "fz_vid", "paths": [str(root / "clip.mp4")], "create": True,
                          "clip": "demo", "frames": 4}),
    ]
    reg = get_registry()
    for name, create, add in specs:
        try:
            open_collection(name, settings)
            continue
        except ToolError:
            pass
        ctx = FuzzContext(settings=settings)
        if create is not None:
            reg.call("collection.create", create, ctx=ctx, timeout=900)
            reg.call("collection.add", add, ctx=FuzzContext(settings=settings), timeout=900)
        else:
            reg.call("image.index" if name == "fz_img" else "video.index", add, ctx=ctx, timeout=900)


# -- strategies --------------------------------------------------------------------------------
def hostile_strings(world: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(world),
        st.sampled_from([
            "", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "~nosuchuser/x", "~/.ssh/id_rsa", "/etc/passwd",
            "/proc/1/*", "/root/.[a-f]*", "/usr/**/*.png", "../../etc/passwd", "file:///etc/passwd",
            "http://127.0.0.1:9/x", "openai:http://127.0.0.1:9/v1#m", "openai:local#m", "hf:/etc", "hf:file:///x",
            "open_clip:ViT-B-32@/etc/passwd", "@/etc/passwd", "nl\n", "a" * 5000, "/" + "b" * 300,
            "{{}}", "%s%n", "\u202e", "NaN", "-1", "1e309",
        ]),
        st.text(max_size=40),
    )


def json_values(strings: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True), strings,
    )
    return st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(strings, inner, max_size=4)), max_leaves=12)


def deep(n: int) -> Any:
    v: Any = []
    for _ in range(n):
        v = [v]
    return v


def by_key(world: list[str]) -> dict[str, list[str]]:
    """Meaningful values for the field names the tools share (a convention, not a per-tool list)."""
    files = [w for w in world if w.startswith("/")]
    media = [w for w in files if w.endswith((".png", ".mp4", "/img", "*.png"))]
    return {
        "collection": ["fz_bm25", "fz_text", "fz_img", "fz_vid"],
        "name": ["fz_new", "fz_bm25"],
        "model": ["demo", "minilm", "none"],
        "clip": ["demo"], "llm": ["smollm2"], "text_model": ["minilm"],
        "reranker": ["rerank.first", "rerank.pointwise", "rerank.listwise"],
        "path": files, "paths": media, "images": media, "image": media, "video": media, "videos": media,
        "out_dir": [w for w in files if w.endswith("/out")], "qrels_path": files, "queries_path": files,
        "claim": ["jet engines burn fuel", "the cat is not on the mat"], "query": ["jet engines", "red circle"],
        "question": ["is the circle red?", "what colour is the square?", "how do jet engines work?"],
        "prompt": ["a red circle moves left", "a dog runs"], "text": ["Jet engines compress air and burn fuel."],
    }


def sprinkle(value: Any, data: st.DataObject, strings: st.SearchStrategy[str],
             keyed: dict[str, list[str]] | None = None, key: str = "") -> Any:
    """Replace string leaves of a valid-shaped input with meaningful values (chosen by the field
    name where it is a shared one), hostile strings, or keep them."""
    if isinstance(value, str):
        choice = data.draw(st.integers(0, 9))
        if keyed and key in keyed and keyed[key] and choice < 6:
            return data.draw(st.sampled_from(keyed[key]))
        return data.draw(strings) if choice >= 8 else value
    if isinstance(value, list):
        return [sprinkle(v, data, strings, keyed, key) for v in value]
    if isinstance(value, dict):
        return {k: sprinkle(v, data, strings, keyed, k if isinstance(k, str) else "") for k, v in value.items()}
    return value


def input_strategy(name: str, world: list[str]) -> st.SearchStrategy[Any]:
    """Valid-shaped (from the schema, sprinkled), mutated (one field replaced) or malformed inputs."""
    from hypothesis_jsonschema import from_schema

    schema = get_registry().get(name).input_model.model_json_schema()
    strings = hostile_strings(world)
    keyed = by_key(world)
    props = sorted((schema.get("properties") or {}).keys())

    @st.composite
    def gen(draw: Any) -> Any:
        data = draw(st.data())
        mode = draw(st.sampled_from(["valid", "valid", "mutated", "malformed"]))
        if mode != "malformed":
            try:
                base = draw(from_schema(schema))
            except Exception:  # noqa: BLE001 - a schema hypothesis-jsonschema cannot handle: fall back
                base = {}
            base = sprinkle(base, data, strings, keyed)
            if mode == "mutated" and props and isinstance(base, dict):
                key = draw(st.sampled_from(props))
                base[key] = draw(st.one_of(json_values(strings), st.just(deep(900)), st.just(math.nan),
                                           st.just(10**30), st.just(-1), st.just(1e-38)))
            return base
        return draw(st.one_of(json_values(strings), st.dictionaries(strings, json_values(strings), max_size=5),
                              st.just(deep(900)), st.just({"x": deep(900)})))

    return gen()


# -- running ------------------------------------------------------------------------------------
class Tally:
    """Outcomes per tool: ok, each ToolError code, and the raw exceptions (the failures)."""

    def __init__(self) -> None:
        self.outcomes: dict[str, Counter] = defaultdict(Counter)
        self.raw: dict[str, list[str]] = defaultdict(list)

    def run(self, name: str, inp: Any, settings: Settings, *, timeout: float, reraise: bool = True) -> None:
        ctx = FuzzContext(settings=settings)
        try:
            out = get_registry().call(name, inp, ctx=ctx, timeout=timeout)
            try:  # a result must be plain JSON: no NaN or infinity (JSON has none; MCP would send null)
                json.dumps(out.model_dump(mode="python"), allow_nan=False, default=str)
            except ValueError:
                self.outcomes[name]["RAW"] += 1
                self.raw[name].append(f"NaN/inf in the output <- {json.dumps(inp, default=str)[:300]}")
                if reraise:
                    raise AssertionError(self.raw[name][-1]) from None
                return
            self.outcomes[name]["ok"] += 1
        except ToolError as err:
            self.outcomes[name][err.code] += 1
        except Exception as err:  # noqa: BLE001 - this is what the fuzz looks for
            self.outcomes[name]["RAW"] += 1
            self.raw[name].append(f"{type(err).__name__}: {str(err)[:300]} <- {json.dumps(inp, default=str)[:300]}")
            if reraise:
                raise

    def tried(self, name: str) -> int:
        return sum(self.outcomes[name].values())
