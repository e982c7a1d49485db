"""The CLIP backend: spec resolution (local-dir, ARCH@CHECKPOINT, fail-fast pretrained), batch
encoding, and long-text handling (P08: stretch, chunk, truncate, error) on tiny random models."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vltools.core.errors import BackendUnavailable, InvalidInput, NotFound
from vltools.core.settings import Settings

from .tiny_clip import make_tiny_clip, register_tiny_arch


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture(scope="module")
def settings():
    return Settings(device="cpu")


@pytest.fixture(scope="module")
def tiny(tiny_dir, settings):
    from vltools.models.clip import get_clip

    return get_clip(f"open_clip:local-dir:{tiny_dir}", settings)


def _images(n):
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (40 + i, 48, 3), dtype=np.uint8)) for i in range(n)]


def test_local_dir_loads_and_is_cached(tiny, tiny_dir, settings):
    from vltools.models.clip import get_clip

    assert tiny.dim == 32 and tiny.context_length == 32 and tiny.image_size == 32
    assert get_clip(f"open_clip:local-dir:{tiny_dir}", settings) is tiny
    assert tiny.logit_scale == pytest.approx(1 / 0.07, rel=1e-4)


def test_batched_image_encoding_matches_one_by_one(tiny):
    ims = _images(5)
    batched = tiny.encode_images(ims, batch_size=2)
    single = np.concatenate([tiny.encode_images([im]) for im in ims])
    assert batched.shape == (5, 32) and batched.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert not np.allclose(batched[0], batched[1])


def test_text_encoding_and_progress(tiny):
    seen = []
    emb, flags = tiny.encode_texts(["a red circle", "a blue square", "a red circle"], batch_size=2,
                                   progress=lambda d, t, n: seen.append((d, t)))
    assert emb.shape == (3, 32) and flags == [False, False, False]
    np.testing.assert_allclose(emb[0], emb[2], atol=1e-6)
    assert not np.allclose(emb[0], emb[1])
    assert seen[-1] == (3, 3)


def test_checkpoint_spec_loads_the_same_weights(tiny, tiny_dir, settings, tmp_path):
    from vltools.models.clip import get_clip

    arch = register_tiny_arch(tmp_path / "configs")
    other = get_clip(f"open_clip:{arch}@{tiny_dir / 'open_clip_pytorch_model.bin'}", settings)
    assert other is not tiny
    ims = _images(2)
    np.testing.assert_allclose(other.encode_images(ims), tiny.encode_images(ims), atol=1e-5)
    np.testing.assert_allclose(other.encode_texts(["a star"])[0], tiny.encode_texts(["a star"])[0], atol=1e-5)


def test_missing_checkpoint_and_folders(settings, tmp_path):
    from vltools.models.clip import get_clip

    with pytest.raises(NotFound, match="does not exist"):
        get_clip(f"open_clip:ViT-B-32@{tmp_path / 'nope.pt'}", settings)
    with pytest.raises(NotFound, match="open_clip_config.json"):
        get_clip(f"open_clip:local-dir:{tmp_path}", settings)
    (tmp_path / "open_clip_config.json").write_text("{}")
    with pytest.raises(NotFound, match="no weight file"):  # open_clip alone would return random weights
        get_clip(f"open_clip:local-dir:{tmp_path}", settings)


def test_uncached_pretrained_fails_fast_with_instructions(settings, tmp_path, monkeypatch):
    from vltools.models.clip import get_clip

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HOME", str(tmp_path))  # the ~/.cache/clip download location
    with pytest.raises(BackendUnavailable) as exc:
        get_clip("open_clip:ViT-B-32/openai", settings)
    err = exc.value
    assert "not cached" in err.message and "never downloads" in err.message
    assert "create_model_and_transforms('ViT-B-32', pretrained='openai')" in err.hint
    assert "local-dir" in err.hint


def test_uncached_pretrained_fails_without_touching_the_network_or_the_environment(tmp_path):
    """No HF_HUB_OFFLINE anywhere: the cache check alone stops the load before any connection is tried."""
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json, os, socket, sys\n"
        "tried = []\n"
        "def refuse(*a, **k):\n    tried.append(repr(a[:2]))\n    raise OSError('network disabled by the test')\n"
        "socket.socket.connect = refuse\nsocket.create_connection = refuse\n"
        "from vltools.core.settings import Settings\nfrom vltools.models.clip import get_clip\n"
        "for spec in ('open_clip:MobileCLIP-S2/datacompdr', 'open_clip:hf-hub:timm/nope-clip'):\n"
        "    try:\n        get_clip(spec, Settings(device='cpu'))\n"
        "    except Exception as e:\n"
        "        heavy = [m for m in ('torch', 'open_clip') if m in sys.modules]\n"
        "        print(json.dumps([type(e).__name__, e.hint, heavy]))\n"
        "print(json.dumps([tried, [k for k in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE') if k in os.environ]]))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_HUB_CACHE=str(tmp_path / "hub"), HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    lines = [json.loads(x) for x in out.stdout.strip().splitlines()]
    assert len(lines) == 3, out.stderr[-2000:]
    (name, hint, heavy), (hub_name, hub_hint, _), (tried, offline_vars) = lines
    assert name == "BackendUnavailable" and "'MobileCLIP-S2', pretrained='datacompdr'" in hint
    assert heavy == []  # with nothing cached, the check needs neither open_clip nor torch
    assert hub_name == "BackendUnavailable" and "hf-hub:timm/nope-clip" in hub_hint
    assert tried == [] and offline_vars == []  # vltools sets no process-wide offline switch


def test_the_no_import_precheck_only_fires_when_no_weights_are_cached(tmp_path, monkeypatch):
    from vltools.models.clip import _load

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert "ViT-B-32" in _load._builtin_arch_names() and "MobileCLIP-S2" in _load._builtin_arch_names()
    assert not _load._weights_cached_anywhere()
    snap = tmp_path / "hub" / "models--someone--other-clip" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    assert not _load._weights_cached_anywhere()
    (snap / "open_clip_model.safetensors").write_bytes(b"x")
    assert _load._weights_cached_anywhere()  # then open_clip's own table decides (exact tag checks)


def test_spec_parsing():
    from vltools.models.clip import parse_spec

    assert parse_spec("demo").kind == "demo"
    p = parse_spec(" open_clip:ViT-B-32/openai ")
    assert (p.kind, p.arch, p.target, p.spec) == ("pretrained", "ViT-B-32", "openai", "open_clip:ViT-B-32/openai")
    assert parse_spec("open_clip:ViT-B-32/random").kind == "random"
    p = parse_spec("open_clip:ViT-B-32@/w/x.pt")
    assert (p.kind, p.arch, p.target) == ("checkpoint", "ViT-B-32", "/w/x.pt")
    assert parse_spec("open_clip:local-dir:/m/a@b").target == "/m/a@b"
    assert parse_spec("open_clip:hf-hub:timm/x").target == "timm/x"


def test_model_cache_is_bounded_lru(tiny_dir, settings, tmp_path, monkeypatch):
    import shutil

    from vltools.models.clip import get_clip, loaded_specs

    settings = settings.model_copy(update={"max_loaded_models": 2})
    specs = []
    for i in range(3):
        folder = tmp_path / f"m{i}"
        shutil.copytree(tiny_dir, folder)
        specs.append(f"open_clip:local-dir:{folder}")
    first = get_clip(specs[0], settings)
    get_clip(specs[1], settings)
    assert get_clip(specs[0], settings) is first  # a hit makes it the most recent
    get_clip(specs[2], settings)  # evicts specs[1], the least recently used
    loaded = [s for s, _ in loaded_specs()]
    assert specs[1] not in loaded and loaded[-2:] == [specs[0], specs[2]] and len(loaded) <= 2
    assert get_clip(specs[0], settings) is first


def test_should_stop_is_checked_between_batches(tiny):
    from vltools.core.errors import Timeout

    asked = []

    def stop_after_two():
        asked.append(1)
        return len(asked) > 2

    with pytest.raises(Timeout, match="stopped after 4 of 7"):
        tiny.encode_images(_images(7), batch_size=2, should_stop=stop_after_two)
    asked.clear()
    with pytest.raises(Timeout, match="stopped after 2 of 5"):
        tiny.encode_texts(["a", "b", "c", "d", "e"], batch_size=1, should_stop=stop_after_two)
    emb = tiny.encode_images(_images(3), batch_size=2, should_stop=lambda: False)
    assert emb.shape == (3, 32)


def test_bad_specs_list_valid_choices(settings):
    import open_clip  # noqa: F401 - once open_clip is imported, unknown tags are named exactly

    from vltools.models.clip import get_clip

    with pytest.raises(InvalidInput) as exc:
        get_clip("open_clip:ViT-B-33/openai", settings)
    assert "ViT-B-32" in exc.value.hint
    with pytest.raises(InvalidInput) as exc:
        get_clip("open_clip:ViT-B-32/no-such-tag", settings)
    assert "openai" in exc.value.hint
    with pytest.raises(InvalidInput, match="names no pretrained"):
        get_clip("open_clip:ViT-B-32", settings)
    with pytest.raises(InvalidInput, match="unknown CLIP spec"):
        get_clip("ViT-B-32/openai", settings)


# -- long texts (P08) ---------------------------------------------------------------------------
def _words(n):
    return " ".join(f"red{i % 7} circle" for i in range(n))


def test_stretch_positions_keeps_the_first_20():
    import torch

    from vltools.models.clip import stretch_positions

    pos = torch.randn(77, 8)
    out = stretch_positions(pos)
    assert out.shape == (20 + 57 * 4, 8)
    assert torch.equal(out[:20], pos[:20])
    torch.testing.assert_close(out[20], pos[20])
    torch.testing.assert_close(out[-1], pos[-1])


def test_stretched_tower_preserves_short_texts(tiny):
    import torch

    dup, length = tiny.stretched_encoder()
    assert length == 20 + (32 - 20) * 4
    with torch.inference_mode():
        a = tiny.model.encode_text(tiny.tokenizer(["a small red circle"]))
        b = dup.encode_text(tiny.tokenizer(["a small red circle"], context_length=length))
    torch.testing.assert_close(a, b)  # positions 0..19 and the causal mask untouched
    assert tiny.model.positional_embedding.shape[0] == 32  # the original model is unchanged


def test_long_texts_are_stretched_chunked_never_silently_cut(tiny):
    short, mid, huge = "a red circle", _words(15), _words(60)
    assert 32 < tiny.count_tokens(mid) <= 68 < tiny.count_tokens(huge)
    emb, notes = tiny.encode_texts_detailed([short, mid, huge])
    assert notes == [None, "stretched", "chunked"]
    assert tiny.encode_texts([short, mid, huge])[1] == [False, True, True]
    truncated, tnotes = tiny.encode_texts_detailed([mid], long_text="truncate")
    assert tnotes == ["truncated"]
    assert not np.allclose(truncated[0], emb[1], atol=1e-4)  # the stretch saw the words past the context
    chunked, cnotes = tiny.encode_texts_detailed([mid], long_text="chunk")
    assert cnotes == ["chunked"]
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_chunk_and_pool_is_the_weighted_mean_of_chunks(tiny):
    words = _words(30).split()
    text = " ".join(words)
    got, _ = tiny.encode_texts_detailed([text], long_text="chunk")
    # rebuild the chunks independently: greedy word packing within context - 2 special tokens
    budget, chunks, weights, cur, n = tiny.context_length - 2, [], [], [], 0
    for w in words:
        wn = len(tiny.tokenizer.encode(w))
        if cur and n + wn > budget:
            chunks.append(" ".join(cur))
            weights.append(n)
            cur, n = [], 0
        cur.append(w)
        n += wn
    chunks.append(" ".join(cur))
    weights.append(n)
    assert len(chunks) >= 2
    parts, flags = tiny.encode_texts(chunks)
    assert not any(flags)
    pooled = (parts * np.array(weights)[:, None]).sum(0)
    np.testing.assert_allclose(got[0], pooled / np.linalg.norm(pooled), atol=1e-5)


def test_long_text_error_mode_and_notices(tiny):
    with pytest.raises(InvalidInput, match="exceed the 32-token context"):
        tiny.encode_texts(["ok", _words(20)], long_text="error")
    with pytest.raises(InvalidInput):
        tiny.encode_texts(["ok"], long_text="nonsense")
    notes = tiny.fit_notices(["ok", _words(20)], [None, "stretched"], "query")
    assert len(notes) == 1 and "stretched" in notes[0] and "context 32" in notes[0]


def test_image_regions(tiny):
    feats = tiny.encode_image_regions(_images(1)[0], 2)
    assert feats.shape == (5, 32)


@pytest.mark.heavy
def test_hf_text_tower_uses_its_extra_positions_then_chunks():
    """The demo's locked MiniLM tower has 512 learned positions for a 64-token context: long texts
    use them ("extended", exactly the full-length embedding); longer still are chunked."""
    import open_clip
    import torch

    from vltools.models import clip_demo
    from vltools.models.clip import ClipBackend

    model = clip_demo.build_demo_model().eval()  # real text tower; the image tower does not matter here
    tok = open_clip.get_tokenizer(clip_demo.register_config())
    b = ClipBackend("demo-text-only", model, open_clip.image_transform(64, is_train=False), tok, "cpu")
    assert b.context_length == 64 and b._extended_limit() == 512
    mid = " ".join(["a small red circle on the left next to a blue square"] * 8)
    huge = " ".join(["word"] * 700)
    emb, notes = b.encode_texts_detailed(["a red circle", mid, huge])
    assert notes == [None, "extended", "chunked"]
    with torch.inference_mode():
        full = torch.nn.functional.normalize(model.encode_text(tok([mid], context_length=256)), dim=-1).numpy()
        cut = torch.nn.functional.normalize(model.encode_text(tok([mid])), dim=-1).numpy()
    np.testing.assert_allclose(emb[1], full[0], atol=1e-5)
    assert not np.allclose(emb[1], cut[0], atol=1e-3)
    with pytest.raises(InvalidInput, match="no learned positions to stretch"):
        b.stretched_encoder()


@pytest.mark.heavy
def test_hf_text_tower_and_tokenizer_load_from_the_hub_cache_with_no_network(tmp_path):
    """An architecture whose text tower and tokenizer are HF hub ids loads from the local HF cache with
    sockets disabled and without HF_HUB_OFFLINE: snapshot folders and ``local_files_only`` only."""
    import json
    import os
    import subprocess
    import sys

    import open_clip
    import torch

    from vltools.models.clip_demo import minilm_dir

    repo, rev = "vltools-test/minilm", "0" * 40
    snap = tmp_path / "hub" / "models--vltools-test--minilm" / "snapshots" / rev
    snap.mkdir(parents=True)
    for f in minilm_dir().iterdir():
        if f.is_file():
            (snap / f.name).symlink_to(f)
    (snap.parents[1] / "refs").mkdir()
    (snap.parents[1] / "refs" / "main").write_text(rev)
    text_cfg = {"hf_model_name": repo, "hf_tokenizer_name": repo, "hf_proj_type": "linear",
                "hf_pooler_type": "mean_pooler", "context_length": 32}
    vision = {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16}
    cfg = {"embed_dim": 32, "vision_cfg": vision,
           "text_cfg": text_cfg}
    arch_dir = tmp_path / "configs"
    arch_dir.mkdir()
    (arch_dir / "vltools-hf-tower-test.json").write_text(json.dumps(cfg))
    torch.manual_seed(0)
    local = open_clip.CustomTextCLIP(**{**cfg, "text_cfg": {**text_cfg, "hf_model_name": str(snap)}}).eval()
    torch.save(local.state_dict(), tmp_path / "ckpt.pt")
    with torch.inference_mode():
        tok = open_clip.tokenizer.HFTokenizer(str(snap), context_length=32)
        ref = torch.nn.functional.normalize(local.encode_text(tok(["a red circle"])), dim=-1)[0].tolist()

    code = (
        "import json, os, socket, sys\n"
        "tried = []\n"
        "def refuse(*a, **k):\n    tried.append(repr(a[:2]))\n    raise OSError('network disabled by the test')\n"
        "socket.socket.connect = refuse\nsocket.create_connection = refuse\n"
        "import open_clip\n"
        f"open_clip.add_model_config({str(arch_dir)!r})\n"
        "from vltools.core.settings import Settings\nfrom vltools.models.clip import get_clip\n"
        f"b = get_clip('open_clip:vltools-hf-tower-test@{tmp_path / 'ckpt.pt'}', Settings(device='cpu'))\n"
        "e, _ = b.encode_texts(['a red circle'])\n"
        "print(json.dumps([e[0].tolist(), tried, type(b.tokenizer).__name__, 'HF_HUB_OFFLINE' in os.environ]))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_HUB_CACHE=str(tmp_path / "hub"), HF_HOME=str(tmp_path / "hf_home"), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    emb, tried, tok_name, offline = json.loads(out.stdout.strip().splitlines()[-1])
    assert tried == [] and tok_name == "HFTokenizer" and offline is False
    np.testing.assert_allclose(emb, ref, atol=1e-5)
