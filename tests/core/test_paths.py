"""Allowed roots, globs and model-spec paths (issue 21): the roots are checked before anything is
listed, outside and no-match answer alike, walks are bounded, default roots are VLTOOLS_HOME only."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import vltools
from vltools.core.errors import InvalidInput, NotFound, TooLarge, ToolError
from vltools.core.paths import check_model_spec, check_path, expand_glob, walk_files
from vltools.core.settings import Settings


@pytest.fixture
def layout(tmp_path):
    """root/ (allowed) with a few files; outside/ (not allowed) with hidden files."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    for name in ("a.png", "b.png", "sub/c.png", "notes.txt"):
        (root / name).write_bytes(b"x")
    for name in (".bashrc", ".cache", ".env"):
        (outside / name).write_text("secret")
    (root / "link.png").symlink_to(outside / ".bashrc")
    return root, outside, Settings(allowed_roots=[root], home=tmp_path / "home")


def test_default_roots_are_only_vltools_home(tmp_path, monkeypatch):
    monkeypatch.delenv("VLTOOLS_EXTRA_ROOTS", raising=False)
    monkeypatch.delenv("VLTOOLS_ALLOWED_ROOTS", raising=False)
    s = Settings(home=tmp_path / "home", _env_file=None)
    assert s.roots() == [(tmp_path / "home").resolve()]
    assert Path.cwd().resolve() not in s.roots() and Path.home().resolve() not in s.roots()
    extra = Settings(home=tmp_path / "home", extra_roots=[tmp_path / "data"], _env_file=None)
    assert extra.roots() == [(tmp_path / "home").resolve(), (tmp_path / "data").resolve()]


def test_server_started_from_root_does_not_serve_var_tmp(tmp_path, monkeypatch):
    """The repro: a server whose working directory is / read /var/tmp/secret.jsonl."""
    monkeypatch.delenv("VLTOOLS_EXTRA_ROOTS", raising=False)
    monkeypatch.delenv("VLTOOLS_ALLOWED_ROOTS", raising=False)
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"id": "a", "text": "secret"}\n')
    monkeypatch.chdir("/")
    s = Settings(home=tmp_path / "home", _env_file=None)
    with pytest.raises(InvalidInput, match="outside the allowed roots"):
        check_path(str(secret), s)


def test_cli_call_adds_the_working_directory(tmp_path, monkeypatch, run_cli):
    monkeypatch.setenv("VLTOOLS_ALLOWED_ROOTS", json.dumps([str(tmp_path / "elsewhere")]))
    from vltools.core.settings import reset_settings

    reset_settings()
    try:
        monkeypatch.chdir(tmp_path)
        code, out, err = run_cli("call", "world.generate", "--json", '{"out_dir": "ds", "images": 1}')
        assert code == 0, err
        assert json.loads(out)["out_dir"] == str(tmp_path / "ds")
        with pytest.raises(InvalidInput, match="outside the allowed roots"):  # the API does not add cwd
            vltools.call("world.generate", {"out_dir": "ds2", "images": 1})
    finally:
        reset_settings()


def test_glob_outside_the_roots_names_nothing_and_matches_no_match(layout):
    root, outside, s = layout
    with pytest.raises(NotFound) as hidden:
        expand_glob(str(outside / ".[a-f]*"), s)
    with pytest.raises(NotFound) as empty:
        expand_glob(str(outside / ".zzz*"), s)
    assert ".bashrc" not in hidden.value.render() and ".cache" not in hidden.value.render()
    assert hidden.value.message.replace(".[a-f]*", "") == empty.value.message.replace(".zzz*", "")
    # inside the roots, a pattern with no match gets the same shape of answer
    with pytest.raises(NotFound) as inside:
        expand_glob(str(root / "*.jpg"), s)
    assert "no files under the allowed roots match" in inside.value.message
    # a link inside the roots that points outside is dropped, not named
    assert expand_glob(str(root / "*.png"), s) == [root / "a.png", root / "b.png"]
    assert expand_glob(str(root / "**" / "*.png"), s) == [root / "a.png", root / "b.png", root / "sub" / "c.png"]


@pytest.mark.parametrize("pattern", ["/root/.[a-f]*", "/usr/**/*.png", "/proc/1/*", "/etc/*"])
def test_issue_glob_repros_are_refused_before_listing(pattern, layout, monkeypatch):
    _, _, s = layout

    def no_listing(*a, **k):
        raise AssertionError("listed a folder outside the roots")

    monkeypatch.setattr(os, "scandir", no_listing)
    with pytest.raises(NotFound) as exc:
        expand_glob(pattern, s)
    assert "bashrc" not in exc.value.render()


def test_issue_repros_through_image_index(layout):
    _, _, s = layout
    for pattern in ("/root/.[a-f]*", "/proc/1/*"):
        with pytest.raises(ToolError) as exc:
            vltools.call("image.index", {"collection": "globs", "paths": [pattern], "create": True})
        assert exc.value.code == "not_found" and ".bashrc" not in exc.value.render()


def test_proc_glob_inside_allowed_roots_is_a_tool_error(tmp_path):
    """/proc/1/* with /proc allowed: unreadable entries become ToolErrors, never PermissionError."""
    s = Settings(allowed_roots=[Path("/proc")], home=tmp_path)
    from vltools.models.media import expand_paths

    try:
        expand_paths(["/proc/1/*"], s)
    except ToolError:
        pass


def test_walks_are_bounded(tmp_path):
    big = tmp_path / "big"
    big.mkdir()
    for i in range(60):
        (big / f"f{i}.png").write_bytes(b"x")
    s = Settings(allowed_roots=[tmp_path], home=tmp_path / "home", max_glob_files=50)
    with pytest.raises(TooLarge, match="more than 50"):
        expand_glob(str(big / "*.png"), s)
    with pytest.raises(TooLarge, match="more than 50"):
        list(walk_files(big, s))
    assert len(expand_glob(str(big / "f1*.png"), Settings(allowed_roots=[tmp_path], home=tmp_path))) == 11


def test_dotdot_after_a_wildcard_is_refused(layout):
    root, _, s = layout
    with pytest.raises(InvalidInput, match="'..' after a wildcard"):
        expand_glob(str(root / "*" / ".." / ".." / "outside" / "*"), s)
    with pytest.raises(NotFound):  # '..' before the wildcard resolves first, then the roots check
        expand_glob(str(root / ".." / "outside" / ".*"), s)


@pytest.mark.parametrize(
    ("spec_kind", "spec"),
    [
        ("llm", "hf:/etc/passwd"),
        ("llm", "hf:file:///etc/passwd"),
        ("llm", "hf:../../etc"),
        ("llm", "hf:~/.ssh"),
        ("clip", "open_clip:ViT-B-32@/etc/passwd"),
        ("clip", "open_clip:local-dir:/etc"),
        ("clip", "open_clip:hf-hub:../../x"),
        ("text", "/etc"),
        ("text", "file:///etc/passwd"),
        ("text", "http://127.0.0.1:9/model"),
    ],
)
def test_model_specs_naming_paths_go_through_the_roots(spec_kind, spec, tmp_path):
    s = Settings(allowed_roots=[tmp_path], home=tmp_path / "home")
    with pytest.raises(InvalidInput) as exc:
        check_model_spec(spec_kind, spec, s)
    assert "exist" not in exc.value.message  # nothing said about existence outside the roots


def test_existing_and_missing_model_paths_outside_answer_alike(tmp_path):
    s = Settings(allowed_roots=[tmp_path / "root"], home=tmp_path / "home")
    (tmp_path / "real").mkdir()
    with pytest.raises(InvalidInput) as a:
        check_model_spec("llm", f"hf:{tmp_path / 'real'}", s)
    with pytest.raises(InvalidInput) as b:
        check_model_spec("llm", f"hf:{tmp_path / 'missing'}", s)
    assert a.value.message.replace("/real", "/X") == b.value.message.replace("/missing", "/X")


def test_hub_names_pass_the_spec_check(tmp_path):
    s = Settings(allowed_roots=[tmp_path], home=tmp_path / "home")
    for kind, spec in (("llm", "hf:HuggingFaceTB/SmolLM2-135M"), ("text", "minilm"), ("clip", "demo"),
                       ("clip", "open_clip:ViT-B-32/openai"), ("llm", "smollm2")):
        check_model_spec(kind, spec, s)


def test_hf_llm_outside_roots_and_pickled_weights_are_tool_errors(tmp_path):
    """hf: checks the roots before existence; a folder holding only pickled weights is refused (no unpickling)."""
    torch = pytest.importorskip("torch")
    from vltools.models.llm import get_llm

    s = Settings(allowed_roots=[tmp_path], home=tmp_path / "home", device="cpu")
    with pytest.raises(InvalidInput, match="outside"):
        get_llm("hf:/etc", s)
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "gpt2", "n_layer": 1, "n_head": 1, "n_embd": 8, '
                                        '"vocab_size": 16, "n_positions": 8}')
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"x": Evil()}, folder / "pytorch_model.bin")
    with pytest.raises(ToolError) as exc:
        get_llm(f"hf:{folder}", s)
    assert not marker.exists()
    assert "safetensors" in exc.value.render()
