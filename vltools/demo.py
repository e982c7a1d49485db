"""``vltools demo``: the main job end to end, offline, on the embedded models.

It generates a small synthetic world (exact labels), indexes its images and videos and the sample
texts into collections, then searches (text→image, image→image, text→video, hybrid text),
classifies, answers questions, reranks and checks a claim — every step a registry call — and
writes an HTML report with the pictures. Because the world's labels are exact, the summary can
say whether each answer is right, not only what it was.

Everything lives under one folder (``--out``, default ``./vltools-demo``): the world, a
``home/`` used as VLTOOLS_HOME for the collections, contact sheets, thumbnails and
``report.html``. Progress goes to stderr; the CLI prints the summary to stdout.
"""

from __future__ import annotations

import hashlib
import html
import json
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vltools.core.context import Context
from vltools.core.registry import get_registry
from vltools.core.settings import Settings, get_settings

SIZES = {"tiny": {"images": 8, "videos": 2, "single": 4}, "small": {"images": 24, "videos": 4, "single": 8}}
SHAPES_THEME = "shapes"
QUESTION_IMAGE = "What colour is the shape?"
TEXT_QUERY = "why does a wing stall"
DATA_DIR = Path(__file__).resolve().parent / "data"  # the sample texts that ship with the package
CLAIM = "A wing deflects the oncoming air downward."


@dataclass
class Step:
    """One section of the report: what ran, how long it took, what it showed."""

    title: str
    tool: str
    seconds: float
    lines: list[str]  # the summary lines (plain text)
    body: str = ""  # HTML for the report


@dataclass
class DemoResult:
    out: Path
    report: Path
    steps: list[Step] = field(default_factory=list)

    def summary(self) -> str:
        out = [f"vltools demo — {len(self.steps)} steps, {sum(s.seconds for s in self.steps):.1f} s"]
        for s in self.steps:
            out.append(f"\n{s.title}  [{s.tool}, {s.seconds:.1f} s]")
            out.extend(f"  {line}" for line in s.lines)
        out.append(f"\nreport: {self.report}")
        return "\n".join(out)


class _Progress:
    """One tqdm bar per step on stderr (the tool's own ctx.progress reports)."""

    def __init__(self, label: str) -> None:
        self.label, self.bar = label, None

    def __call__(self, done: float, total: float | None, note: str) -> None:
        from tqdm import tqdm

        if self.bar is None or (total is not None and self.bar.total != total):
            if self.bar is not None:
                self.bar.close()
            self.bar = tqdm(total=total, desc=self.label, file=sys.stderr, leave=False, dynamic_ncols=True)
        self.bar.n = done
        if note:
            self.bar.set_postfix_str(note[:50], refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Demo:
    def __init__(self, out: Path, size: str, settings: Settings, log: Any) -> None:
        self.out, self.size, self.settings, self.log = out, SIZES[size], settings, log
        self.reg = get_registry()
        self.result = DemoResult(out=out, report=out / "report.html")
        self.n_steps = 10
        self.thumbs = out / "thumbs"

    # -- plumbing -------------------------------------------------------------------------------
    def call(self, name: str, inp: dict[str, Any]) -> Any:
        bar = _Progress(name)
        try:
            return self.reg.call(name, inp, ctx=Context(settings=self.settings, progress=bar))
        finally:
            bar.close()

    def step(self, title: str) -> float:
        self.log(f"[{len(self.result.steps) + 1}/{self.n_steps}] {title}")
        return time.monotonic()

    def done(self, t0: float, title: str, tool: str, lines: list[str], body: str = "") -> None:
        self.result.steps.append(Step(title, tool, time.monotonic() - t0, lines, body))

    def rel(self, path: str | Path) -> str:
        p = Path(path).resolve()
        return html.escape(str(p.relative_to(self.out)) if p.is_relative_to(self.out) else p.as_uri())

    def thumb(self, path: str, *, at: float | None = None) -> str:
        """A small PNG of an image (or of a video's frame at ``at``) under thumbs/; its relative URL."""
        from PIL import ImageOps

        from vltools.models.media import load_image
        from vltools.models.video import sample_frames

        src = Path(path).resolve()
        key = hashlib.sha1(str(src).encode()).hexdigest()[:10]  # same-named files in different folders
        name = f"{src.stem}-{key}{'' if at is None else f'_{at:.2f}'}.png"
        target = self.thumbs / name
        if not target.exists():
            if src.suffix.lower() in {".mp4", ".webm", ".mkv", ".avi", ".mov"}:
                stamps = [at] if at is not None else None
                frames, _, _ = sample_frames(path, self.settings, timestamps=stamps, n=None if stamps else 1,
                                             max_frames=1, max_side=160)
                img = frames[0]
            else:
                img = load_image(path, self.settings)
            ImageOps.contain(img, (160, 160)).save(target)
        return self.rel(target)

    def figure(self, path: str, caption: str, *, at: float | None = None, link: str | None = None) -> str:
        img = f'<img src="{self.thumb(path, at=at)}" alt="{html.escape(caption)}">'
        if link:
            img = f'<a href="{html.escape(link)}">{img}</a>'
        return f"<figure>{img}<figcaption>{html.escape(caption)}</figcaption></figure>"

    # -- the job --------------------------------------------------------------------------------
    def run(self) -> DemoResult:
        self.thumbs.mkdir(parents=True, exist_ok=True)
        (self.out / "sheets").mkdir(exist_ok=True)
        world, single = self.generate()
        labels = {r["id"]: r for r in map(json.loads, Path(world.labels).read_text().splitlines())}
        self.index(world)
        self.search_text(world, labels)
        self.search_image(world, labels)
        self.search_video(world, labels)
        self.classify(single)
        self.answer(single)
        ranking = self.search_texts()
        self.rerank(ranking)
        self.fact_check()
        self.write_report()
        return self.result

    def generate(self) -> tuple[Any, Any]:
        t0 = self.step("generating a synthetic world")
        inp: dict[str, Any] = {"out_dir": str(self.out / "world"), "images": self.size["images"],
                               "videos": self.size["videos"], "seed": 7, "overwrite": True}
        if "theme" in self.reg.get("world.generate").input_model.model_fields:
            inp["theme"] = SHAPES_THEME  # the theme the embedded demo CLIP was trained on
        world = self.call("world.generate", inp)
        single = self.call("world.generate", {"out_dir": str(self.out / "single"), "images": self.size["single"],
                                              "single": True, "seed": 11, "overwrite": True})
        lines = [f"{world.images} scenes and {world.videos} videos in {world.out_dir}",
                 f"{single.images} one-object images in {single.out_dir}"]
        body = "".join(self.figure(p, Path(p).name) for p in world.image_files[:8])
        self.done(t0, "World", "world.generate", lines, f'<div class="grid">{body}</div>')
        return world, single

    def index(self, world: Any) -> None:
        t0 = self.step("indexing images, videos and texts")
        imgs = self.call("image.index", {"collection": "demo_images", "paths": world.image_files, "create": True})
        vids = self.call("video.index", {"collection": "demo_videos", "paths": world.video_files, "create": True,
                                         "frames": 6})
        self.call("collection.create", {"name": "demo_texts", "kind": "text"})
        corpus = DATA_DIR / "sample_corpus.jsonl"
        texts = self.call("collection.add", {"collection": "demo_texts", "path": str(corpus)})
        infos = [self.call("collection.info", {"collection": n}) for n in ("demo_images", "demo_videos", "demo_texts")]
        lines = [f"{i.name}: {i.count} {i.kind} items, model {i.model}" for i in infos]
        rows = "".join(f"<tr><td>{html.escape(i.name)}</td><td>{i.kind}</td><td>{i.count}</td>"
                       f"<td>{html.escape(str(i.model))}</td></tr>" for i in infos)
        body = f"<table><tr><th>collection</th><th>kind</th><th>items</th><th>model</th></tr>{rows}</table>"
        assert imgs.count and vids.count and texts.count
        self.done(t0, "Collections", "image.index, video.index, collection.add", lines, body)

    def _hits_html(self, hits: list[Any], truth: set[str] | None = None) -> str:
        figs = []
        for h in hits:
            ok = "" if truth is None else (" ✓" if h.id in truth else " ✗")
            figs.append(self.figure(h.path, f"#{h.rank} {h.score:.3f}{ok}"))
        return f'<div class="grid">{"".join(figs)}</div>'

    def search_text(self, world: Any, labels: dict[str, Any]) -> None:
        t0 = self.step("text → image search")
        pairs = Counter((o["colour"], o["shape"]) for r in labels.values() if r["kind"] == "image"
                        for o in r["labels"]["objects"])
        (colour, shape), _ = pairs.most_common(1)[0]
        query = f"a {colour} {shape}"
        truth = {i for i, r in labels.items() if r["kind"] == "image"
                 and any((o["colour"], o["shape"]) == (colour, shape) for o in r["labels"]["objects"])}
        k = min(5, len(world.image_files))
        res = self.call("image.search", {"collection": "demo_images", "query": query, "k": k,
                                         "contact_sheet": str(self.out / "sheets" / "text_to_image.png")})
        ids = {h.id: Path(h.path).stem for h in res.hits}
        right = sum(ids[h.id] in truth for h in res.hits)
        lines = [f"query {query!r}: the top {k} hold {right} of the {len(truth)} images with a {colour} {shape}"]
        lines += [f"#{h.rank} {Path(h.path).name} {h.score:.3f}" for h in res.hits[:3]]
        for h in res.hits:
            h.id = ids[h.id]
        body = (f"<p>query <q>{html.escape(query)}</q> — ✓ marks an image whose labels hold a {colour} {shape}</p>"
                + self._hits_html(res.hits, truth)
                + f'<p>contact sheet written by the tool:</p><img class="sheet" src="{self.rel(res.contact_sheet)}" '
                  'alt="contact sheet">')
        self.done(t0, "Text → image search", "image.search", lines, body)

    def search_image(self, world: Any, labels: dict[str, Any]) -> None:
        t0 = self.step("image → image search")
        query = world.image_files[0]
        res = self.call("image.search", {"collection": "demo_images", "image": query, "k": 4})
        lines = [f"like {Path(query).name} (\"{labels[Path(query).stem]['caption']}\"):"]
        lines += [f"#{h.rank} {Path(h.path).name} {h.score:.3f} — {labels[Path(h.path).stem]['caption']}"
                  for h in res.hits[:3]]
        body = ("<p>query image:</p>" + self.figure(query, labels[Path(query).stem]["caption"])
                + "<p>nearest images (the query itself is excluded):</p>" + self._hits_html(res.hits))
        self.done(t0, "Image → image search", "image.search", lines, body)

    def search_video(self, world: Any, labels: dict[str, Any]) -> None:
        t0 = self.step("text → video search")
        target = Path(world.video_files[0]).stem
        query = labels[target]["caption"]
        res = self.call("video.search", {"collection": "demo_videos", "query": query, "k": len(world.video_files)})
        rank = next((h.rank for h in res.hits if Path(h.path).stem == target), None)
        lines = [f"query {query!r}: the video it describes ranks #{rank} of {len(res.hits)}"]
        lines += [f"#{h.rank} {Path(h.path).name} {h.score:.3f} best frame at {h.time:.2f} s" for h in res.hits]
        figs = []
        for h in res.hits:
            mark = " ✓" if Path(h.path).stem == target else ""
            link = f"{self.rel(h.path)}#t={h.time:.2f}"
            figs.append(self.figure(h.path, f"#{h.rank} {h.score:.3f} @{h.time:.1f}s{mark}", at=h.time,
                                    link=link))
        body = (f"<p>query <q>{html.escape(query)}</q> (the caption of {target}; a thumbnail is the best-matching "
                f"frame and links to the video at that time)</p><div class=\"grid\">{''.join(figs)}</div>")
        self.done(t0, "Text → video search", "video.search", lines, body)

    def _single_truth(self, single: Any) -> list[dict[str, str]]:
        recs = [json.loads(x) for x in Path(single.labels).read_text().splitlines()]
        by_file = {str(Path(single.out_dir) / r["file"]): r["labels"]["objects"][0] for r in recs}
        return [by_file[p] for p in single.image_files]

    def classify(self, single: Any) -> None:
        t0 = self.step("zero-shot classification")
        truth = self._single_truth(single)
        shapes = sorted({o["shape"] for o in truth} | {"circle", "square", "triangle", "star"})
        res = self.call("image.classify", {"images": single.image_files, "labels": shapes})
        right = sum(r.label == o["shape"] for r, o in zip(res.results, truth, strict=True))
        lines = [f"{right}/{len(truth)} one-object images get their shape right among {len(shapes)} labels"]
        figs = [self.figure(r.image, f"{r.label} ({r.scores[r.label]:.2f}) {'✓' if r.label == o['shape'] else '✗'}")
                for r, o in zip(res.results, truth, strict=True)]
        self.done(t0, "Classification", "image.classify", lines, f'<div class="grid">{"".join(figs)}</div>')

    def answer(self, single: Any) -> None:
        t0 = self.step("visual question answering")
        truth = self._single_truth(single)
        n = min(4, len(truth))
        answers = [self.call("vqa.zero_shot", {"image": p, "question": QUESTION_IMAGE}) for p in single.image_files[:n]]
        right = sum(a.answer == o["colour"] for a, o in zip(answers, truth, strict=False))
        lines = [f"{QUESTION_IMAGE!r}: {right}/{n} right"]
        lines += [f"{Path(p).name}: {a.answer} (truth {o['colour']})"
                  for p, a, o in zip(single.image_files, answers, truth, strict=False)]
        figs = [self.figure(p, f"{a.answer} {'✓' if a.answer == o['colour'] else '✗'}")
                for p, a, o in zip(single.image_files, answers, truth, strict=False)]
        body = f"<p>question <q>{html.escape(QUESTION_IMAGE)}</q></p><div class=\"grid\">{''.join(figs)}</div>"
        self.done(t0, "Visual question answering", "vqa.zero_shot", lines, body)

    def search_texts(self) -> Any:
        t0 = self.step("hybrid text search")
        res = self.call("retrieve.hybrid", {"collection": "demo_texts", "query": TEXT_QUERY, "k": 5})
        lines = [f"query {TEXT_QUERY!r}:"] + [f"#{h.rank} {h.id} {h.score:.3f} {h.title or ''}" for h in res.hits[:3]]
        self.done(t0, "Hybrid text search", "retrieve.hybrid", lines, _ranking_table(res.hits))
        return res

    def rerank(self, ranking: Any) -> None:
        t0 = self.step("reranking with the LLM's attention (ICR)")
        res = self.call("rerank.icr", {"query": TEXT_QUERY, "ranking": ranking.model_dump(mode="json")})
        before = [h.id for h in ranking.hits]
        after = [h.id for h in res.hits]
        lines = [f"before: {' '.join(before)}", f"after:  {' '.join(after)}"]
        body = ('<div class="pair"><div><h4>before (retrieve.hybrid)</h4>' + _ranking_table(ranking.hits)
                + '</div><div><h4>after (rerank.icr)</h4>' + _ranking_table(res.hits) + "</div></div>")
        self.done(t0, "Reranking", "rerank.icr", lines, body)

    def fact_check(self) -> None:
        t0 = self.step("checking a claim")
        res = self.call("graph.fact_check", {"claim": CLAIM, "collection": "demo_texts"})
        lines = [f"{CLAIM!r}: {res.verdict}"]
        rows = []
        for i, p in enumerate(res.proof, 1):
            d = p.model_dump() if hasattr(p, "model_dump") else dict(p)
            lines.append(f"step {i}: {d.get('claim_span') or '∅'} {d.get('symbol', '')} "
                         f"{d.get('evidence_span') or '∅'} → {d.get('state', '')}")
            rows.append("<tr>" + "".join(f"<td>{html.escape(str(d.get(k) or ''))}</td>"
                                         for k in ("kind", "claim_span", "symbol", "evidence_span", "state")) + "</tr>")
        evidence = "".join(f"<li>{html.escape(str(getattr(e, 'text', e)))}</li>" for e in res.evidence)
        body = (f"<p>claim <q>{html.escape(CLAIM)}</q> → <b>{html.escape(str(res.verdict))}</b></p>"
                "<table><tr><th>edit</th><th>claim</th><th>relation</th><th>evidence</th><th>state</th></tr>"
                + "".join(rows) + f"</table><p>evidence:</p><ul>{evidence}</ul>")
        self.done(t0, "Fact check", "graph.fact_check", lines, body)

    def write_report(self) -> None:
        sections = "".join(
            f'<section><h2>{i}. {html.escape(s.title)} <small>{html.escape(s.tool)} · {s.seconds:.1f} s</small></h2>'
            f"{s.body}</section>" for i, s in enumerate(self.result.steps, 1)
        )
        page = REPORT.replace("{{sections}}", sections).replace(
            "{{summary}}", html.escape(self.result.summary())
        )
        tmp = self.result.report.with_suffix(".tmp")
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(self.result.report)


def _ranking_table(hits: list[Any]) -> str:
    rows = "".join(f"<tr><td>{h.rank}</td><td>{html.escape(h.id)}</td><td>{h.score:.3f}</td>"
                   f"<td>{html.escape(getattr(h, 'title', '') or '')}</td></tr>" for h in hits)
    return f"<table><tr><th>#</th><th>id</th><th>score</th><th>title</th></tr>{rows}</table>"


REPORT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vltools demo</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h2 small{font-weight:normal;color:#777;font-size:.6em} section{border-top:1px solid #ddd;margin-top:1.5em}
.grid{display:flex;flex-wrap:wrap;gap:.6em} figure{margin:0;text-align:center;font-size:.85em}
figure img{width:128px;height:128px;object-fit:contain;background:#f4f4f4;border:1px solid #ccc}
img.sheet{max-width:100%;border:1px solid #ccc} table{border-collapse:collapse;font-size:.9em}
td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left} .pair{display:flex;gap:2em}
pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:.85em}
</style></head><body>
<h1>vltools demo</h1>
<p>Every step below is a call through the vltools registry on the embedded, offline models
(the demo CLIP, all-MiniLM-L6-v2, SmolLM2-135M). The synthetic world has exact labels, so ✓/✗ say
whether a result is right.</p>
{{sections}}
<section><h2>Summary</h2><pre>{{summary}}</pre></section>
</body></html>
"""


def run_demo(out: str | Path = "vltools-demo", *, size: str = "small", log: Any = None) -> DemoResult:
    """Run the demo into ``out`` (created); returns the steps and the report path."""
    out_dir = Path(out).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    home = out_dir / "home"
    marker = out_dir / ".vltools-demo"
    if home.exists() and marker.exists():  # a rerun starts from empty collections (only in a demo's own folder)
        shutil.rmtree(home)
    marker.write_text("written by vltools demo; its home/ is recreated on every run\n")
    base = get_settings()
    settings = base.model_copy(update={"home": home,
                                       "extra_roots": [*base.extra_roots, out_dir, DATA_DIR]})
    log = log or (lambda line: sys.stderr.write(line + "\n"))
    return Demo(out_dir, size, settings, log).run()


def run_demo_cli(args: Any) -> int:
    """``vltools demo``: the summary on stdout, progress on stderr; optionally opens the report."""
    result = run_demo(args.out or "vltools-demo", size=args.size)
    sys.stdout.write(result.summary() + "\n")
    sys.stdout.flush()
    if getattr(args, "open", False):
        import webbrowser

        webbrowser.open(result.report.as_uri())
    return 0
