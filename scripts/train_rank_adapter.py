"""Train the ranking adapter of `image.rank_by_text` (P02) at this machine's scale:
``python scripts/train_rank_adapter.py [--sets N] [--steps N] [--seed S]``.

Data (generated here, deterministic; scripts/_image2_data.py): world v2 sets of five images of one
**train** concept ordered by count ("more {plural}"), size ("bigger"), horizontal position ("further
left/right") or degradation level ("more degraded"), seeds from TRAIN_SEED_BASE + 600_000; the last
15% of sets are a dev split. The benchmark uses held-out concepts and other seeds.

Model: the frozen CLIP (``--clip``, default ``demo``) embeds every image once; a residual low-rank map
``f + (f U) V`` of the image embedding is trained (torch, CPU) with a pairwise logistic ranking loss
on the scaled cosine with the set's query text (P02's learning-to-rank objective; no learnable
prompts or attention branch). Writes vltools/models/weights/rank_{clip}.npz and
benchmarks/rank_adapter_train_log.{txt,json}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "scripts"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default="demo")
    ap.add_argument("--sets", type=int, default=60, help="sets per attribute")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import torch
    from scipy.stats import spearmanr

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    from _image2_data import ATTRIBUTES, ordering_set

    from vltools.core.settings import Settings
    from vltools.models.adapters import fingerprint, save_adapter
    from vltools.models.clip import get_clip
    from vltools.world.splits import TRAIN_SEED_BASE

    t0 = time.time()
    backend = get_clip(args.clip, Settings(device="cpu"))
    sets = [ordering_set(a, TRAIN_SEED_BASE + 600_000 + 1000 * ai + i, "train")
            for i in range(args.sets) for ai, a in enumerate(ATTRIBUTES)]
    feats = backend.encode_images([im for s in sets for im in s["images"]], batch_size=64).reshape(len(sets), 5, -1)
    temb, _ = backend.encode_texts([s["query"] for s in sets])
    vals = np.array([s["values"] for s in sets], dtype=np.float64)
    t_embed = time.time() - t0
    f = torch.tensor(feats, dtype=torch.float32)
    t = torch.tensor(temb, dtype=torch.float32)
    v = torch.tensor(vals, dtype=torch.float32)
    d = f.shape[-1]
    u = torch.nn.Parameter(torch.randn(d, args.rank) * 0.01)
    w = torch.nn.Parameter(torch.zeros(args.rank, d))
    opt = torch.optim.Adam([u, w], lr=3e-3)
    n_train = int(len(sets) * 0.85)
    scale = backend.logit_scale

    def scores(idx):
        x = f[idx] + (f[idx] @ u) @ w
        x = torch.nn.functional.normalize(x, dim=-1)
        return (x * t[idx][:, None, :]).sum(-1)

    def dev_srcc(adapted: bool) -> float:
        idx = torch.arange(n_train, len(sets))
        with torch.no_grad():
            s = scores(idx) if adapted else (f[idx] * t[idx][:, None, :]).sum(-1)
        return float(np.mean([spearmanr(a, b).statistic for a, b in zip(s.numpy(), vals[n_train:], strict=True)]))

    log = []
    for step in range(args.steps):
        idx = torch.randint(0, n_train, (32,))
        s = scores(idx)
        diff = scale * (s[:, :, None] - s[:, None, :])
        better = (v[idx][:, :, None] > v[idx][:, None, :]).float()
        rank_loss = (torch.nn.functional.softplus(-diff) * better).sum() / better.sum()
        x = f[idx] + (f[idx] @ u) @ w
        keep = (1 - torch.nn.functional.cosine_similarity(x, f[idx], dim=-1)).mean()
        loss = rank_loss + 0.1 * keep
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == args.steps - 1:
            log.append({"step": step, "loss": float(loss), "rank": float(rank_loss), "keep": float(keep),
                        "dev_srcc": dev_srcc(True)})
    summary = {"dev_srcc_plain": dev_srcc(False), "dev_srcc_adapted": dev_srcc(True)}
    out = REPO / "vltools" / "models" / "weights" / f"rank_{args.clip.replace(':', '_').replace('/', '_')}.npz"
    save_adapter(out, args.clip, u.detach().numpy(), w.detach().numpy(), fingerprint(backend))
    record = {"command": " ".join(["python", *sys.argv]), "args": vars(args), "sets": len(sets),
              "embed_s": round(t_embed, 1), "wall_s": round(time.time() - t0, 1), "log": log, **summary,
              "weights": str(out.relative_to(REPO)), "bytes": out.stat().st_size}
    (REPO / "benchmarks" / "rank_adapter_train_log.json").write_text(json.dumps(record, indent=1))
    lines = [f"{k}: {val}" for k, val in record.items() if k != "log"] + [json.dumps(r) for r in log]
    (REPO / "benchmarks" / "rank_adapter_train_log.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
