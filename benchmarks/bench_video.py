"""Video II benchmarks on held-out world videos (objects theme), each against its baseline in one run.

    nice -n 19 python benchmarks/bench_video.py ground   [--videos 150]
    nice -n 19 python benchmarks/bench_video.py search   [--videos 120]
    nice -n 19 python benchmarks/bench_video.py classify [--videos 100]
    nice -n 19 python benchmarks/bench_video.py t2v|describe|rag|longqa

- ground: `video.ground` R1@IoU0.5/0.7 and mAP@[0.5:0.95] of the trained head vs the training-free
  similarity baseline, on test seeds (train concepts) and on held-out concepts; queries = event captions.
- search: `video.search` recall@1/5, ms/query, features/video and frames encoded per query of every
  mode vs mean pooling, on one collection indexed once (queries = clip captions).
- classify: `video.classify` accuracy (single-object clips, label = the object) with mean and max
  pooling vs the middle frame alone.
- t2v: `t2v.score` sub-scores and `t2v.stream` metrics of clean clips vs the same clips with planted
  defects (frozen, jitter, flicker, wrong content).
- describe: `video.describe` event recall and order accuracy vs equal-segment naming.
- rag: `graph.video_rag` answer accuracy vs retrieval alone; longqa: `graph.long_video_qa` on a >= 10
  minute video assembled from world clips vs `video.ground` over the whole video, with peak memory.

Writes benchmarks/results/video_<part>.json and .md. Seeds: scripts/_video_world.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "scripts"))

from _video_world import GROUND_DEV, GROUND_TEST, world_queries  # noqa: E402

THRESHOLDS = [round(0.5 + 0.05 * i, 2) for i in range(10)]


def _write(name: str, result: dict, md: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
    (RESULTS / f"{name}.md").write_text(md)
    print(md)


def _allow(folder: Path) -> None:
    from vltools.core.settings import reset_settings

    extra = json.loads(os.environ.get("VLTOOLS_EXTRA_ROOTS") or "[]")
    os.environ["VLTOOLS_EXTRA_ROOTS"] = json.dumps([*extra, str(folder)])
    reset_settings()


# -- grounding -----------------------------------------------------------------------------------
def ground_metrics(items: list[dict], method: str) -> dict:
    from vltools.tools.video.ground import ground_features, iou

    r5 = r7 = n = 0
    ap = []
    for it in items:
        for e in it["events"]:
            moments, _ = ground_features(it["ff"], e["q"], method, 10)
            gt = (e["start"], e["end"])
            ious = [iou((m[0], m[1]), gt) for m in moments]
            r5 += bool(ious) and ious[0] >= 0.5
            r7 += bool(ious) and ious[0] >= 0.7
            per_thr = []
            for thr in THRESHOLDS:  # one ground-truth moment: AP = 1 / rank of the first hit
                first = next((i for i, x in enumerate(ious) if x >= thr), None)
                per_thr.append(0.0 if first is None else 1.0 / (first + 1))
            ap.append(float(np.mean(per_thr)))
            n += 1
    return {"queries": n, "R1@0.5": round(r5 / n, 4), "R1@0.7": round(r7 / n, 4), "mAP": round(float(np.mean(ap)), 4)}


def bench_ground(args) -> None:
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        test = world_queries(GROUND_TEST, args.videos, Path(tmp) / "test", args.clip)
        held = world_queries(GROUND_TEST + 50_000, args.videos // 2, Path(tmp) / "held", args.clip, split="heldout")
    rows = {}
    for name, items in (("test (train concepts)", test), ("held-out concepts", held)):
        rows[name] = {m: ground_metrics(items, m) for m in ("head", "similarity")}
    result = {"clip": args.clip, "videos": {"test": len(test), "heldout": len(held)}, "fps": 4.0,
              "seeds": {"test": GROUND_TEST, "heldout": GROUND_TEST + 50_000}, "results": rows,
              "wall_s": round(time.time() - t0, 1)}
    md = ["| split | method | queries | R1@0.5 | R1@0.7 | mAP@[.5:.95] |", "|---|---|---|---|---|---|"]
    for split, by in rows.items():
        for m, r in by.items():
            label = "trained head" if m == "head" else "similarity baseline (training-free)"
            md.append(f"| {split} | {label} | {r['queries']} | {r['R1@0.5']:.3f} | {r['R1@0.7']:.3f} "
                      f"| {r['mAP']:.3f} |")
    _write("video_ground", result, "\n".join(md) + "\n")


# -- search modes --------------------------------------------------------------------------------
def bench_search(args) -> None:
    import vltools
    from vltools.world import generate_object_video, write_video

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "gallery"
        folder.mkdir()
        _allow(Path(tmp))
        os.environ["VLTOOLS_HOME"] = str(Path(tmp) / "home")
        from vltools.core.settings import reset_settings

        reset_settings()
        queries = []
        for k in range(args.videos):
            v = generate_object_video(GROUND_TEST + 150_000 + k)
            p = write_video(v.frames, folder / f"v{k:04d}.mp4", v.fps)
            queries.append((str(p), v.caption))
        t = time.time()
        vltools.call("video.index", {"collection": "bench", "paths": [str(folder)], "create": True,
                                     "clip": args.clip, "frames": 8})
        index_s = time.time() - t
        modes = ("mean", "tempme", "ucofia", "glscl", "prompt_switch")
        acc: dict[str, dict[str, list]] = {m: {"ranks": [], "ms": [], "per_video": [], "encodes": []} for m in modes}
        for path, q in queries:  # modes interleaved per query: the same machine load for each
            for mode in modes:
                t = time.perf_counter()
                out = vltools.call("video.search", {"collection": "bench", "query": q, "k": 5, "mode": mode,
                                                    "pool": args.pool})
                a = acc[mode]
                a["ms"].append((time.perf_counter() - t) * 1000)
                got = [h.path for h in out.hits]
                a["ranks"].append(got.index(path) + 1 if path in got else 99)
                a["per_video"].append(out.cost.features_per_video)
                a["encodes"].append(out.cost.video_encodes)
        rows = {}
        for mode, a in acc.items():
            rows[mode] = {"R@1": round(float(np.mean([r <= 1 for r in a["ranks"]])), 4),
                          "R@5": round(float(np.mean([r <= 5 for r in a["ranks"]])), 4),
                          "ms_per_query": round(float(np.median(a["ms"])), 1),
                          "features_per_video": round(float(np.mean(a["per_video"])), 2),
                          "frames_encoded_per_query": round(float(np.mean(a["encodes"])), 1)}
    result = {"clip": args.clip, "videos": args.videos, "frames_indexed": 8, "pool": args.pool,
              "index_s": round(index_s, 1), "results": rows}
    md = [f"Gallery: {args.videos} world videos (8 frames each, indexed once in {index_s:.0f} s); query = each clip's "
          f"caption; non-mean modes rescore the mean-pooled top {args.pool}.", "",
          "| mode | R@1 | R@5 | ms/query (median) | features/video | frames encoded per query |",
          "|---|---|---|---|---|---|"]
    for mode, r in rows.items():
        md.append(f"| {mode} | {r['R@1']:.3f} | {r['R@5']:.3f} | {r['ms_per_query']:.0f} "
                  f"| {r['features_per_video']:.2f} | {r['frames_encoded_per_query']:.0f} |")
    _write("video_search", result, "\n".join(md) + "\n")


# -- classification ------------------------------------------------------------------------------
def bench_classify(args) -> None:
    import vltools
    from vltools.world import generate_object_video, write_video

    with tempfile.TemporaryDirectory() as tmp:
        _allow(Path(tmp))
        items = []
        for k in range(args.videos):
            v = generate_object_video(GROUND_TEST + 200_000 + k, n_objects=1, n_events=2,
                                      event_types=("move", "change_tint"))
            p = write_video(v.frames, Path(tmp) / f"c{k:04d}.mp4", v.fps)
            items.append((str(p), v.labels["objects"][0]["concept"]))
        labels = sorted({c for _, c in items})
        rows = {}
        for name, extra in (("mean pooling (8 frames)", {"frames": 8, "pooling": "mean"}),
                            ("max pooling (8 frames)", {"frames": 8, "pooling": "max"}),
                            ("middle frame only", {"frames": 1, "pooling": "mean"})):
            out = vltools.call("video.classify", {"videos": [p for p, _ in items], "labels": labels,
                                                  "clip": args.clip, **extra})
            acc = float(np.mean([r.label == c for r, (_, c) in zip(out.results, items, strict=True)]))
            rows[name] = round(acc, 4)
    result = {"clip": args.clip, "videos": args.videos, "labels": len(labels), "accuracy": rows}
    md = [f"{args.videos} single-object world clips, {len(labels)} candidate labels (the clips' objects).", "",
          "| variant | accuracy |", "|---|---|"] + [f"| {k} | {v:.3f} |" for k, v in rows.items()]
    _write("video_classify", result, "\n".join(md) + "\n")


# -- generated-video metrics ---------------------------------------------------------------------
def bench_t2v(args) -> None:
    from _video_world import DEFECTS, plant_defect

    import vltools
    from vltools.world import generate_object_video, write_video

    with tempfile.TemporaryDirectory() as tmp:
        _allow(Path(tmp))
        n = args.videos
        clips = [generate_object_video(GROUND_TEST + 300_000 + k) for k in range(n)]
        others = [generate_object_video(GROUND_TEST + 310_000 + k) for k in range(n)]
        real = [str(write_video(generate_object_video(GROUND_TEST + 320_000 + k).frames, Path(tmp) / f"r{k}.mp4"))
                for k in range(n)]
        sets: dict[str, list[str]] = {"clean": [], **{d: [] for d in DEFECTS}}
        for k, v in enumerate(clips):
            sets["clean"].append(str(write_video(v.frames, Path(tmp) / f"clean{k}.mp4", v.fps)))
            for d in DEFECTS:
                f = plant_defect(v.frames, d, k, others[k].frames)
                sets[d].append(str(write_video(f, Path(tmp) / f"{d}{k}.mp4", v.fps)))
        keys = ["alignment", "motion", "flicker", "jitter", "temporal_consistency", "sharpness", "quality", "score"]
        score_rows, stream_rows = {}, {}
        for name, paths in sets.items():
            outs = [vltools.call("t2v.score", {"video": p, "prompt": clips[k].caption}) for k, p in enumerate(paths)]
            row = {}
            for key in keys:
                vals = [getattr(o.subscores, key) if hasattr(o.subscores, key) else getattr(o, key) for o in outs]
                row[key] = round(float(np.mean(vals)), 4)
            score_rows[name] = row
            st = vltools.call("t2v.stream", {"videos": paths, "real": real})
            stream_rows[name] = {"STREAM-T": st.stream_t, "STREAM-F": st.stream_f, "STREAM-D": st.stream_d,
                                 "high_frequency": round(float(np.mean([r.high_frequency for r in st.per_video])), 4),
                                 "energy": round(float(np.mean([r.energy for r in st.per_video])), 4)}
            print(name, score_rows[name], stream_rows[name], file=sys.stderr)
    result = {"clip": args.clip, "videos_per_set": n, "real_videos": n, "t2v_score": score_rows, "stream": stream_rows}
    md = [f"{n} world clips per set; each defect planted in the same clips (wrong content: another clip's frames for "
          f"the prompt); STREAM against {n} other real world clips.", "", "T2VScore (means):", "",
          "| set | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, row in score_rows.items():
        md.append(f"| {name} | " + " | ".join(f"{row[k]:.3f}" for k in keys) + " |")
    md += ["", "STREAM:", "", "| set | STREAM-T | STREAM-F | STREAM-D | high-frequency share | log energy |",
           "|---|---|---|---|---|---|"]
    for name, r in stream_rows.items():
        md.append(f"| {name} | {r['STREAM-T']:.3f} | {r['STREAM-F']:.3f} | {r['STREAM-D']:.3f} "
                  f"| {r['high_frequency']:.3f} | {r['energy']:.2f} |")
    _write("video_t2v", result, "\n".join(md) + "\n")


# -- description ---------------------------------------------------------------------------------
def description_scores(events: list[dict], pred: list) -> tuple[int, int, int, int]:
    """(matched events, events, ordered pairs agreeing, pairs) for one clip.

    One-to-one matching: a described event matches at most one true event, and only when it names the
    event's object and overlaps it with temporal IoU >= 0.3 (greedy by IoU)."""
    from vltools.tools.video.ground import iou

    cands = sorted(((iou((e.start, e.end), (ev["start"], ev["end"])), k, j) for k, ev in enumerate(events)
                    for j, e in enumerate(pred) if e.subject == ev["concept"]), reverse=True)
    match: dict[int, int] = {}
    used: set[int] = set()
    for score, k, j in cands:
        if score >= 0.3 and k not in match and j not in used:
            match[k], used = j, used | {j}
    got = sorted(match.items())
    pairs = agree = 0
    for a in range(len(got)):
        for b in range(a + 1, len(got)):
            pairs += 1
            agree += (pred[got[a][1]].start <= pred[got[b][1]].start)
    return len(got), len(events), agree, pairs


def bench_describe(args) -> None:
    import vltools
    from vltools.world import generate_object_video, write_video

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        _allow(Path(tmp))
        vids = [generate_object_video(GROUND_TEST + 400_000 + k) for k in range(args.videos)]
        pool = sorted({o["concept"] for v in vids for o in v.labels["final_objects"]})
        tot = {"templates": [0, 0, 0, 0], "uniform baseline": [0, 0, 0, 0]}
        for k, v in enumerate(vids):
            p = write_video(v.frames, Path(tmp) / f"d{k}.mp4", v.fps)
            own = sorted({o["concept"] for o in v.labels["final_objects"]})
            labels = own + [str(x) for x in rng.choice([c for c in pool if c not in own], 5, replace=False)]
            out = vltools.call("video.describe", {"video": str(p), "labels": labels, "clip": args.clip})
            base = _uniform_baseline(v, labels, str(p), args.clip, len(out.events))
            for name, pred in (("templates", out.events), ("uniform baseline", base)):
                for i, x in enumerate(description_scores(v.events, pred)):
                    tot[name][i] += x
    rows = {n: {"event_recall": round(t[0] / max(t[1], 1), 4), "order_accuracy": round(t[2] / max(t[3], 1), 4),
                "events": t[1], "pairs": t[3]} for n, t in tot.items()}
    result = {"clip": args.clip, "videos": args.videos, "results": rows}
    md = [f"{args.videos} world clips; labels = the clip's objects + 5 distractors; an event is recalled when a "
          "described event names its object and overlaps it with temporal IoU >= 0.3 (one-to-one). "
          "Baseline: as many equal-length segments, "
          "each named by the label whose CLIP score changes most across it.", "",
          "| method | event recall | order accuracy (matched pairs) | events |", "|---|---|---|---|"]
    for n, r in rows.items():
        md.append(f"| {n} | {r['event_recall']:.3f} | {r['order_accuracy']:.3f} | {r['events']} |")
    _write("video_describe", result, "\n".join(md) + "\n")


def _uniform_baseline(v, labels, path, clip, n_events):
    """Equal segments named by the label whose (pooled) CLIP score changes most across each."""
    from types import SimpleNamespace

    import vltools

    emb = vltools.call("video.embed", {"video": path, "clip": clip, "fps": 4.0, "max_frames": 256})
    from vltools.core.settings import get_settings
    from vltools.models.clip import get_clip

    lv, _ = get_clip(clip, get_settings()).encode_texts([f"a {lab}" for lab in labels])
    f = np.asarray(emb.frame_features)
    t = np.asarray(emb.times)
    n = max(n_events, 1)
    edges = np.linspace(0, emb.duration, n + 1)
    out = []
    for i in range(n):
        idx = np.where((t >= edges[i]) & (t <= edges[i + 1]))[0]
        if len(idx) < 2:
            continue
        s = f[idx] @ lv.T
        j = int(np.argmax(np.abs(s[-1] - s[0])))
        out.append(SimpleNamespace(subject=labels[j], start=float(edges[i]), end=float(edges[i + 1])))
    return out


# -- video RAG and long-video QA -----------------------------------------------------------------
def _q(ev: dict) -> str:
    return f"when does {ev['caption']}?"


def _old_video_rag(question: str, labels: list[str], clip: str) -> tuple:
    """The previous graph.video_rag, re-composed from the same tool calls: top 3 videos by question-frame
    similarity (video.search), each one's best moment (video.ground), those moments described
    (video.describe), the event sentence closest to the question (evidence.select).
    Returns (answer, (video, start, end) or None)."""
    import vltools

    out = vltools.call("video.search", {"collection": "rag", "query": question, "k": 3})
    events = []
    for h in out.hits:
        g = vltools.call("video.ground", {"video": h.path, "query": question, "k": 1})
        for m in g.moments:
            res = vltools.call("video.describe", {"video": h.path, "start": max(0.0, m.start - 0.5),
                                                  "end": m.end + 0.5, "labels": labels, "clip": clip})
            events += [(h.path, ev.start, ev.end, ev.text) for ev in res.events] or [
                (h.path, m.start, m.end, "the video shows " + ", ".join(res.scene))]
    if not events:
        return "", None
    sel = vltools.call("evidence.select", {"claim": question, "split": False, "k": len(events),
                                           "passages": [{"id": str(i), "text": e[3]} for i, e in enumerate(events)]})
    best = events[int(sel.sentences[0].doc_id)]
    return best[3], best[:3]


def bench_rag(args) -> None:
    import vltools
    from vltools.world import generate_object_video, write_video

    base = {"dev": GROUND_DEV, "test": GROUND_TEST}[args.split] + 500_000
    with tempfile.TemporaryDirectory() as tmp:
        _allow(Path(tmp))
        os.environ["VLTOOLS_HOME"] = str(Path(tmp) / "home")
        from vltools.core.settings import reset_settings

        reset_settings()
        vids = [generate_object_video(base + k) for k in range(args.videos)]
        paths = [str(write_video(v.frames, Path(tmp) / f"g{k}.mp4", v.fps)) for k, v in enumerate(vids)]
        vltools.call("video.index", {"collection": "rag", "paths": paths, "create": True, "clip": args.clip})
        labels = sorted({o["concept"] for v in vids for o in v.labels["final_objects"]})
        n = min(args.questions, len(vids))
        picks = np.linspace(0, len(vids) - 1, n).round().astype(int)
        names = ["graph.video_rag", "old graph (s2: frame retrieval + ground + describe + evidence.select)",
                 "video.search top-1 video (retrieval alone, baseline)"]
        ok = dict.fromkeys(names, 0)
        first = in_top = right_given = 0
        t0 = time.time()
        for k in picks:
            ev = vids[k].events[0]
            q = _q(ev)

            def right(video: str, s: float, e: float, answer: str, k: int = int(k), ev: dict = ev) -> bool:
                return video == paths[k] and s <= ev["end"] + 1 and e >= ev["start"] - 1 and ev["concept"] in answer

            out = vltools.call("graph.video_rag", {"question": q, "collection": "rag", "labels": labels})
            top = out.citations[0] if out.citations else None
            good = bool(top and right(top.video, top.start, top.end, out.answer))
            ok[names[0]] += good
            hit = bool(out.videos and out.videos[0].video == paths[k])
            first += hit
            in_top += any(v.video == paths[k] for v in out.videos)
            right_given += hit and good
            answer, cited = _old_video_rag(q, labels, args.clip)
            ok[names[1]] += bool(cited and right(*cited, answer))
            s = vltools.call("video.search", {"collection": "rag", "query": q, "k": 1})
            ok[names[2]] += s.hits[0].path == paths[k]
    acc = {k: round(v / n, 4) for k, v in ok.items()}
    stages = {"right video retrieved first": round(first / n, 4),
              "right video among the 3 retrieved": round(in_top / n, 4),
              "right span + object given the right video first": round(right_given / max(first, 1), 4)}
    result = {"clip": args.clip, "split": args.split, "seed_base": base, "videos": args.videos, "questions": n,
              "accuracy": acc, "stages": stages, "wall_s": round(time.time() - t0, 1)}
    md = [f"{args.split.upper()} split (seeds {base}+): a collection of {args.videos} world clips; {n} questions "
          "'when does EVENT?' (first event of a clip); labels = all objects of the collection; right = the top "
          "citation in the right video, within 1 s of the event, and the object named (the baseline: the right "
          "video first).", "", "| method | accuracy |", "|---|---|"]
    md += [f"| {k} | {v:.3f} |" for k, v in acc.items()]
    md += ["", "| graph.video_rag stage | rate |", "|---|---|"]
    md += [f"| {k} | {v:.3f} |" for k, v in stages.items()]
    _write(f"video_rag{'_dev' if args.split == 'dev' else ''}", result, "\n".join(md) + "\n")


def _old_long_video_qa(path: str, question: str, labels: list[str], clip: str, collection: str) -> tuple:
    """The previous graph.long_video_qa, re-composed from the same tool calls: clips ranked by question-frame
    similarity (video.search prompt_switch), the top 3 described (video.describe), the answer the event
    sentence closest to the question (evidence.select). Returns (answer, top evidence span or None)."""
    import vltools
    from vltools.graphs._video import search_query

    out = vltools.call("video.search", {"collection": collection, "query": search_query(question), "k": 50,
                                        "mode": "prompt_switch", "pool": 1000})
    events = []
    for h in [h for h in out.hits if h.path == path][:3]:
        s, e = float(h.metadata["start"]), float(h.metadata["end"])
        res = vltools.call("video.describe", {"video": path, "start": s, "end": e, "labels": labels, "clip": clip})
        events += [(ev.start, ev.end, ev.text) for ev in res.events] or [(s, e, "the video shows "
                                                                          + ", ".join(res.scene))]
    if not events:
        return "", None
    sel = vltools.call("evidence.select", {"claim": question, "split": False, "k": len(events),
                                           "passages": [{"id": str(i), "text": t} for i, (_, _, t) in
                                                        enumerate(events)]})
    best = events[int(sel.sentences[0].doc_id)]
    return best[2], (best[0], best[1])


def bench_longqa(args) -> None:
    import resource

    import vltools
    from vltools.world import generate_object_video, write_video

    base = {"dev": GROUND_DEV, "test": GROUND_TEST}[args.split] + 700_000
    with tempfile.TemporaryDirectory() as tmp:
        _allow(Path(tmp))
        os.environ["VLTOOLS_HOME"] = str(Path(tmp) / "home")
        from vltools.core.settings import reset_settings

        reset_settings()
        frames, parts, t = [], [], 0.0
        for k in range(args.videos):
            v = generate_object_video(base + k)
            parts.append((t, v))
            frames += v.frames
            t += len(v.frames) / v.fps
        path = write_video(frames, Path(tmp) / "long.mp4", 8.0)
        del frames
        labels = sorted({o["concept"] for _, v in parts for o in v.labels["final_objects"]})
        picks = np.linspace(0, len(parts) - 1, args.questions).round().astype(int)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.time()
        # The baseline is video.ground's 'similarity' method (at most 1,024 frames over the whole video); its
        # frames are encoded once here and each question runs the tool's own ground_features on them.
        from vltools.core import Context
        from vltools.tools.video._frames import encode_video
        from vltools.tools.video.ground import TRAIN_FPS, ground_features

        ctx = Context()
        backend = ctx.clip(args.clip)
        whole = encode_video(str(path), ctx, backend, fps=TRAIN_FPS, max_frames=1024, dense=False)
        first = None
        names = ["graph.long_video_qa", "old graph (s2: frame retrieval + describe top 3 + evidence.select)",
                 "video.ground over the whole video (baseline)"]
        ok = dict.fromkeys(names, 0)
        stage = {"right clip retrieved first": 0, "right clip among the top 3": 0,
                 "right span given the right clip first": 0}
        ms, rows = [], []

        def near(a: float, b: float, s: float, e: float) -> bool:
            return a <= e + 1.5 and b >= s - 1.5

        for i in picks:
            off, v = parts[int(i)]
            ev = v.events[0]
            s, e = off + ev["start"], off + ev["end"]
            t1 = time.time()
            out = vltools.call("graph.long_video_qa", {"video": str(path), "question": _q(ev), "labels": labels,
                                                       "clip": args.clip})
            ms.append(time.time() - t1)
            first = first or out.indexed_clips
            top = out.evidence[0] if out.evidence else None
            right = bool(top and near(top.start, top.end, s, e) and ev["concept"] in out.answer)
            ok[names[0]] += right
            hit1 = bool(out.clips and out.clips[0].start < e and out.clips[0].end > s)
            stage["right clip retrieved first"] += hit1
            stage["right clip among the top 3"] += any(c.start < e and c.end > s for c in out.clips)
            stage["right span given the right clip first"] += hit1 and right
            old_answer, old_span = _old_long_video_qa(str(path), _q(ev), labels, args.clip, out.collection)
            ok[names[1]] += bool(old_span and near(*old_span, s, e) and ev["concept"] in old_answer)
            qv, _ = backend.encode_texts_detailed([_q(ev)])
            (m0, m1, _), = ground_features(whole, qv[0], "similarity", 1)[0][:1]
            ok[names[2]] += bool(near(m0, m1, s, e))
            rows.append({"question": _q(ev), "event": [round(s, 2), round(e, 2)], "right": right,
                         "clips": [[c.start, c.end] for c in out.clips],
                         "top_evidence": [top.start, top.end, top.text] if top else None})
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n = len(picks)
    acc = {k: round(v / n, 4) for k, v in ok.items()}
    hits = stage["right clip retrieved first"]
    stages = {"right clip retrieved first": round(hits / n, 4),
              "right clip among the top 3": round(stage["right clip among the top 3"] / n, 4),
              "right span + object given the right clip first": round(
                  stage["right span given the right clip first"] / max(hits, 1), 4)}
    result = {"clip": args.clip, "split": args.split, "seed_base": base, "duration_s": round(t, 1),
              "world_clips": args.videos, "questions": n, "accuracy": acc, "stages": stages,
              "clips_indexed_first_call": first, "seconds_first_question": round(ms[0], 1),
              "seconds_later_questions_median": round(float(np.median(ms[1:])), 1) if n > 1 else None,
              "peak_rss_mb_before": round(rss0 / 1024), "peak_rss_mb_after": round(rss1 / 1024),
              "wall_s": round(time.time() - t0, 1), "per_question": rows}
    md = [f"{args.split.upper()} split (seeds {base}+): one {t / 60:.1f}-minute video assembled from {args.videos} "
          f"world clips; {n} questions 'when does EVENT?' whose answer sits in one clip; right = top evidence span "
          "within 1.5 s of the event and the object named (the baseline: its top moment within 1.5 s).", "",
          "| method | accuracy |", "|---|---|"]
    md += [f"| {k} | {v:.3f} |" for k, v in acc.items()]
    md += ["", "| graph.long_video_qa stage | rate |", "|---|---|"]
    md += [f"| {k} | {v:.3f} |" for k, v in stages.items()]
    md += ["", f"First question indexed and described {first} clips of 10 s in {ms[0]:.0f} s; later questions "
           f"reused the index (median {result['seconds_later_questions_median']} s). Peak RSS of the process: "
           f"{result['peak_rss_mb_before']} MB before the questions, {result['peak_rss_mb_after']} MB after."]
    _write(f"video_longqa{'_dev' if args.split == 'dev' else ''}", result, "\n".join(md) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=["ground", "search", "classify", "t2v", "describe", "rag", "longqa"])
    ap.add_argument("--questions", type=int, default=20)
    ap.add_argument("--videos", type=int, default=0)
    ap.add_argument("--clip", default="demo")
    ap.add_argument("--pool", type=int, default=20)
    ap.add_argument("--split", choices=["dev", "test"], default="test", help="rag/longqa: DEV seeds for choices")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    args.videos = args.videos or {"ground": 150, "search": 120, "classify": 100, "t2v": 20, "describe": 40,
                                  "rag": 40, "longqa": 125}[args.part]
    {"ground": bench_ground, "search": bench_search, "classify": bench_classify, "t2v": bench_t2v,
     "describe": bench_describe, "rag": bench_rag, "longqa": bench_longqa}[args.part](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
