"""Ray indexing vs single-process image.index on world images, side by side in one run (issue 19).

    nice -n 19 python benchmarks/bench_scale_index.py --images 5000 --workers 2

1. Renders N world object scenes (seeded, 64 px) into a cache folder (reused between runs).
2. Single process: image.index (flat) over the folder, timed.
3. Ray: `vltools.scale.run_index` with executor "ray" and W actors (flat), timed: ray.init, the
   embedding stage, and the whole job.
4. The same Ray job into an IVF collection; recall@10 against the flat results.
5. 50 queries (25 texts, 25 stored images): top-10 ids of the Ray collection vs image.index.
Writes benchmarks/results/scale_index.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def render(folder: Path, n: int) -> float:
    from vltools.world.objects import generate_object_scene

    folder.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    for i in range(n):
        p = folder / f"o{i:05d}.png"
        if not p.exists():
            generate_object_scene(100_000 + i, image_size=64).image.save(p)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shard-size", type=int, default=256)
    ap.add_argument("--cache", default=str(HERE / ".cache" / "scale_world"))
    ap.add_argument("--out", default=str(HERE / "results" / "scale_index"))
    args = ap.parse_args()

    import tempfile

    import numpy as np

    from vltools.core.context import Context
    from vltools.core.registry import get_registry
    from vltools.core.settings import Settings
    from vltools.scale import IndexSpec, run_index
    from vltools.store import open_collection

    folder = Path(args.cache) / f"n{args.images}"
    render_s = render(folder, args.images)
    log(f"rendered/reused {args.images} images in {render_s:.1f} s")
    home = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    settings = Settings(allowed_roots=[folder], home=home, device="cpu")
    ctx = Context(settings=settings)
    result: dict = {"images": args.images, "workers": args.workers, "shard_size": args.shard_size,
                    "cpus": os.cpu_count(), "machine": platform.platform(), "load_avg_start": os.getloadavg()}

    t = time.perf_counter()
    ctx.clip("demo")  # the model load is timed apart: the Ray actors load it themselves
    result["single_model_load_s"] = time.perf_counter() - t
    t = time.perf_counter()
    get_registry().call("image.index", {"collection": "single", "paths": [str(folder)], "create": True,
                                        "batch_size": 32}, ctx=ctx)
    single_s = time.perf_counter() - t
    log(f"single-process image.index: {single_s:.1f} s")

    import ray

    t = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    result["ray_init_s"] = time.perf_counter() - t
    try:
        t = time.perf_counter()
        res = run_index(IndexSpec(collection="ray_flat", inputs=[str(folder)], executor="ray", workers=args.workers,
                                  shard_size=args.shard_size), settings)
        ray_s = time.perf_counter() - t
        log(f"ray job (flat): {ray_s:.1f} s, embedding {res.embed_seconds:.1f} s")
        t = time.perf_counter()
        res_ivf = run_index(IndexSpec(collection="ray_ivf", inputs=[str(folder)], executor="ray",
                                      workers=args.workers, shard_size=args.shard_size, index="ivf"), settings)
        ivf_s = time.perf_counter() - t
    finally:
        ray.shutdown()
    result["load_avg_end"] = os.getloadavg()

    clip = ctx.clip("demo")
    texts = [f"a photo of a {w}" for w in ["cup", "dog", "car", "apple", "chair", "tree", "phone", "book", "shoe",
                                           "clock", "bird", "hat", "key", "fish", "cake", "ball", "lamp", "boat",
                                           "guitar", "flower", "pizza", "bicycle", "umbrella", "banana", "house"]]
    qv = clip.encode_texts(texts)[0]
    single = open_collection("single", settings)
    from vltools.models.media import load_image

    picks = [folder / f"o{i:05d}.png" for i in range(0, args.images, max(1, args.images // 25))][:25]
    iv = clip.encode_images([load_image(str(p), settings) for p in picks])
    queries = np.concatenate([qv, iv])[:50]
    a = [[i for i, _ in row] for row in single.search_many(queries, 10)]
    b = [[i for i, _ in row] for row in open_collection("ray_flat", settings).search_many(queries, 10)]
    c = [[i for i, _ in row] for row in open_collection("ray_ivf", settings).search_many(queries, 10)]
    same = sum(x == y for x, y in zip(a, b, strict=True))
    recall_ivf = float(np.mean([len(set(x) & set(z)) / 10 for x, z in zip(a, c, strict=True)]))
    embed_rate_ray = args.images / res.embed_seconds
    result.update({
        "render_s": render_s,
        "single_s": single_s,
        "single_images_per_s": args.images / single_s,
        "ray_job_s": ray_s,
        "ray_embed_s": res.embed_seconds,
        "ray_images_per_s_job": args.images / ray_s,
        "ray_images_per_s_embed": embed_rate_ray,
        "ray_over_single_throughput": (args.images / ray_s) / (args.images / single_s),
        "ray_shards": res.shards,
        "ray_ivf_job_s": ivf_s,
        "ivf_params": open_collection("ray_ivf", settings).manifest["index"]["params"],
        "queries": len(queries),
        "flat_top10_identical": same,
        "ivf_recall_at_10_vs_flat": recall_ivf,
        "count_single": single.count,
        "count_ray": res.count,
        "count_ray_ivf": res_ivf.count,
    })
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=float))
    md = [
        "# Ray indexing vs single-process image.index (measured, one run)",
        "",
        f"{args.images} world object scenes (64 px), demo CLIP on CPU, {os.cpu_count()} cores shared with other "
        f"jobs (load average {result['load_avg_start'][0]:.1f} at the start, {result['load_avg_end'][0]:.1f} at "
        "the end).",
        "",
        "| run | wall s | images/s |",
        "| --- | --- | --- |",
        f"| single process image.index (flat; model already loaded) | {single_s:.1f} | {args.images / single_s:.1f} |",
        f"| Ray job, {args.workers} actors (flat), whole job | {ray_s:.1f} | {args.images / ray_s:.1f} |",
        f"| Ray job, embedding stage only | {res.embed_seconds:.1f} | {embed_rate_ray:.1f} |",
        f"| Ray job (IVF) | {ivf_s:.1f} | {args.images / ivf_s:.1f} |",
        "",
        f"Ray / single-process throughput: **{result['ray_over_single_throughput']:.2f}x** (whole job vs whole "
        f"call). ray.init took {result['ray_init_s']:.1f} s (not in either figure); each actor loads the model "
        f"itself (the single process loaded it once before timing: {result['single_model_load_s']:.1f} s).",
        "",
        f"Same top-10 ids (flat, Ray vs image.index): **{same} of {len(queries)}** queries. "
        f"IVF recall@10 against flat: **{recall_ivf:.3f}** (params {result['ivf_params']}).",
    ]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    log("\n".join(md))


if __name__ == "__main__":
    main()
