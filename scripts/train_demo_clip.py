"""Train the demo CLIP's image tower: ``python scripts/train_demo_clip.py [--quick]``.

Data: world scenes (seeds from TRAIN_SEED_BASE on; evaluation uses other seed ranges) and the
**train** split of easy-VQA (captions derived from its questions and answers: the one shape's
colour and kind). Only ``vocab.TRAIN_TEMPLATES`` phrasings and world words are used; held-out
synonyms and templates never appear. The text tower (MiniLM) is locked, so caption embeddings are
computed once and cached in memory; each step then costs one image-tower forward/backward.

Loss: symmetric CLIP contrastive loss where captions with identical text are all positives,
plus (image -> text) the fixed bank of class prompts "a {colour} {shape}" as extra texts (positive
for single-object images of that class and, at lower weight, for each object of a multi-object
image; negative otherwise), plus an auxiliary cross-entropy over the class bank alone for
single-object images (the zero-shot classification objective, with all 87 other classes as negatives).
Single-object layouts are 2/3 of the world data, and a third of those draw only the confusable
shapes (circle, hexagon, square, rectangle).

Writes ``vltools/models/weights/demo_shapes_clip.safetensors`` (fp16, image tower + logit scale) and
``benchmarks/demo_clip_train_log.txt`` / ``.json``. Deterministic given the seed (CPU, 2 threads).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from vltools.world.splits import TRAIN_SEED_BASE, easy_vqa_labels

REPO = Path(__file__).resolve().parents[1]


def log(msg: str, fh=None) -> None:
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    print(line, file=sys.stderr, flush=True)
    if fh is not None:
        fh.write(line + "\n")
        fh.flush()


def to_array(img, size: int) -> np.ndarray:
    from PIL import Image

    img = img.convert("RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.BICUBIC)
    return np.asarray(img, dtype=np.uint8)


def build_data(layouts: int, renders: int, size: int, fh):
    """(images uint8 (N, size, size, 3), captions per image, class index per image or -1, class-bank weights).

    World: ``layouts`` scenes (seeds TRAIN_SEED_BASE + k), each rendered ``renders`` times with
    different render seeds (shades, rotation, background tint, edges, blur) under the same captions.
    """
    from PIL import Image

    from vltools.world import vocab
    from vltools.world.scene import generate_scene

    confusable = ("circle", "hexagon", "square", "rectangle")
    classes = class_prompts()
    cls_index = {c: i for i, c in enumerate(classes)}
    images, caps, cls, multi = [], [], [], []
    t0 = time.time()
    for k in range(layouts):
        for r in range(renders):
            # 2/3 of the layouts hold one object (colour x shape; a third of those one of the confusable
            # shapes), the rest 1-3 objects
            single = k % 3 != 2
            sc = generate_scene(TRAIN_SEED_BASE + k, render_seed=r, n_objects=1 if single else None,
                                shapes=confusable if single and k % 9 == 0 else None)
            images.append(to_array(sc.image, size))
            objs = sc.labels["objects"]
            c = -1
            cap = sc.captions[:2] + sc.captions[-1:]  # full, plain, and sized or relation phrasing
            if len(objs) == 1:
                c = cls_index[vocab.CLASSIFY_TEMPLATE.format(colour=objs[0]["colour"], shape=objs[0]["shape"])]
                cap.append(f"{objs[0]['colour']} {objs[0]['shape']}")  # bare label, as classify prompts use
            caps.append(cap)
            cls.append(c)
            multi.append(sorted({cls_index[vocab.CLASSIFY_TEMPLATE.format(colour=o["colour"], shape=o["shape"])]
                                 for o in objs}))
        if (k + 1) % 1000 == 0:
            log(f"world: {k + 1}/{layouts} layouts x {renders} renders ({time.time() - t0:.0f}s)", fh)
    evqa = easy_vqa_labels("train")
    tpls = [t for t in vocab.TRAIN_TEMPLATES if "{bg}" not in t]
    for path, colour, shape in evqa:
        images.append(to_array(Image.open(path), size))
        phrase = f"{vocab.article(colour)} {colour} {shape}"
        caps.append([t.format(obj=phrase) for t in tpls] + [f"{colour} {shape}"])
        cls.append(cls_index[vocab.CLASSIFY_TEMPLATE.format(colour=colour, shape=shape)])
        multi.append([cls[-1]])
    log(f"data: {layouts} world layouts x {renders} renders + {len(evqa)} easy-VQA train images "
        f"({time.time() - t0:.0f}s)", fh)
    # per image: weights over the class bank (1 for a single object's class, 0.5 / objects for each
    # class in a multi-object image)
    bank_w = np.zeros((len(images), len(classes)), dtype=np.float32)
    for i, ks in enumerate(multi):
        bank_w[i, ks] = 1.0 if cls[i] >= 0 else 0.5 / len(ks)
    return np.stack(images), caps, np.array(cls, dtype=np.int64), bank_w


def class_prompts() -> list[str]:
    from vltools.world import vocab

    return [vocab.CLASSIFY_TEMPLATE.format(colour=c, shape=s) for c in vocab.COLOUR_NAMES for s in vocab.SHAPES]


def encode_texts(model, tokenizer, texts: list[str], batch: int = 512):
    """Normalised locked-tower embeddings of ``texts`` (torch float32)."""
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    feats = torch.zeros(len(texts), model.text.output_dim if hasattr(model.text, "output_dim") else 384)
    pad = model.text.config.pad_token_id
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            sel = order[i : i + batch]
            ids = tokenizer([texts[j] for j in sel])
            used = int((ids != pad).sum(1).max())  # trim padding columns: mean pooling is masked anyway
            f = model.encode_text(ids[:, :used])
            feats[sel] = torch.nn.functional.normalize(f.float(), dim=-1)
    return feats


def cached_text_features(model, tokenizer, texts: list[str], cache: str | None):
    """Embeddings of ``texts``, reusing a {caption: vector} cache file (the tower is locked and fixed)."""
    import torch

    store: dict[str, np.ndarray] = {}
    if cache and Path(cache).is_file():
        z = np.load(cache, allow_pickle=False)
        store = dict(zip(z["texts"].tolist(), z["vecs"], strict=True))
    missing = [t for t in texts if t not in store]
    if missing:
        new = encode_texts(model, tokenizer, missing).numpy()
        store.update(zip(missing, new, strict=True))
        if cache:
            Path(cache).parent.mkdir(parents=True, exist_ok=True)
            keys = sorted(store)
            tmp = str(cache) + ".tmp.npz"
            np.savez(tmp, texts=np.array(keys), vecs=np.stack([store[k] for k in keys]).astype(np.float32))
            os.replace(tmp, cache)
    feats = torch.from_numpy(np.stack([store[t] for t in texts]).astype(np.float32))
    return feats, len(texts) - len(missing)


def normalise_batch(x_uint8, mean, std):
    import torch

    x = torch.from_numpy(x_uint8).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - mean) / std


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layouts", type=int, default=3000, help="number of world training layouts (scenes)")
    ap.add_argument("--renders", type=int, default=4, help="renderings of each layout")
    ap.add_argument("--epochs", type=float, default=7.0, help="passes over the training images")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--cls-weight", type=float, default=0.5, help="weight of the auxiliary class-bank loss")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "vltools" / "demo_clip_text_cache.npz"),
                    help="caption-embedding cache (MiniLM is locked, so embeddings never change)")
    ap.add_argument("--no-cache", action="store_true", help="embed every caption afresh")
    ap.add_argument("--quick", action="store_true", help="a few-minute run (800 layouts x 3, 2 epochs)")
    ap.add_argument("--out", default=None,
                    help="weights file (default: vltools/models/weights/demo_shapes_clip.safetensors here)")
    ap.add_argument("--log", default=str(REPO / "benchmarks" / "demo_clip_train_log"), help="log path without suffix")
    args = ap.parse_args(argv)
    if args.quick:
        args.layouts, args.renders, args.epochs = 800, 3, 2.0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # no busy-waiting threads on a shared machine

    import open_clip
    import torch
    from safetensors.torch import save_file

    from vltools.models import clip_demo

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    log_path = Path(args.log)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(str(log_path) + ".txt", "w")
    t_start = time.time()
    log(f"args: {vars(args)}", fh)

    model = clip_demo.build_demo_model()
    tokenizer = open_clip.get_tokenizer(clip_demo.register_config())
    size = clip_demo.IMAGE_SIZE
    images, caps, cls, bank_w = build_data(args.layouts, args.renders, size, fh)
    n = len(images)

    # Text embeddings: all unique captions plus the class-prompt bank, computed once (tower is locked).
    uniq = sorted({c for cs in caps for c in cs})
    t0 = time.time()
    model.text.eval()
    text_feats, cached = cached_text_features(model, tokenizer, uniq, None if args.no_cache else args.cache)
    log(f"text cache: {cached} of {len(uniq)} caption embeddings reused", fh)
    cap_id = {c: i for i, c in enumerate(uniq)}
    cap_ids = [np.array([cap_id[c] for c in cs]) for cs in caps]
    bank = encode_texts(model, tokenizer, class_prompts())
    log(f"text: {len(uniq)} unique captions + {len(bank)} class prompts embedded ({time.time() - t0:.0f}s)", fh)

    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    visual = model.visual
    visual.train()
    params = [p for p in visual.parameters()] + [model.logit_scale]
    decay = [p for p in visual.parameters() if p.ndim >= 2]
    no_decay = [p for p in visual.parameters() if p.ndim < 2] + [model.logit_scale]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr,
        betas=(0.9, 0.98),
    )
    steps_per_epoch = n // args.batch
    total = max(1, int(steps_per_epoch * args.epochs))
    warmup = min(200, total // 10)
    log(f"model: image tower {sum(p.numel() for p in visual.parameters()) / 1e6:.2f}M params; {n} images; "
        f"{total} steps of {args.batch}", fh)

    def lr_at(step: int) -> float:
        if step < warmup:
            return args.lr * (step + 1) / warmup
        p = (step - warmup) / max(1, total - warmup)
        return args.lr * 0.5 * (1 + math.cos(math.pi * p))

    history = []
    step = 0
    t_train = time.time()
    while step < total:
        order = rng.permutation(n)
        for b in range(steps_per_epoch):
            if step >= total:
                break
            idx = order[b * args.batch : (b + 1) * args.batch]
            x = normalise_batch(images[idx], mean, std)
            # light augmentation that keeps positions honest: +-2 px shifts, brightness jitter
            dx, dy = (int(v) for v in rng.integers(-2, 3, size=2))
            x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
            tid = np.array([cap_ids[i][rng.integers(len(cap_ids[i]))] for i in idx])
            t = text_feats[torch.from_numpy(tid)]
            same = torch.from_numpy((tid[:, None] == tid[None, :]).astype(np.float32))
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            f = torch.nn.functional.normalize(visual(x), dim=-1)
            scale = model.logit_scale.exp().clamp(max=100)
            logits = scale * f @ t.T
            tgt = same / same.sum(1, keepdim=True)
            # image -> text over batch captions + class bank
            c = torch.from_numpy(cls[idx])
            bank_logits = scale * f @ bank.T
            bank_tgt = torch.from_numpy(bank_w[idx])
            has = c >= 0
            all_logits = torch.cat([logits, bank_logits], 1)
            all_tgt = torch.cat([tgt, bank_tgt], 1)
            all_tgt = all_tgt / all_tgt.sum(1, keepdim=True)
            loss_i = -(all_tgt * all_logits.log_softmax(1)).sum(1).mean()
            loss_t = -(tgt * logits.T.log_softmax(1)).sum(1).mean()
            loss = 0.5 * (loss_i + loss_t)
            if has.any():  # zero-shot classification objective: the class bank alone
                loss = loss + args.cls_weight * torch.nn.functional.cross_entropy(bank_logits[has], c[has])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            step += 1
            if step % 50 == 0 or step == total:
                el = time.time() - t_train
                with torch.no_grad():
                    acc = (logits.argmax(1) == torch.arange(len(idx))).float().mean().item()
                history.append({"step": step, "loss": round(loss.item(), 4), "batch_acc": round(acc, 4),
                                "lr": lr_at(step), "logit_scale": round(scale.item(), 2), "elapsed_s": round(el, 1)})
                log(f"step {step}/{total} loss {loss.item():.4f} batch-acc {acc:.3f} scale {scale.item():.1f} "
                    f"lr {lr_at(step):.2e} {args.batch * step / el:.1f} img/s, cpu {time.process_time():.0f}s", fh)

    model.eval()
    out = Path(args.out) if args.out else REPO / "vltools" / "models" / "weights" / clip_demo.WEIGHTS_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in clip_demo.trained_state(model).items()}
    tmp = out.with_suffix(".tmp")
    meta = {"model": clip_demo.MODEL_NAME, "steps": str(total), "args": json.dumps(vars(args))}
    save_file(state, str(tmp), metadata=meta)
    os.replace(tmp, out)
    wall = time.time() - t_start
    cpu = time.process_time()
    log(f"saved {out} ({out.stat().st_size / 1e6:.1f} MB); total wall {wall:.0f}s, process CPU {cpu:.0f}s", fh)
    summary = {"args": vars(args), "images": n, "unique_captions": len(uniq), "steps": total,
               "wall_s": round(wall, 1), "process_cpu_s": round(cpu, 1), "train_s": round(time.time() - t_train, 1),
               "torch_threads": args.threads, "history": history, "weights": str(out.name)}
    Path(str(log_path) + ".json").write_text(json.dumps(summary, indent=1))
    fh.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
