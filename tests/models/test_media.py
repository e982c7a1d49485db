"""Media input safety: allowed roots, URLs, size limits, decompression bombs, corrupt files."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vltools.core.errors import InvalidInput, NotFound, TooLarge, Unsupported
from vltools.core.settings import Settings
from vltools.models.media import check_path, expand_paths, file_sha256, load_image


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height (a few dozen bytes; never decodable in full)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                     + chunk(b"IEND", b""))
    return path


def truncated_jpeg(path: Path) -> Path:
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


@pytest.fixture
def settings(tmp_path):
    return Settings(allowed_roots=[tmp_path / "root"], home=tmp_path / "home")


@pytest.fixture
def root(settings, tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    return r


def test_check_path_accepts_files_under_the_roots(root, settings):
    f = root / "a.txt"
    f.write_text("x")
    assert check_path(str(f), settings) == f.resolve()
    assert check_path(str(root), settings, kinds=("dir",)) == root.resolve()


@pytest.mark.parametrize(
    "url", ["http://example.com/a.png", "https://x/y.jpg", "file:///etc/passwd", "data:image/png;base64,AA"]
)
def test_urls_are_not_fetched(url, settings, root):
    with pytest.raises(InvalidInput, match="URLs are not fetched"):
        check_path(url, settings)


def test_outside_roots_missing_and_wrong_kind(root, settings, tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"x")
    with pytest.raises(InvalidInput, match="outside the allowed roots") as exc:
        check_path(str(outside), settings)
    assert "VLTOOLS_ALLOWED_ROOTS" in exc.value.hint
    with pytest.raises(InvalidInput, match="outside the allowed roots"):
        check_path(str(root / ".." / "outside.png"), settings)  # no escape by ..
    link = root / "link.png"
    link.symlink_to(outside)
    with pytest.raises(InvalidInput, match="outside the allowed roots"):  # nor by a symlink
        check_path(str(link), settings)
    with pytest.raises(NotFound, match="missing.png"):
        check_path(str(root / "missing.png"), settings)
    with pytest.raises(InvalidInput, match="is a folder"):
        check_path(str(root), settings)


def test_too_large_file(root, tmp_path):
    s = Settings(allowed_roots=[root], max_file_mb=0.001)
    f = root / "big.bin"
    f.write_bytes(b"0" * 4096)
    with pytest.raises(TooLarge, match="big.bin"):
        check_path(str(f), s)


def test_load_image_rgb_and_transparency(root, settings):
    Image.new("RGBA", (10, 8), (255, 0, 0, 0)).save(root / "clear.png")
    Image.new("L", (6, 4), 7).save(root / "grey.gif")
    im = load_image(str(root / "clear.png"), settings)
    assert im.mode == "RGB" and im.size == (10, 8) and im.getpixel((0, 0)) == (255, 255, 255)
    assert load_image(str(root / "grey.gif"), settings).mode == "RGB"


def test_decompression_bomb_is_refused_before_decoding(root, settings):
    bomb = png_header_only(root / "bomb.png", 20_000, 20_000)
    assert bomb.stat().st_size < 200
    with pytest.raises(TooLarge, match="bomb.png") as exc:
        load_image(str(bomb), settings)
    assert "400,000,000" in exc.value.message
    # below pillow's own guard but above ours
    medium = png_header_only(root / "medium.png", 8_000, 8_000)
    with pytest.raises(TooLarge, match="64,000,000 pixels"):
        load_image(str(medium), settings)


def test_corrupt_and_non_images_name_the_file(root, settings):
    with pytest.raises(InvalidInput, match=r"cannot decode .*half\.jpg.*truncated"):
        load_image(str(truncated_jpeg(root / "half.jpg")), settings)
    (root / "notes.png").write_text("this is not a picture\n")
    with pytest.raises(InvalidInput, match=r"notes\.png is not an image"):
        load_image(str(root / "notes.png"), settings)
    Image.new("RGB", (4, 4)).save(root / "odd.pcx")
    with pytest.raises(Unsupported, match=r"odd\.pcx is a PCX image"):
        load_image(str(root / "odd.pcx"), settings)


def test_expand_paths(root, settings):
    sub = root / "sub"
    sub.mkdir()
    for name in ("b.png", "a.jpg", "sub/c.png", "readme.txt"):
        (root / name).write_bytes(b"x")
    got = expand_paths([str(root)], settings)
    assert [p.name for p in got] == ["a.jpg", "b.png", "c.png"]
    got = expand_paths([str(root / "*.png"), str(root / "b.png"), str(root / "readme.txt")], settings)
    assert [p.name for p in got] == ["b.png", "readme.txt"]  # de-duplicated; a named file is kept
    with pytest.raises(NotFound, match="no files under the allowed roots match"):
        expand_paths([str(root / "*.webp")], settings)
    with pytest.raises(InvalidInput, match="URLs are not fetched"):
        expand_paths(["https://example.com/*.png"], settings)


def test_file_sha256(root):
    (root / "x").write_bytes(b"abc")
    assert file_sha256(root / "x") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
