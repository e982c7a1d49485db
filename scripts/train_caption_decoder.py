"""Train the text-only caption decoder of `caption.zero_shot` (P01 MacCap):
``python scripts/train_caption_decoder.py [--clip demo] [--corpus captions.txt] [--minutes M | --steps N]``.

Text only: the decoder learns to reconstruct each caption from its CLIP **text** embedding with
Gaussian noise injected (MacCap / CapDec), so that at test time it decodes from an image embedding.
No image is used for training; the image tower is used once, on a few scenes, to *calibrate* the
noise norm to the measured image-caption gap (``--noise auto``: the image-text gap is first removed
as a mean offset, stored with the weights and added to image embeddings at test time; then the
noise norm r that makes the
expected cosine between a clean and a noisy text embedding equal the mean best image-caption cosine,
1 / sqrt(1 + r^2) = c), which is logged. ``--noise proj`` (the committed decoder) calibrates instead
against what `caption.zero_shot` decodes by default: the image embedding projected onto the caption
memory (DeCap; ``--memory-size`` captions of the corpus, stored int8 with the weights, and
``--temperature``), whose mean cosine c to its nearest memory caption gives r the same way.

Corpus: by default the captions of world v2 "objects" scenes of the **train** concepts (seeds
20,000,000 + k, the demo CLIP's training range; held-out concepts never appear), or one caption
per line from ``--corpus``, or the captions of an embedding cache (``--corpus-cache``: the committed
decoder was trained on the cache ``scripts/train_demo_clip_v2.py`` writes, i.e. the demo CLIP's
own training captions — train concepts, shapes world, easy-VQA train — already embedded).
Text embeddings are cached in ``~/.cache/vltools/`` (the demo CLIP's
text tower is locked, so they never change; the demo CLIP training's cache is read too).

Writes ``vltools/models/weights/caption_decoder_demo.safetensors`` (fp16, vocabulary and settings in
the metadata) or ``--out``, and ``benchmarks/caption_decoder_train_log.{txt,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from _train_common import log  # noqa: E402

OBJ_SEED_BASE = 20_000_000
CACHE = Path.home() / ".cache" / "vltools" / "caption_decoder_text_cache.npz"
DEMO_CACHE = Path.home() / ".cache" / "vltools" / "demo_clip_v2_text_cache.npz"


def world_captions(n: int) -> list[str]:
    from vltools.world import generate_object_scene

    caps: list[str] = []
    for k in range(n):
        caps += generate_object_scene(OBJ_SEED_BASE + k, split="train").captions
    return caps


def embed(clip, texts: list[str], cache_paths: list[Path], fh) -> np.ndarray:
    store: dict[str, np.ndarray] = {}
    for p in cache_paths:
        if p.is_file():
            z = np.load(p, allow_pickle=False)
            store.update(zip(z["texts"].tolist(), z["vecs"], strict=True))
    missing = [t for t in dict.fromkeys(texts) if t not in store]
    log(f"embedding {len(missing)} captions ({len(texts) - len(missing)} cached)", fh)
    for i in range(0, len(missing), 512):
        part = missing[i:i + 512]
        e, _ = clip.encode_texts(part, batch_size=128)
        store.update(zip(part, e, strict=True))
        log(f"  {min(i + 512, len(missing))}/{len(missing)}", fh)
    if missing:
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        keep = sorted(set(texts))
        tmp = str(CACHE) + ".tmp.npz"
        np.savez(tmp, texts=np.array(keep), vecs=np.stack([store[k] for k in keep]).astype(np.float32))
        os.replace(tmp, CACHE)
    return np.stack([store[t] for t in texts]).astype(np.float32)


def calibrate(clip, n: int, text_mean: np.ndarray, fh) -> tuple[float, np.ndarray]:
    """(noise norm, gap vector) from ``n`` training scenes' images: the gap is the mean text embedding
    minus the mean image embedding (the modality gap is mostly a constant offset); the noise norm r
    makes a clean-vs-noisy cosine 1 / sqrt(1 + r^2) equal the mean best cosine between a shifted
    image embedding and its captions. No caption is ever decoded from an image here."""
    from vltools.world import generate_object_scene

    scenes = [generate_object_scene(OBJ_SEED_BASE + k, split="train") for k in range(n)]
    img = clip.encode_images([s.image for s in scenes])
    gap = text_mean - img.mean(0)
    shifted = img + gap
    shifted /= np.linalg.norm(shifted, axis=1, keepdims=True)
    cos, raw = [], []
    for s, v, w in zip(scenes, shifted, img, strict=True):
        t, _ = clip.encode_texts(s.captions)
        cos.append(float((t @ v).max()))
        raw.append(float((t @ w).max()))
    c = float(np.mean(cos))
    r = float(np.sqrt(max(1.0 / max(c, 1e-3) ** 2 - 1.0, 0.0)))
    log(f"calibration on {n} scenes: best image-caption cosine {np.mean(raw):.3f} raw, {c:.3f} after the gap "
        f"shift -> noise norm {r:.3f}", fh)
    return r, gap.astype(np.float32)


def calibrate_projection(clip, n: int, memory: np.ndarray, temperature: float, fh) -> float:
    """Noise norm matched to what the decoder sees at test time with DeCap's memory projection: the
    image embedding of ``n`` training scenes projected onto the caption memory (softmax-weighted mix
    at ``temperature``) sits at mean cosine c from the nearest memory caption, and a noise norm r
    gives 1 / sqrt(1 + r^2) = c. Images are only embedded, never decoded or trained on."""
    from vltools.models.caption_decoder import project
    from vltools.world import generate_object_scene

    scenes = [generate_object_scene(OBJ_SEED_BASE + k, split="train") for k in range(n)]
    img = clip.encode_images([s.image for s in scenes])
    cos = [float((memory @ project(v, memory, temperature)).max()) for v in img]
    c = float(np.mean(cos))
    r = float(np.sqrt(max(1.0 / max(c, 1e-3) ** 2 - 1.0, 0.0)))
    log(f"projection calibration on {n} scenes (temperature {temperature}): projected image to nearest memory "
        f"caption cosine {c:.3f} -> noise norm {r:.3f}", fh)
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip", default="demo")
    ap.add_argument("--corpus", default=None, help="text file, one caption per line (default: world captions)")
    ap.add_argument("--corpus-cache", default=None,
                    help="an embedding cache (.npz with texts, vecs) whose captions are the corpus, e.g. the one "
                    "scripts/train_demo_clip_v2.py writes (~/.cache/vltools/demo_clip_v2_text_cache.npz)")
    ap.add_argument("--scenes", type=int, default=3000, help="world scenes whose captions form the corpus")
    ap.add_argument("--minutes", type=float, default=8.0, help="training wall-time budget")
    ap.add_argument("--steps", type=int, default=None, help="exact number of steps (overrides --minutes)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--noise", default="auto",
                    help="noise norm, or 'auto' (calibrated on --calib scenes against the gap-shifted image), or "
                    "'proj' (calibrated against the image projected onto the caption memory, DeCap)")
    ap.add_argument("--temperature", type=float, default=0.01,
                    help="memory-projection temperature stored with the weights (and used by --noise proj)")
    ap.add_argument("--memory-size", type=int, default=8000,
                    help="captions of the corpus stored (int8) as the projection memory; 0 = none")
    ap.add_argument("--drop", type=float, default=0.1, help="share of captions trained with the null condition")
    ap.add_argument("--init", default=None, help="continue training from these decoder weights (same vocabulary)")
    ap.add_argument("--calib", type=int, default=64, help="scenes used to calibrate the gap and the noise")
    ap.add_argument("--emb", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--exclude", default=None,
                    help="drop corpus captions containing any of these comma-separated words (e.g. the shapes "
                    "world's nouns, to train on the objects world only)")
    ap.add_argument("--min-count", type=int, default=1, help="words seen fewer times become <unk>")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--log", default=str(REPO / "benchmarks" / "caption_decoder_train_log"))
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from safetensors.torch import save_file

    from vltools.core.settings import get_settings
    from vltools.models import caption_decoder as cd
    from vltools.models.clip import get_clip

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    fh = open(args.log + ".txt", "w")  # noqa: SIM115
    log(f"args: {vars(args)}", fh)
    clip = get_clip(args.clip, get_settings())
    if args.corpus_cache:
        z = np.load(args.corpus_cache, allow_pickle=False)
        captions = z["texts"].tolist()
    elif args.corpus:
        captions = [ln.strip() for ln in Path(args.corpus).read_text().splitlines() if ln.strip()]
    else:
        captions = world_captions(args.scenes)
    captions = list(dict.fromkeys(captions))
    if args.exclude:
        drop = {w.strip() for w in args.exclude.split(",") if w.strip()}
        captions = [c for c in captions if not drop & set(cd.tokenize(c))]
    log(f"corpus: {len(captions)} distinct captions", fh)
    caches = [Path(args.corpus_cache)] if args.corpus_cache else []
    caches += [DEMO_CACHE, CACHE] if args.clip == "demo" else [CACHE]
    vecs = embed(clip, captions, caches, fh)
    noise, gap = calibrate(clip, args.calib, vecs.mean(0), fh)
    mem_idx = np.sort(np.random.default_rng(args.seed).permutation(len(captions))[: args.memory_size])
    if args.noise == "proj":
        noise = calibrate_projection(clip, args.calib, vecs[mem_idx], args.temperature, fh)
    elif args.noise != "auto":
        noise = float(args.noise)
    counts = Counter(w for c in captions for w in cd.tokenize(c))
    vocab = cd.SPECIALS + sorted(w for w, n in counts.items() if n >= args.min_count)
    if args.init:  # keep the vocabulary of the weights we continue from
        from safetensors import safe_open

        with safe_open(args.init, "pt") as fh_init:
            vocab = json.loads(fh_init.metadata()["vocab"])
    index = {w: i for i, w in enumerate(vocab)}
    seqs = [[index[cd.BOS]] + [index.get(w, index[cd.UNK]) for w in cd.tokenize(c)] + [index[cd.EOS]]
            for c in captions]
    max_len = max(len(s) for s in seqs)
    toks = np.zeros((len(seqs), max_len), dtype=np.int64)
    for i, s in enumerate(seqs):
        toks[i, :len(s)] = s
    log(f"vocabulary {len(vocab)} words, longest caption {max_len - 2} tokens", fh)
    model = cd.build(len(vocab), vecs.shape[1], args.emb, args.hidden)
    if args.init:
        from safetensors.torch import load_file

        init = load_file(args.init)
        for k in ("gap", "memory", "memory_scale"):
            init.pop(k, None)
        model.load_state_dict({k: v.float() for k, v in init.items()})
        log(f"continued from {args.init}", fh)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    X = torch.from_numpy(vecs)
    T = torch.from_numpy(toks)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=0)
    t_train = time.time()
    budget = args.minutes * 60
    step, losses = 0, []
    total = args.steps
    while True:
        if total is not None and step >= total:
            break
        if total is None and time.time() - t_train > budget:
            break
        frac = step / total if total else (time.time() - t_train) / budget
        for g in opt.param_groups:
            g["lr"] = args.lr * (0.5 * (1 + np.cos(np.pi * min(frac, 1.0))))
        idx = torch.from_numpy(rng.integers(0, len(seqs), args.batch))
        c = X[idx]
        eps = torch.randn_like(c)
        eps = eps / eps.norm(dim=1, keepdim=True) * noise
        c = torch.nn.functional.normalize(c + eps, dim=-1)
        drop = torch.from_numpy(rng.random(args.batch) < args.drop)
        c = model.condition(c, drop)
        t = T[idx]
        used = int((t != 0).sum(1).max())
        t = t[:, :used]
        logits = model(c, t[:, :-1])
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), t[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % 200 == 0:
            log(f"step {step} loss {np.mean(losses[-200:]):.4f}", fh)
    wall_train = time.time() - t_train
    out = Path(args.out) if args.out else REPO / "vltools" / "models" / "weights" / cd.DEFAULT_FILES["demo"]
    meta = {"vocab": json.dumps(vocab), "dim_in": str(vecs.shape[1]), "emb": str(args.emb), "hidden": str(args.hidden),
            "clip": args.clip, "noise": f"{noise:.4f}", "steps": str(step), "seed": str(args.seed),
            "temperature": str(args.temperature), "memory": str(len(mem_idx)),
            "corpus": args.corpus_cache or args.corpus or f"world objects train scenes {OBJ_SEED_BASE}+k, "
            f"k<{args.scenes}"}
    state = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    state["gap"] = torch.from_numpy(gap).half()
    if len(mem_idx):
        q, scale = cd.quantize_memory(vecs[mem_idx])
        state["memory"], state["memory_scale"] = torch.from_numpy(q), torch.from_numpy(scale).half()
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out), metadata=meta)
    summary = {"steps": step, "final_loss_200": float(np.mean(losses[-200:])) if losses else None,
               "params": n_params, "vocab": len(vocab), "captions": len(captions), "noise": noise,
               "wall_total_s": round(time.time() - t0, 1), "wall_train_s": round(wall_train, 1),
               "bytes": out.stat().st_size, "out": str(out.relative_to(REPO)) if out.is_relative_to(REPO) else str(out),
               "args": vars(args)}
    log(f"done: {json.dumps(summary)}", fh)
    Path(args.log + ".json").write_text(json.dumps(summary, indent=2) + "\n")
    fh.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
