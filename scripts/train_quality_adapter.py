"""Train the quality-aware alignment of `image.quality` (QualiCLIP, P12) at this machine's scale:
``python scripts/train_quality_adapter.py [--scenes N] [--steps N] [--seed S]``.

Data (generated here, deterministic): world v2 objects scenes of the train concepts (seeds from
vltools.world.splits.TRAIN_SEED_BASE + 500_000), two overlapping crops of each, degraded by the
world's ``blur``, ``noise``, ``jpeg`` and ``contrast`` at levels 0..5 (``pixelate`` is held out to
measure transfer). No human opinions are used (opinion-unaware).

Model: the frozen CLIP (``--clip``, default ``demo``) embeds every image once; a residual low-rank map
``f + (f U) V`` of the image embedding is trained (torch, CPU) with QualiCLIP's two losses: a margin
ranking loss making the antonym-prompt quality score fall with every degradation level of the same
crop, and a consistency loss pulling together the two crops' embeddings at the same kind and level;
plus a small penalty keeping embeddings near the originals. Writes
vltools/models/weights/quality_{clip}.npz and benchmarks/quality_adapter_train_log.{txt,json}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TRAIN_KINDS = ("blur", "noise", "jpeg", "contrast")


def crops(img, rng):
    w, h = img.size
    out = []
    for _ in range(2):
        f = rng.uniform(0.75, 0.9)
        cw, ch = int(w * f), int(h * f)
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        out.append(img.crop((x0, y0, x0 + cw, y0 + ch)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default="demo")
    ap.add_argument("--scenes", type=int, default=160)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    from vltools.core.settings import Settings
    from vltools.models.adapters import fingerprint, save_adapter
    from vltools.models.clip import get_clip
    from vltools.tools.image import QUALITY_PAIRS
    from vltools.world import generate_object_scene
    from vltools.world.degrade import degrade
    from vltools.world.splits import TRAIN_SEED_BASE

    t0 = time.time()
    backend = get_clip(args.clip, Settings(device="cpu"))
    rng = np.random.default_rng(args.seed)
    images = []
    for i in range(args.scenes):
        sc = generate_object_scene(TRAIN_SEED_BASE + 500_000 + i, split="train")
        for c in crops(sc.image, rng):
            for k in TRAIN_KINDS:
                images += [degrade(c, k, lv, seed=i) for lv in range(6)]
    feats = backend.encode_images(images, batch_size=64).reshape(args.scenes, 2, len(TRAIN_KINDS), 6, -1)
    t_embed = time.time() - t0
    texts = [t for pair in QUALITY_PAIRS for t in pair]
    temb, _ = backend.encode_texts(texts)
    tp = torch.tensor(temb[0::2], dtype=torch.float32)
    tn = torch.tensor(temb[1::2], dtype=torch.float32)
    scale = backend.logit_scale
    f = torch.tensor(feats, dtype=torch.float32)
    d = f.shape[-1]
    u = torch.nn.Parameter(torch.randn(d, args.rank) * 0.01)
    v = torch.nn.Parameter(torch.zeros(args.rank, d))
    opt = torch.optim.Adam([u, v], lr=3e-3)
    n_train = int(args.scenes * 0.85)  # the rest is a dev split (reported, never trained on)

    def forward(x):
        out = x + (x @ u) @ v
        return torch.nn.functional.normalize(out, dim=-1)

    def score(x):
        a = scale * (x @ tp.T)
        b = scale * (x @ tn.T)
        return torch.sigmoid(a - b).mean(-1)  # softmax over the pair's two prompts, averaged over pairs

    def srcc(xs):
        from scipy.stats import spearmanr

        s = score(forward(xs)).detach().numpy()  # (n, 2, kinds, 6)
        lv = np.broadcast_to(np.arange(6), s.shape)
        return float(spearmanr(-lv.ravel(), s.ravel()).statistic)

    log = []
    lv = torch.arange(6)
    hi = (lv[:, None] < lv[None, :]).float()  # level i better than level j
    for step in range(args.steps):
        idx = torch.randint(0, n_train, (32,))
        x = f[idx]
        g = forward(x)
        s = score(g)  # (b, 2, kinds, 6)
        diff = s[..., :, None] - s[..., None, :]  # s_i - s_j
        rank_loss = (torch.relu(0.05 - diff) * hi).sum() / (hi.sum() * s[..., 0].numel())
        cons_loss = (1 - (g[:, 0] * g[:, 1]).sum(-1)).mean()
        keep = (1 - (g * x).sum(-1)).mean()
        loss = rank_loss + 0.5 * cons_loss + 0.1 * keep
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == args.steps - 1:
            with torch.no_grad():
                log.append({"step": step, "loss": float(loss), "rank": float(rank_loss), "cons": float(cons_loss),
                            "keep": float(keep), "dev_srcc": srcc(f[n_train:])})
    with torch.no_grad():
        def base_srcc(xs):
            from scipy.stats import spearmanr

            s = score(xs).numpy()
            lvl = np.broadcast_to(np.arange(6), s.shape)
            return float(spearmanr(-lvl.ravel(), s.ravel()).statistic)

        summary = {"dev_srcc_plain": base_srcc(f[n_train:]), "dev_srcc_adapted": srcc(f[n_train:])}
    out = REPO / "vltools" / "models" / "weights" / f"quality_{args.clip.replace(':', '_').replace('/', '_')}.npz"
    save_adapter(out, args.clip, u.detach().numpy(), v.detach().numpy(), fingerprint(backend))
    record = {"command": " ".join(["python", *sys.argv]), "args": vars(args), "images": len(images),
              "embed_s": round(t_embed, 1), "wall_s": round(time.time() - t0, 1), "log": log, **summary,
              "weights": str(out.relative_to(REPO)), "bytes": out.stat().st_size}
    bench = REPO / "benchmarks"
    (bench / "quality_adapter_train_log.json").write_text(json.dumps(record, indent=1))
    lines = [f"{k}: {v}" for k, v in record.items() if k != "log"]
    lines += [json.dumps(r) for r in log]
    (bench / "quality_adapter_train_log.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
