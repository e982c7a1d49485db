"""video.describe (Tarsier P44, FAVD P51): timed events in order, named from the caller's labels; audio cues."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import vltools
from vltools.core.errors import InvalidInput


@pytest.fixture(scope="module")
def appear_clip(tmp_path_factory):
    from vltools.world import generate_object_video, write_video

    v = generate_object_video(4_500_001, n_objects=1, n_events=2, event_types=("appear", "disappear"))
    path = write_video(v.frames, tmp_path_factory.mktemp("desc") / "a.mp4", v.fps)
    return str(path), v


def test_events_in_order_with_times_and_subjects(appear_clip):
    path, v = appear_clip
    labels = sorted({o["concept"] for o in v.labels["final_objects"]}) + ["bicycle", "teapot"]
    out = vltools.call("video.describe", {"video": path, "labels": labels})
    assert out.composer == "templates" and out.events
    starts = [e.start for e in out.events]
    assert starts == sorted(starts)
    # every true event is covered by a described event of the right object
    for ev in v.events:
        match = [e for e in out.events if e.start <= ev["end"] + 0.3 and e.end >= ev["start"] - 0.3]
        assert any(e.subject == ev["concept"] for e in match), (ev, out.events)
    assert out.description.startswith("At the start") and "s " in out.description


def test_window_and_errors(appear_clip):
    path, v = appear_clip
    ev = v.events[0]
    out = vltools.call("video.describe", {"video": path, "start": max(0.0, ev["start"] - 0.3),
                                          "end": ev["end"] + 0.3})
    assert all(e.start >= ev["start"] - 0.6 for e in out.events)
    with pytest.raises(InvalidInput, match="after start"):
        vltools.call("video.describe", {"video": path, "start": 2.0, "end": 1.0})


def _video_with_beep(path, seconds=4.0, beep=(1.5, 2.0)):
    import av

    rate = 16000
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=Fraction(8))
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        aus = c.add_stream("aac", rate=rate)
        for _ in range(int(seconds * 8)):
            arr = np.full((48, 64, 3), 40, np.uint8)
            for p in vs.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                c.mux(p)
        t = np.arange(int(seconds * rate)) / rate
        wave = 0.001 * np.sin(2 * np.pi * 440 * t)
        on = (t >= beep[0]) & (t < beep[1])
        wave[on] = 0.5 * np.sin(2 * np.pi * 880 * t[on])
        pcm = wave.astype(np.float32)
        for s in range(0, len(pcm), 1024):
            chunk = pcm[s : s + 1024]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = s
            for p in aus.encode(frame):
                c.mux(p)
        for p in [*vs.encode(), *aus.encode()]:
            c.mux(p)
    return path


def test_audio_events_are_found_and_reported(tmp_path):
    path = _video_with_beep(tmp_path / "beep.mp4")
    out = vltools.call("video.describe", {"video": str(path), "audio": True})
    assert len(out.sounds) == 1
    s = out.sounds[0]
    assert s.start == pytest.approx(1.5, abs=0.2) and s.end == pytest.approx(2.0, abs=0.2)
    assert "sound" in out.description


def test_audio_on_a_silent_video_says_so(appear_clip):
    out = vltools.call("video.describe", {"video": appear_clip[0], "audio": True})
    assert out.sounds == [] and "no audio track" in out.notice


def test_objects_seen_name_the_clip_s_objects_first(appear_clip):
    path, v = appear_clip
    concept = v.labels["objects"][0]["concept"]
    labels = sorted({concept, "bicycle", "teapot", "violin", "tractor", "umbrella", "giraffe", "kettle"})
    out = vltools.call("video.describe", {"video": path, "labels": labels, "fps": 2.0, "objects": 3})
    assert [o.label for o in out.objects][:1] == [concept], out.objects
    assert len(out.objects) == 3 and out.objects[0].score >= out.objects[1].score >= out.objects[2].score
    first = out.objects[0]
    assert 0 <= first.start <= first.time <= first.end <= out.duration
    assert vltools.call("video.describe", {"video": path}).objects == []  # no labels: nothing to name
