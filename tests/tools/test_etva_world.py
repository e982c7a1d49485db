"""t2v.etva on world v2 object videos: the true prompt above a wrong object and a wrong direction, as a rate."""

from __future__ import annotations

import pytest

import vltools

OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}
WHERE = {"left": "to the left", "right": "to the right", "up": "up", "down": "down"}


@pytest.fixture(scope="module")
def move_videos(tmp_path_factory):
    """Six one-object videos with a move (seeds of the benchmark's dev range, 29,960,000+)."""
    from vltools.world import generate_object_video, write_video

    d = tmp_path_factory.mktemp("etva_world")
    out, seed = [], 29_960_000
    while len(out) < 6 and seed < 29_960_200:
        seed += 1
        v = generate_object_video(seed, n_objects=1, n_events=1, event_types=("move",))
        if v.events[0].get("direction") not in WHERE:
            continue
        path = write_video(v.frames, d / f"v{seed}.mp4", fps=v.fps)
        out.append((str(path), v.labels["objects"][0]["concept"], v.events[0]["direction"]))
    return out


@pytest.mark.heavy
def test_etva_ranks_the_true_prompt_above_wrong_object_and_direction(move_videos):
    wins_object = wins_direction = 0
    for path, concept, direction in move_videos:
        other = "tractor" if concept != "tractor" else "banana"

        def etva(text: str, video: str = path) -> float:
            return vltools.call("t2v.etva", {"video": video, "prompt": text, "clip": "demo", "frames": 6}).score or 0.0

        # "a X moves ...": the form the small spaCy model misread as a compound noun ("teapot moves")
        # before the language layer re-read verbless clauses
        true = etva(f"a {concept} moves {WHERE[direction]}")
        wins_object += true > etva(f"a {other} moves {WHERE[direction]}")
        wins_direction += true > etva(f"a {concept} moves {WHERE[OPPOSITE[direction]]}")
    n = len(move_videos)
    assert wins_object >= n - 1, (wins_object, n)
    assert wins_direction >= n // 2 + 1, (wins_direction, n)  # strictly above, on most videos
