"""benchmarks/plots.py draws one PNG per results file it finds, and skips the missing ones."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def load_plots():
    spec = importlib.util.spec_from_file_location("bench_plots", ROOT / "benchmarks" / "plots.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_plots_from_the_results_files(tmp_path, monkeypatch, capsys):
    plots = load_plots()
    for name in ("retrieval.json", "rerank.json", "rerank_top50.json", "demo_clip_eval.json"):
        shutil.copy(ROOT / "benchmarks" / "results" / name, tmp_path / name)
    monkeypatch.setattr(plots, "RESULTS", tmp_path)
    written = plots.main()
    assert sorted(p.name for p in written) == ["plot_clip_robustness.png", "plot_rerank.png", "plot_retrieval.png"]
    for p in written:
        with Image.open(p) as im:
            assert im.format == "PNG" and im.width > 400 and im.height > 300
    assert "skipping" in capsys.readouterr().err  # no ETVA results in this folder
