"""Zero-shot classification and text→image retrieval with the demo CLIP, through the real tools.

Classification runs ``vltools call image.classify`` (the CLI, in a subprocess) on
1. held-out world scenes of one object (seeds never used in training), classes colour x shape (88);
2. the easy-VQA **test** split, classes colour x shape as derived from its Q/A pairs (8 x 3 = 24),
each with three prompt set-ups: the world's prompt "a {}", the tool's default templates, and the
default templates plus GRAIN-style shape descriptions (P20).

Retrieval indexes held-out world scenes with ``image.index`` and queries them with ``image.search``
(in-process): Recall@1/@5 for captions in training phrasings and in held-out phrasings, and
top-1 precision for queries with synonyms never used in training ("crimson", "ring", "box", ...)
against chance.

    .venv/bin/python benchmarks/bench_image_classify.py [--model demo-shapes] [--world 880] [--retrieval 500]

Writes benchmarks/results/bench_image_classify.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
EVAL_SEED_BASE = 9_000_000  # vltools.world.splits.EVAL_SEED_BASE; training uses TRAIN_SEED_BASE (1_000_000) + k
RETRIEVAL_SEED_BASE = 9_100_000  # the same held-out scenes as scripts/eval_demo_clip.py
SHAPE_DESCRIPTIONS = {
    "circle": ["a round shape with no corners"],
    "square": ["a shape with four equal sides and four right angles"],
    "rectangle": ["a box shape with four sides, longer than it is tall"],
    "triangle": ["a shape with three sides and three corners"],
    "star": ["a shape with five points"],
    "cross": ["a plus-shaped figure with four arms"],
    "hexagon": ["a shape with six sides"],
    "heart": ["a shape of a heart, as in love"],
}


def cli_classify(images: list[str], labels: list[str], model: str, env: dict, **extra) -> tuple[list[dict], float]:
    req = {"images": images, "labels": labels, "clip": model, **extra}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(req, f)
    t = time.perf_counter()
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "vltools"), "call", "image.classify", "--input", f.name],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )
    took = time.perf_counter() - t
    os.unlink(f.name)
    if proc.returncode != 0:
        raise SystemExit(f"vltools call image.classify failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)["results"], took


def score(results: list[dict], truth: list[tuple[str, str]]) -> dict:
    n = len(truth)
    exact = sum(r["label"] == f"{c} {s}" for r, (c, s) in zip(results, truth, strict=True))
    colour = sum(r["label"].split(" ", 1)[0] == c for r, (c, _) in zip(results, truth, strict=True))
    shape = sum(r["label"].split(" ", 1)[1] == s for r, (_, s) in zip(results, truth, strict=True))
    # expected calibration error of the top probability (10 equal-width bins)
    conf = [max(r["scores"].values()) for r in results]
    ok = [r["label"] == f"{c} {s}" for r, (c, s) in zip(results, truth, strict=True)]
    ece = 0.0
    for lo in range(10):
        idx = [i for i, p in enumerate(conf) if lo / 10 < p <= (lo + 1) / 10 or (lo == 0 and p == 0)]
        if idx:
            ece += len(idx) / n * abs(sum(ok[i] for i in idx) / len(idx) - sum(conf[i] for i in idx) / len(idx))
    return {"n": n, "top1": exact / n, "colour_acc": colour / n, "shape_acc": shape / n,
            "mean_top_prob": sum(conf) / n, "ece": ece}


def classify_setups(images, truth, labels, model, env, shapes_present) -> dict:
    desc = {f"{c} {s}": SHAPE_DESCRIPTIONS[s] for c, s in (lab.split(" ", 1) for lab in labels) if s in shapes_present}
    setups = {
        "prompt 'a {}'": {"templates": ["a {}"]},
        "default templates": {},
        "default templates + shape descriptions (P20)": {"descriptions": desc},
    }
    out = {}
    for name, extra in setups.items():
        res, took = cli_classify(images, labels, model, env, **extra)
        out[name] = {**score(res, truth), "seconds": took}
        sys.stderr.write(f"  {name}: {out[name]}\n")
    return out


def world_single(n: int, folder: Path) -> tuple[list[str], list[tuple[str, str]]]:
    from vltools.world.scene import generate_scene

    paths, truth = [], []
    for i in range(n):
        sc = generate_scene(EVAL_SEED_BASE + i, single=True)
        p = folder / f"world_{i:04d}.png"
        sc.image.save(p)
        ob = sc.labels["objects"][0]
        paths.append(str(p))
        truth.append((ob["colour"], ob["shape"]))
    return paths, truth


def retrieval(n: int, folder: Path, single_paths: list[str], single_truth, model: str) -> dict:
    """Recall@k of caption queries over held-out multi-object scenes; synonym precision over single objects."""
    import vltools
    from vltools.world import vocab
    from vltools.world.scene import generate_scene

    scenes = []
    for i in range(n):
        sc = generate_scene(RETRIEVAL_SEED_BASE + i)
        p = folder / f"scene_{i:04d}.png"
        sc.image.save(p)
        scenes.append((str(p), sc))
    vltools.call("image.index", {"collection": "bench_scenes", "paths": [str(folder / "scene_*.png")],
                                 "create": True, "clip": model})
    by_caption: dict[str, set[str]] = {}
    for p, sc in scenes:
        by_caption.setdefault(sc.caption, set()).add(str(Path(p).resolve()))

    def recall(queries: list[tuple[str, set[str]]]) -> dict:
        r1 = r5 = 0
        for q, rel in queries:
            hits = vltools.call("image.search", {"collection": "bench_scenes", "query": q, "k": 5}).hits
            got = [h.path for h in hits]
            r1 += got[0] in rel
            r5 += any(g in rel for g in got)
        return {"queries": len(queries), "R@1": r1 / len(queries), "R@5": r5 / len(queries)}

    train_q = [(sc.caption, by_caption[sc.caption]) for _, sc in scenes]
    held_q = [(sc.heldout_captions[0], by_caption[sc.caption]) for _, sc in scenes]
    out = {"scenes": n, "train_phrasing": recall(train_q), "heldout_phrasing": recall(held_q)}

    # synonyms over the single-object images: "a crimson circle" should find red circles
    vltools.call("image.index", {"collection": "bench_single", "paths": single_paths, "create": True, "clip": model})
    resolved = [str(Path(p).resolve()) for p in single_paths]
    truth = dict(zip(resolved, single_truth, strict=True))
    colour_syn = {w: c for w, c in vocab.HELDOUT_SYNONYMS.items() if c in vocab.COLOURS}
    shape_syn = {w: s for w, s in vocab.HELDOUT_SYNONYMS.items() if s in vocab.SHAPES}
    present = Counter(single_truth)
    rows = []
    for c, s in sorted(present):
        for w, base in colour_syn.items():
            if base == c:
                rows.append((f"a {w} {s}", f"a {c} {s}", (c, s)))
        for w, base in shape_syn.items():
            if base == s:
                rows.append((f"{vocab.article(c)} {c} {w}", f"{vocab.article(c)} {c} {s}", (c, s)))
    hit_syn = hit_base = 0
    chance = 0.0
    for syn_q, base_q, target in rows:
        for q, is_syn in ((syn_q, True), (base_q, False)):
            top = vltools.call("image.search", {"collection": "bench_single", "query": q, "k": 1}).hits[0].path
            ok = truth[top] == target
            hit_syn += ok and is_syn
            hit_base += ok and not is_syn
        chance += present[target] / len(single_truth)
    out["synonyms"] = {
        "queries": len(rows),
        "P@1_synonym": hit_syn / len(rows),
        "P@1_training_word": hit_base / len(rows),
        "chance": chance / len(rows),
        "words": sorted(set(colour_syn) | set(shape_syn)),
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="demo-shapes")  # v1: the recorded figures
    ap.add_argument("--world", type=int, default=880, help="held-out single-object world scenes")
    ap.add_argument("--evqa", type=int, default=0, help="easy-VQA test images (0 = all with colour and shape)")
    ap.add_argument("--retrieval", type=int, default=500, help="held-out world scenes to search")
    args = ap.parse_args()
    from vltools.world import vocab
    from vltools.world.splits import easy_vqa_labels

    evqa = easy_vqa_labels("test")
    if args.evqa:
        evqa = evqa[: args.evqa]
    with tempfile.TemporaryDirectory(prefix="vltools_bench_") as tmp:
        tmpd = Path(tmp)
        (tmpd / "world").mkdir()
        (tmpd / "scenes").mkdir()
        evqa_dir = str(Path(evqa[0][0]).resolve().parents[1])
        os.environ.update(
            HF_HUB_OFFLINE="1", VLTOOLS_DEVICE="cpu", VLTOOLS_HOME=str(tmpd / "home"),
            VLTOOLS_ALLOWED_ROOTS=json.dumps([str(tmpd), evqa_dir]), OMP_NUM_THREADS="2",
        )
        env = dict(os.environ)
        w_paths, w_truth = world_single(args.world, tmpd / "world")
        w_labels = [f"{c} {s}" for c in vocab.COLOUR_NAMES for s in vocab.SHAPES]
        sys.stderr.write(f"world: {len(w_paths)} held-out single-object scenes, {len(w_labels)} classes\n")
        world = classify_setups(w_paths, w_truth, w_labels, args.model, env, set(vocab.SHAPES))
        e_colours = sorted({c for _, c, _ in evqa})
        e_shapes = sorted({s for _, _, s in evqa})
        e_labels = [f"{c} {s}" for c in e_colours for s in e_shapes]
        sys.stderr.write(f"easy-VQA test: {len(evqa)} images, {len(e_labels)} classes\n")
        easy = classify_setups([p for p, _, _ in evqa], [(c, s) for _, c, s in evqa], e_labels, args.model, env,
                               set(e_shapes))
        import torch

        torch.set_num_threads(2)
        from vltools.core.settings import reset_settings

        reset_settings()
        ret = retrieval(args.retrieval, tmpd / "scenes", w_paths, w_truth, args.model)
    res = {
        "model": args.model,
        "world": {"classes": len(w_labels), "chance": 1 / len(w_labels), "seeds": f"{EVAL_SEED_BASE}+i", **world},
        "easy_vqa_test": {"classes": len(e_labels), "chance": 1 / len(e_labels), **easy},
        "retrieval": ret,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_image_classify.json").write_text(json.dumps(res, indent=2) + "\n")
    (RESULTS / "bench_image_classify.md").write_text(render(res))
    sys.stderr.write(render(res))


def render(r: dict) -> str:
    lines = [f"# Zero-shot classification and retrieval with `{r['model']}` through the tools", ""]
    for key, title in (("world", "Held-out world scenes, one object"), ("easy_vqa_test", "easy-VQA test split")):
        d = r[key]
        setups = [k for k in d if isinstance(d[k], dict)]
        n = d[setups[0]]["n"]
        lines += [
            f"## {title}: {n} images, {d['classes']} colour x shape classes (chance {d['chance']:.1%})",
            "",
            "| prompts | top-1 | colour | shape | mean top prob | ECE | seconds (CLI call) |",
            "|---|---|---|---|---|---|---|",
        ]
        for s in setups:
            x = d[s]
            lines.append(
                f"| {s} | {x['top1']:.1%} | {x['colour_acc']:.1%} | {x['shape_acc']:.1%} | "
                f"{x['mean_top_prob']:.2f} | {x['ece']:.3f} | {x['seconds']:.1f} |"
            )
        lines.append("")
    t = r["retrieval"]
    lines += [
        f"## Text→image retrieval over {t['scenes']} held-out world scenes (image.index + image.search)",
        "",
        "| queries | n | R@1 | R@5 |",
        "|---|---|---|---|",
        f"| captions, training phrasing | {t['train_phrasing']['queries']} | {t['train_phrasing']['R@1']:.1%} | "
        f"{t['train_phrasing']['R@5']:.1%} |",
        f"| captions, held-out phrasing | {t['heldout_phrasing']['queries']} | {t['heldout_phrasing']['R@1']:.1%} | "
        f"{t['heldout_phrasing']['R@5']:.1%} |",
        "",
    ]
    s = t["synonyms"]
    lines += [
        f"Synonyms never used in training ({', '.join(s['words'])}), {s['queries']} queries such as "
        "'a crimson circle' over the single-object scenes: top-1 is the right colour x shape "
        f"**{s['P@1_synonym']:.1%}** of the time (chance {s['chance']:.1%}; the training word instead: "
        f"{s['P@1_training_word']:.1%}).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
