"""Train the demo CLIP v2's image tower: ``python scripts/train_demo_clip_v2.py [--minutes M | --steps N]``.

Data (all generated here, deterministic by ``--seed``):
- world v2 "objects" scenes of the **train** concepts only (``split="train"``: held-out concepts never
  appear in an image or caption), seeds from OBJ_SEED_BASE; half one object, half 2-5 objects;
- shapes-world scenes (v1's training seeds, 1,000,000 + k; see vltools.world.splits) so v1's skills stay;
- the easy-VQA **train** split (captions from its Q/A pairs).
Evaluation (scripts/eval_demo_clip_v2.py) uses other seed ranges and the held-out concepts.

Model: `vltools.models.clip_demo_v2` (open_clip CustomTextCLIP; locked MiniLM text tower, so caption
embeddings are computed once and cached on disk; ModifiedResNet image tower at 96 px, trained).

Loss (as v1, plus a dense term): symmetric contrastive loss over the batch's captions (identical
captions are all positives) with a fixed bank of class prompts as extra texts ("a {concept}" for
every train concept, "a {colour} {shape}" for the shapes) and an auxiliary cross-entropy over the bank
for single-object images; plus a dense loss: for each object the attention pool's value-path features
of the 3x3 cells its mask covers, averaged with the coverage, classified over the bank.

Continuation (``--init WEIGHTS``, used for the committed weights' second stage): start from trained
weights; ``--hypernym-captions`` adds "a dog, a mammal, an animal" (concept, subcategory, category) to
every single-object scene's captions; ``--soft-targets T`` replaces the one-hot class-bank target of
single-object images by a mix with MiniLM's own similarity profile of the concept's prompt over the
bank (softmax of text-text cosines / T, weight ``--soft-weight``), so the image space keeps the text
tower's geometry instead of pushing a dog away from a wolf; ``--shapes-repeat R`` shows every shapes
and easy-VQA image R times per epoch (against the shapes regression).

``--minutes M`` sets the number of steps from the throughput measured in the first steps so that the
whole run fits M minutes of wall time; the chosen ``steps`` is logged, and ``--steps N`` repeats a
run exactly. Writes vltools/models/weights/demo_v2_clip.safetensors (fp16) and
benchmarks/demo_clip_v2_train_log.{txt,json}.
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

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from _train_common import cached_text_features, log, to_array  # noqa: E402

from vltools.world.splits import TRAIN_SEED_BASE, easy_vqa_labels  # noqa: E402

OBJ_SEED_BASE = 20_000_000  # evaluation uses 29_000_000+; world.generate datasets use 1e10+
SHAPES_SEED_BASE = TRAIN_SEED_BASE  # 1_000_000: v1's training layouts
GEN_SIZE = 128  # scenes are drawn at 128 px (their captions are in the text cache) and fed at SIZE
SIZE = 96  # clip_demo_v2.IMAGE_SIZE
GRID = SIZE // 32  # the attention pool's grid: dense features are GRID x GRID


def cell_coverage(mask: np.ndarray, grid: int = GRID) -> np.ndarray:
    """Fraction of each grid cell (row-major, grid*grid) a boolean mask covers."""
    from PIL import Image

    im = Image.fromarray(mask.astype(np.uint8) * 255, "L").resize((grid, grid), Image.BOX)
    return (np.asarray(im, dtype=np.float32) / 255.0).ravel()


def class_bank(train_concepts: list[str]) -> list[str]:
    from vltools.world import vocab
    from vltools.world.objects import indefinite

    objs = [indefinite(c, c) for c in train_concepts]
    shapes = [vocab.CLASSIFY_TEMPLATE.format(colour=c, shape=s) for c in vocab.COLOUR_NAMES for s in vocab.SHAPES]
    return objs + shapes


def hypernym_caption(row: dict) -> str:
    """"a dog, a mammal, an animal": the concept with its subcategory and category as hypernyms."""
    from vltools.world.objects import indefinite
    from vltools.world.vocab import article

    parts = [indefinite(row["name"], row["name"])]
    for h in (row["subcategory"], row["category"]):
        phrase = f"{article(h)} {h}"
        if h != row["name"] and phrase not in parts:
            parts.append(phrase)
    return ", ".join(parts)


def build_data(args, fh):
    """Images (N, SIZE, SIZE, 3) uint8, captions per image, class per image (-1: several), bank weights,
    and the dense-loss objects (image index, class, 16 cell coverages)."""
    from PIL import Image

    from vltools.world import vocab
    from vltools.world.concept_table import concepts
    from vltools.world.objects import generate_object_scene, plural_of
    from vltools.world.scene import generate_scene

    train = [r["name"] for r in concepts("train")]
    bank = class_bank(train)
    bank_index = {c: i for i, c in enumerate(bank)}
    obj_cls = {name: i for i, name in enumerate(train)}
    aliases = {r["name"]: [a for a in r["aliases"] if a != plural_of(r["name"])] for r in concepts("train")}
    hyper = {r["name"]: hypernym_caption(r) for r in concepts("train")}
    images, caps, cls, multi = [], [], [], []
    d_img, d_cls, d_cov = [], [], []
    t0 = time.time()
    for k in range(args.objects):
        single = k % 2 == 0
        sc = generate_object_scene(OBJ_SEED_BASE + args.seed * 1_000_003 + k, split="train",
                                   n_objects=1 if single else None, tint_p=0.08, image_size=GEN_SIZE)
        i = len(images)
        images.append(to_array(sc.image, SIZE))
        objs = sc.labels["objects"]
        names = sorted({o["concept"] for o in objs})
        if any(n not in obj_cls for n in names):  # never: split="train"
            raise AssertionError("a held-out concept reached the training data")
        # few distinct captions per scene (each costs a text-tower pass on a shared CPU): the full one with
        # positions, (one object) a template or background phrasing, and the shared one-object captions;
        # the relation/count phrasings every 4th multi-object scene
        short = [c for c in sc.captions if c.count(" ") <= 3 and c.startswith(("a ", "an ", "some ", "two ", "three "))]
        rest = [c for c in sc.captions[1:] if c not in short]
        cap = [sc.captions[0]] + ([rest[k % len(rest)]] if rest and (single or k % 8 == 1) else []) + short
        if single:
            al = aliases[names[0]]
            if al:
                cap.append(f"a photo of {'an' if al[0][0] in 'aeiou' else 'a'} {al[k % len(al)]}")
            if args.hypernym_captions:
                cap.append(hyper[names[0]])
            cls.append(obj_cls[names[0]])
        else:
            cls.append(-1)
        caps.append(cap)
        multi.append([obj_cls[n] for n in names])
        for o, m in zip(objs, sc.visible_masks, strict=True):
            cov = cell_coverage(m)
            if cov.max() >= 0.2:
                d_img.append(i)
                d_cls.append(obj_cls[o["concept"]])
                d_cov.append(cov)
        if (k + 1) % 2000 == 0:
            log(f"objects: {k + 1}/{args.objects} scenes ({time.time() - t0:.0f}s)", fh)
    for k in range(args.shapes):
        single = k % 3 != 2
        sc = generate_scene(SHAPES_SEED_BASE + k, render_seed=k % 4, n_objects=1 if single else None)
        images.append(to_array(sc.image, SIZE))
        objs = sc.labels["objects"]
        cap = sc.captions[:2] + sc.captions[-1:]
        c = -1
        if len(objs) == 1:
            c = bank_index[vocab.CLASSIFY_TEMPLATE.format(colour=objs[0]["colour"], shape=objs[0]["shape"])]
            cap.append(f"{objs[0]['colour']} {objs[0]['shape']}")
        caps.append(cap)
        cls.append(c)
        multi.append(sorted({bank_index[vocab.CLASSIFY_TEMPLATE.format(colour=o["colour"], shape=o["shape"])]
                             for o in objs}))
    log(f"shapes: {args.shapes} scenes ({time.time() - t0:.0f}s)", fh)
    evqa = easy_vqa_labels("train")[: args.easy_vqa]
    tpls = [t for t in vocab.TRAIN_TEMPLATES if "{bg}" not in t]
    for path, colour, shape in evqa:
        images.append(to_array(Image.open(path), SIZE))
        phrase = f"{vocab.article(colour)} {colour} {shape}"
        caps.append([t.format(obj=phrase) for t in tpls] + [f"{colour} {shape}"])
        cls.append(bank_index[vocab.CLASSIFY_TEMPLATE.format(colour=colour, shape=shape)])
        multi.append([cls[-1]])
    log(f"data: {args.objects} object scenes + {args.shapes} shape scenes + {len(evqa)} easy-VQA train images "
        f"({time.time() - t0:.0f}s)", fh)
    bank_w = np.zeros((len(images), len(bank)), dtype=np.float32)
    for i, ks in enumerate(multi):
        bank_w[i, ks] = 1.0 if cls[i] >= 0 else 0.5 / len(ks)
    dense = (np.array(d_img, dtype=np.int64), np.array(d_cls, dtype=np.int64), np.stack(d_cov).astype(np.float32))
    return np.stack(images), caps, np.array(cls, dtype=np.int64), bank_w, bank, dense


def forward(visual, x):
    """(pooled embedding, dense value-path features (B, cells, dim)) of the ModifiedResNet tower in one pass."""
    import torch.nn.functional as F

    fmap = visual.layer4(visual.layer3(visual.layer2(visual.layer1(visual.stem(x)))))
    pooled = visual.attnpool(fmap)
    b, c, gh, gw = fmap.shape
    tokens = fmap.reshape(b, c, gh * gw).permute(0, 2, 1) + visual.attnpool.positional_embedding[1:]
    dense = visual.attnpool.c_proj(F.linear(tokens, visual.attnpool.v_proj.weight, visual.attnpool.v_proj.bias))
    return pooled, dense


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=18000, help="world v2 object scenes (train concepts)")
    ap.add_argument("--shapes", type=int, default=4000, help="shapes-world scenes")
    ap.add_argument("--easy-vqa", type=int, default=4000, help="easy-VQA train images (at most 4000)")
    ap.add_argument("--minutes", type=float, default=55.0, help="wall budget of the whole run (sets --steps)")
    ap.add_argument("--steps", type=int, default=None, help="exact number of steps (overrides --minutes)")
    ap.add_argument("--batch", type=int, default=96)
    ap.add_argument("--cls-weight", type=float, default=0.5, help="weight of the class-bank loss")
    ap.add_argument("--dense-weight", type=float, default=0.3, help="weight of the dense (cell) loss")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=150, help="linear warm-up steps")
    ap.add_argument("--init", default=None, help="continue from these weights (safetensors of this script)")
    ap.add_argument("--hypernym-captions", action="store_true", help='add "a dog, a mammal, an animal" captions')
    ap.add_argument("--soft-targets", type=float, default=0.0,
                    help="temperature of MiniLM's text-text similarity targets over the bank (0: one-hot only)")
    ap.add_argument("--soft-weight", type=float, default=0.5, help="weight of the soft targets in the bank target")
    ap.add_argument("--shapes-repeat", type=int, default=1, help="times each shapes/easy-VQA image is seen per epoch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "vltools" / "demo_clip_v2_text_cache.npz"),
                    help="caption-embedding cache (MiniLM is locked, so embeddings never change)")
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--out", default=None, help="weights (default: vltools/models/weights/demo_v2_clip.safetensors)")
    ap.add_argument("--log", default=str(REPO / "benchmarks" / "demo_clip_v2_train_log"), help="log path, no suffix")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    t_start = time.time()

    import open_clip
    import torch
    import torch.nn.functional as F
    from safetensors.torch import save_file

    from vltools.models import clip_demo_v2

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    log_path = Path(args.log)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(str(log_path) + ".txt", "w")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    log(f"args: {vars(args)}; device {device}; torch {torch.__version__}, {args.threads} threads", fh)

    model = clip_demo_v2.build_model()
    if args.init:
        from safetensors.torch import load_file

        state = {k: v.float() for k, v in load_file(args.init).items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith("text.") for k in missing):
            raise SystemExit(f"--init {args.init}: unexpected {unexpected[:3]}, missing {missing[:3]}")
        log(f"continuing from {args.init}", fh)
    tokenizer = open_clip.get_tokenizer(clip_demo_v2.register_config())
    images, caps, cls, bank_w, bank_texts, (d_img, d_cls, d_cov) = build_data(args, fh)
    n = len(images)
    uniq = sorted({c for cs in caps for c in cs})
    t0 = time.time()
    model.text.eval()
    text_feats, cached = cached_text_features(model, tokenizer, uniq, None if args.no_cache else args.cache)
    bank, _ = cached_text_features(model, tokenizer, bank_texts, None if args.no_cache else args.cache)
    log(f"text: {len(uniq)} unique captions ({cached} from the cache) + {len(bank)} class prompts "
        f"({time.time() - t0:.0f}s)", fh)
    cap_id = {c: i for i, c in enumerate(uniq)}
    cap_ids = [np.array([cap_id[c] for c in cs]) for cs in caps]
    by_img: dict[int, list[int]] = {}
    for j, i in enumerate(d_img.tolist()):
        by_img.setdefault(i, []).append(j)
    from vltools.world import vocab

    n_concepts = len(bank_texts) - len(vocab.COLOUR_NAMES) * len(vocab.SHAPES)  # concept prompts, then shapes
    soft = None
    if args.soft_targets > 0:
        # MiniLM's own similarity between the concept prompts (object classes only: the shape prompts
        # "a red circle" / "a blue circle" are near in text but must stay apart)
        tt = bank[:n_concepts] @ bank[:n_concepts].T
        soft = torch.zeros(n_concepts, len(bank))
        soft[:, :n_concepts] = torch.softmax(tt / args.soft_targets, dim=1)
        log(f"soft targets: T={args.soft_targets}, weight {args.soft_weight}; mean self-weight "
            f"{soft.diagonal().mean().item():.3f} over {n_concepts} concept prompts", fh)
    n_first = args.objects  # object scenes come first; shapes and easy-VQA after them
    epoch_pool = np.concatenate([np.arange(n)] + [np.arange(n_first, n)] * (args.shapes_repeat - 1))
    d_cov_t = torch.from_numpy(d_cov)
    d_cls_t = torch.from_numpy(d_cls)

    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    visual = model.visual.to(device)
    logit_scale = model.logit_scale.to(device)
    bank = bank.to(device)
    text_feats = text_feats.to(device)
    visual.train()
    decay = [p for p in visual.parameters() if p.ndim >= 2]
    no_decay = [p for p in visual.parameters() if p.ndim < 2] + [model.logit_scale]
    params = decay + no_decay
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98))
    log(f"model: image tower {sum(p.numel() for p in visual.parameters()) / 1e6:.2f}M params; {n} images; "
        f"{len(d_img)} dense objects; batch {args.batch}", fh)

    total = args.steps or 10**9
    warmup = args.warmup
    probe = 20

    def lr_at(step: int) -> float:
        if step < warmup:
            return args.lr * (step + 1) / warmup
        p = (step - warmup) / max(1, total - warmup)
        return args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))

    history = []
    step = 0
    t_train = time.time()
    t_probe = None
    while step < total:
        order = rng.permutation(epoch_pool)
        for b in range(len(order) // args.batch):
            if step >= total:
                break
            idx = order[b * args.batch : (b + 1) * args.batch]
            x = (torch.from_numpy(images[idx]).permute(0, 3, 1, 2).float().div_(255.0) - mean) / std
            dx, dy = (int(v) for v in rng.integers(-3, 4, size=2))
            x = torch.roll(x, shifts=(dy, dx), dims=(2, 3)).to(device)
            tid = np.array([cap_ids[i][rng.integers(len(cap_ids[i]))] for i in idx])
            t = text_feats[torch.from_numpy(tid).to(device)]
            same = torch.from_numpy((tid[:, None] == tid[None, :]).astype(np.float32)).to(device)
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            pooled, dense = forward(visual, x)
            f = F.normalize(pooled, dim=-1)
            scale = logit_scale.exp().clamp(max=100)
            logits = scale * f @ t.T
            tgt = same / same.sum(1, keepdim=True)
            c = torch.from_numpy(cls[idx]).to(device)
            bank_logits = scale * f @ bank.T
            all_logits = torch.cat([logits, bank_logits], 1)
            all_tgt = torch.cat([tgt, torch.from_numpy(bank_w[idx]).to(device)], 1)
            all_tgt = all_tgt / all_tgt.sum(1, keepdim=True)
            loss_i = -(all_tgt * all_logits.log_softmax(1)).sum(1).mean()
            loss_t = -(tgt * logits.T.log_softmax(1)).sum(1).mean()
            loss = 0.5 * (loss_i + loss_t)
            has = c >= 0
            if has.any():
                tgt_b = F.one_hot(c[has], len(bank)).float()
                if soft is not None:
                    obj = c[has] < n_concepts
                    tgt_b[obj] = (1 - args.soft_weight) * tgt_b[obj] + args.soft_weight * soft.to(device)[c[has][obj]]
                loss = loss - args.cls_weight * (tgt_b * bank_logits[has].log_softmax(1)).sum(1).mean()
            rows = [(pos, j) for pos, i in enumerate(idx.tolist()) for j in by_img.get(i, [])]
            if rows and args.dense_weight > 0:
                pos_t = torch.tensor([r[0] for r in rows], device=device)
                obj_t = torch.tensor([r[1] for r in rows])
                cov = d_cov_t[obj_t].to(device)
                w = cov * (cov >= 0.2)
                w = w / w.sum(1, keepdim=True)
                cell = F.normalize(dense[pos_t], dim=-1)  # (M, 16, dim)
                region = F.normalize((w[:, :, None] * cell).sum(1), dim=-1)
                loss = loss + args.dense_weight * F.cross_entropy(scale * region @ bank.T, d_cls_t[obj_t].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            step += 1
            if step == 5:
                t_probe = time.time()
            if args.steps is None and step == 5 + probe:
                rate = probe / (time.time() - t_probe)  # steps per second
                left = args.minutes * 60 - (time.time() - t_start) - 60  # a minute for saving
                total = max(step + 1, int(step + 0.95 * left * rate))
                log(f"throughput {rate * args.batch:.1f} img/s -> {total} steps in the {args.minutes} min budget "
                    f"(repeat with --steps {total})", fh)
            if step % 50 == 0 or step == total:
                el = time.time() - t_train
                with torch.no_grad():
                    acc = (logits.argmax(1) == torch.arange(len(idx), device=device)).float().mean().item()
                history.append({"step": step, "loss": round(loss.item(), 4), "batch_acc": round(acc, 4),
                                "lr": lr_at(step), "logit_scale": round(scale.item(), 2), "elapsed_s": round(el, 1)})
                log(f"step {step}/{total} loss {loss.item():.4f} batch-acc {acc:.3f} scale {scale.item():.1f} "
                    f"lr {lr_at(step):.2e} {args.batch * step / el:.1f} img/s, cpu {time.process_time():.0f}s", fh)

    model.eval()
    out = Path(args.out) if args.out else clip_demo_v2.weights_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if not k.startswith("text.")}
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    tmp = out.with_suffix(".tmp")
    meta = {"model": clip_demo_v2.MODEL_NAME, "steps": str(total), "args": json.dumps(vars(args))}
    save_file(state, str(tmp), metadata=meta)
    os.replace(tmp, out)
    wall = time.time() - t_start
    cpu = time.process_time()
    log(f"saved {out} ({out.stat().st_size / 1e6:.1f} MB); {total} steps; total wall {wall:.0f}s, "
        f"process CPU {cpu:.0f}s, device {device}", fh)
    summary = {"args": vars(args), "device": device, "images": n, "unique_captions": len(uniq), "steps": total,
               "wall_s": round(wall, 1), "process_cpu_s": round(cpu, 1), "train_s": round(time.time() - t_train, 1),
               "torch_threads": args.threads, "history": history, "weights": out.name,
               "repeat": f"python scripts/train_demo_clip_v2.py --steps {total} --objects {args.objects} "
               f"--shapes {args.shapes} --easy-vqa {args.easy_vqa} --batch {args.batch} --seed {args.seed}"}
    Path(str(log_path) + ".json").write_text(json.dumps(summary, indent=1))
    fh.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
