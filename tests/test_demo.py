"""`vltools demo` end to end on the tiny setting: the summary on stdout and an HTML report with pictures."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.heavy
def test_demo_prints_a_summary_and_writes_a_report_with_pictures(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "vltools.cli", "demo", "--out", str(out), "--size", "tiny"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = proc.stdout
    for title in ("World", "Collections", "Text → image search", "Image → image search", "Text → video search",
                  "Classification", "Visual question answering", "Reranking", "Fact check"):
        assert f"\n{title}  [" in summary, title
    assert re.search(r"demo_texts: 42 text items", summary)
    assert re.search(r"'A wing deflects the oncoming air downward\.': (SUPPORTS|REFUTES|NOT ENOUGH INFO)", summary)
    assert f"report: {out / 'report.html'}" in summary
    assert "[1/10] generating a synthetic world" in proc.stderr  # progress goes to stderr, not stdout
    page = (out / "report.html").read_text(encoding="utf-8")
    srcs = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(srcs) >= 20
    assert all((out / s).is_file() and (out / s).stat().st_size > 100 for s in srcs)
    assert "sheets/text_to_image.png" in srcs
    # Each picture shows its own file: the one-object images classified are not the world's scenes.
    sections = {re.search(r"<h2>\d+\. ([^<]+?) <small>", s)[1]: s for s in page.split("<section>")[1:-1]}
    world_pics = set(re.findall(r'<img [^>]*src="([^"]+)"', sections["World"]))
    classified = set(re.findall(r'<img [^>]*src="([^"]+)"', sections["Classification"]))
    assert len(classified) == 4 and not world_pics & classified
    assert re.search(r'<a href="world/videos/vid_\d+\.mp4#t=\d+\.\d\d">', page)  # video hits jump to their time
    # A rerun into the same folder starts from fresh collections (no duplicate-content refusal).
    again = subprocess.run([sys.executable, "-m", "vltools.cli", "demo", "--out", str(out), "--size", "tiny"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "demo_images: 8 image items" in again.stdout
