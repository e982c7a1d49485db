#!/usr/bin/env bash
# GPU check for issue 19, unattended, a few minutes on one GPU: bash benchmarks/gpu_check.sh
#
# Measures, each step on its own (a failing step is recorded, the others still run):
#   1. the device (nvidia-smi) and what the Python environment has (torch CUDA, faiss GPUs, ray);
#   2. the device plan vltools picks with VLTOOLS_DEVICE=cuda (fp16 CLIP/text, bf16/fp16 LLM, FAISS on GPU);
#   3. ViT-B-32-sized CLIP image embedding (random weights, open_clip:ViT-B-32/random): images/s of the
#      raw fp16 forward at batch 256 on the GPU vs fp32 on the CPU, and through vltools' encode_images;
#   4. FAISS flat search, GPU vs CPU, on 1M synthetic 512-d vectors (1,000 queries, k=10), same top-10;
#      and a vltools collection searched with VLTOOLS_DEVICE=cuda (GPU copy) vs cpu: the same hits;
#   5. the LLM rerankers (rerank.pointwise, rerank.listwise with smollm2) on GPU vs CPU, seconds per call;
#   6. the text encoder (MiniLM) fp16 on GPU vs the CPU default: docs/s;
#   7. a `vltools index` Ray job with one GPU actor over 512 world images vs the CPU executor.
# Results: benchmarks/results/gpu_check.json and .md (written after every step). Never run in CI: it
# needs a GPU. PYTHON (default .venv/bin/python, else python3) must have vltools' requirements.lock
# installed (plus faiss-gpu for step 4's GPU half: `pip install -e '.[gpu]'`).
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export VLTOOLS_HOME="${VLTOOLS_HOME:-$(mktemp -d /tmp/vltools_gpu_check.XXXXXX)}"
export VLTOOLS_ALLOWED_ROOTS="[\"$VLTOOLS_HOME\"]"
OUT=benchmarks/results/gpu_check
mkdir -p benchmarks/results
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$VLTOOLS_HOME/nvidia-smi.txt" 2>&1 || true
STEP_TIMEOUT="${STEP_TIMEOUT:-240}"

run_step() {  # run_step NAME: runs the python function NAME in a fresh process, bounded
  timeout "$STEP_TIMEOUT" "$PY" - "$1" "$OUT" <<'PYEOF'
import json, os, sys, time, traceback
from pathlib import Path

step, out = sys.argv[1], Path(sys.argv[2])
res_path = out.with_suffix(".json")
results = json.loads(res_path.read_text()) if res_path.exists() else {}


def save(value):
    results[step] = value
    res_path.write_text(json.dumps(results, indent=2, default=str))


def timeit(fn, repeat=3):
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter(); fn(); best = min(best, time.perf_counter() - t)
    return best


def env():
    import torch
    info = {"nvidia_smi": Path(os.environ["VLTOOLS_HOME"], "nvidia-smi.txt").read_text().strip(),
            "torch": torch.__version__, "cuda": torch.cuda.is_available(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    try:
        import faiss
        info["faiss"] = faiss.__version__
        info["faiss_gpus"] = int(getattr(faiss, "get_num_gpus", lambda: 0)())
    except ImportError as e:
        info["faiss"] = f"missing: {e}"
    try:
        import ray
        info["ray"] = ray.__version__
    except ImportError:
        info["ray"] = None
    return info


def plan():
    from dataclasses import asdict
    from vltools.core.settings import Settings
    from vltools.models.device import current
    return {d: asdict(current(Settings(device=d))) for d in ("cuda", "cpu")}


def clip():
    import numpy as np, torch
    from PIL import Image
    from vltools.core.settings import Settings
    from vltools.models.clip import get_clip
    out = {}
    for dev, n, bs in (("cuda", 2048, 256), ("cpu", 64, 32)):
        b = get_clip("open_clip:ViT-B-32/random", Settings(device=dev))
        model = b.model
        x = torch.randn(bs, 3, 224, 224, device=dev, dtype=next(model.parameters()).dtype)
        def fwd():
            with torch.no_grad():
                for _ in range(n // bs):
                    model.encode_image(x)
            if dev == "cuda":
                torch.cuda.synchronize()
        s = timeit(fwd, repeat=2)
        imgs = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (256, 256, 3), dtype=np.uint8))
                for i in range(bs)]
        s2 = timeit(lambda: b.encode_images(imgs, batch_size=bs), repeat=2)
        out[dev] = {"precision": str(next(model.parameters()).dtype), "forward_images_per_s": n / s,
                    "encode_images_per_s_with_preprocessing": bs / s2, "batch": bs}
    out["gpu_over_cpu_forward"] = out["cuda"]["forward_images_per_s"] / out["cpu"]["forward_images_per_s"]
    return out


def faiss_search():
    import numpy as np, faiss
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((1_000_000, 512), dtype=np.float32); faiss.normalize_L2(xb)
    xq = rng.standard_normal((1000, 512), dtype=np.float32); faiss.normalize_L2(xq)
    cpu = faiss.IndexFlatIP(512); cpu.add(xb)
    out = {"n": len(xb), "queries": len(xq)}
    t = time.perf_counter(); d_cpu, i_cpu = cpu.search(xq, 10); out["cpu_s"] = time.perf_counter() - t
    if int(getattr(faiss, "get_num_gpus", lambda: 0)()) > 0:
        gpu = faiss.index_cpu_to_all_gpus(cpu)
        gpu.search(xq[:10], 10)
        t = time.perf_counter(); d_gpu, i_gpu = gpu.search(xq, 10); out["gpu_s"] = time.perf_counter() - t
        out["gpu_over_cpu"] = out["cpu_s"] / out["gpu_s"]
        out["same_top10_fraction"] = float(np.mean([set(a) == set(b) for a, b in zip(i_cpu, i_gpu)]))
    else:
        out["gpu"] = "faiss-gpu not installed (pip install -e '.[gpu]')"
    # the vltools path: a collection searched with VLTOOLS_DEVICE=cuda uses the GPU copy
    from vltools.core.settings import Settings
    from vltools.store import create_collection, open_collection
    s_cuda, s_cpu = Settings(device="cuda"), Settings(device="cpu")
    coll = create_collection("gpu_check", "image", model="demo", settings=s_cpu, shards=3)
    coll.add([{"id": f"v{i}"} for i in range(100_000)], xb[:100_000])
    a = open_collection("gpu_check", s_cpu).search_many(xq[:100], 10)
    gc = open_collection("gpu_check", s_cuda)
    b = gc.search_many(xq[:100], 10)
    out["vltools_sharded_collection_same_hits"] = [[i for i, _ in r] for r in a] == [[i for i, _ in r] for r in b]
    out["vltools_gpu_copy_used"] = type(gc._on_gpu(gc._load("faiss")).parts[0]).__name__
    return out


def rerank():
    from vltools.core.context import Context
    from vltools.core.registry import get_registry
    from vltools.core.settings import Settings
    passages = [{"id": str(i), "text": t} for i, t in enumerate([
        "Wing flutter is an aeroelastic instability of lifting surfaces at high speed.",
        "Banana bread is baked from mashed ripe bananas.", "Boundary layers thicken along a flat plate.",
        "Supersonic aircraft wings are tested for flutter in wind tunnels.", "The recipe needs two eggs.",
        "Heat transfer in hypersonic flow over blunt bodies.", "Jet engine noise near airports.",
        "Aeroelastic divergence and flutter speed of swept wings."])]
    out = {}
    for dev in ("cuda", "cpu"):
        ctx = Context(settings=Settings(device=dev))
        for tool in ("rerank.pointwise", "rerank.listwise"):
            inp = {"query": "flutter of aircraft wings", "passages": passages, "llm": "smollm2"}
            try:
                get_registry().call(tool, inp, ctx=ctx)  # load + warm-up
                t = time.perf_counter(); r = get_registry().call(tool, inp, ctx=ctx)
                out[f"{tool}@{dev}"] = {"seconds": time.perf_counter() - t, "top3": [h.id for h in r.hits[:3]]}
            except Exception as e:  # a tool not on this branch yet, or a backend error
                out[f"{tool}@{dev}"] = {"error": f"{type(e).__name__}: {e}"[:300]}
    return out


def text():
    import json as _j
    from vltools.core.settings import Settings
    from vltools.models.text import get_text_encoder
    data = Path("../shared/data/cranfield/corpus.jsonl")
    texts = ([(_j.loads(l).get("title") or "") + " " + _j.loads(l)["text"] for l in data.open()][:1400]
             if data.exists() else [f"document {i} about wing flutter and boundary layers" * 8 for i in range(1400)])
    out = {}
    for dev, n in (("cuda", 1400), ("cpu", 200)):
        enc = get_text_encoder("minilm", Settings(device=dev))
        s = timeit(lambda: enc.encode(texts[:n], batch_size=128), repeat=1)
        out[dev] = {"backend": enc.backend, "docs_per_s": n / s}
    return out


def ray_index():
    from vltools.core.settings import Settings
    from vltools.scale import IndexSpec, run_index
    from vltools.world.objects import generate_object_scene
    home = Path(os.environ["VLTOOLS_HOME"]); folder = home / "world"; folder.mkdir(exist_ok=True)
    for i in range(512):
        generate_object_scene(7000 + i, image_size=64).image.save(folder / f"o{i:04d}.png")
    out = {}
    for label, dev, ex, gpus in (("ray_gpu_actor", "cuda", "ray", 1.0), ("local_cpu", "cpu", "local", 0.0)):
        r = run_index(IndexSpec(collection=label, inputs=[str(folder)], executor=ex, workers=1, gpus_per_worker=gpus,
                                shard_size=128), Settings(device=dev, allowed_roots=[home]))
        out[label] = {"seconds": r.seconds, "embed_seconds": r.embed_seconds, "images_per_s": r.items / r.embed_seconds,
                      "count": r.count}
    return out


try:
    save({"ok": True, **globals()[step]()})
except BaseException as e:
    save({"ok": False, "error": f"{type(e).__name__}: {e}"[:500], "trace": traceback.format_exc()[-1500:]})
    raise SystemExit(1)
PYEOF
}

rm -f "$OUT.json"
for step in env plan clip faiss_search rerank text ray_index; do
  echo "== $step" >&2
  run_step "$step" || echo "   $step failed or timed out (see $OUT.json)" >&2
done
"$PY" - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1]); res = json.loads(out.with_suffix(".json").read_text())
lines = ["# GPU check (benchmarks/gpu_check.sh, measured)", ""]
for step, val in res.items():
    lines.append(f"## {step}")
    lines.append("```json")
    lines.append(json.dumps({k: v for k, v in val.items() if k != "trace"}, indent=2, default=str))
    lines.append("```")
out.with_suffix(".md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
