"""Train the re-identification adapter of `image.reidentify` (CLIP-ReIdent, P22) at this machine's
scale: ``python scripts/train_reid_adapter.py [--videos N] [--steps N] [--seed S]``.

Data (generated here, deterministic; scripts/_image2_data.py): world v2 videos of **train** concepts
(seeds from TRAIN_SEED_BASE + 700_000), three objects each drawn from a small shared pool so that
identities look alike across videos; crops of every track at frames 0, 8, 16, 24 (moves, tint
changes, passes). The last 15% of videos are a dev split (rank-1 reported).

Model: the frozen CLIP (``--clip``, default ``demo``) embeds every crop once; a residual low-rank map
``f + (f U) V`` is trained (torch, CPU) with CLIP-ReIdent's image-to-image InfoNCE (two crops of one
identity are positives, every other identity in the batch a negative). ``--negatives group``
draws each batch from the videos of one look-alike group (the same concepts recur across its videos,
so a batch holds the same-concept identities that re-identification confuses; tried in session 3, log
benchmarks/reid_adapter_train_log_group_negatives.*, not adopted: dev rank-1 unchanged); ``--negatives
random`` (default, the committed weights) draws identities at random from all groups. Writes
vltools/models/weights/reid_{clip}.npz and benchmarks/reid_adapter_train_log.{txt,json}.
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

FRAMES = (0, 8, 16, 24)


def rank1(q: np.ndarray, qid: list[str], g: np.ndarray, gid: list[str]) -> float:
    s = q @ g.T
    return float(np.mean([gid[int(row.argmax())] == i for row, i in zip(s, qid, strict=True)]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default="demo")
    ap.add_argument("--videos", type=int, default=160)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--negatives", choices=("group", "random"), default="random")
    ap.add_argument("--lr", type=float, default=3e-3)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    from _image2_data import _names, crops_of_tracks

    from vltools.core.settings import Settings
    from vltools.models.adapters import fingerprint, save_adapter
    from vltools.models.clip import get_clip
    from vltools.world.splits import TRAIN_SEED_BASE

    t0 = time.time()
    backend = get_clip(args.clip, Settings(device="cpu"))
    rng = np.random.default_rng(args.seed)
    names = _names("train")
    crops = []
    for i in range(args.videos):
        if i % 8 == 0:  # a new small pool every 8 videos: look-alike identities within a group
            pool = [str(n) for n in rng.choice(names, size=6, replace=False)]
        for c in crops_of_tracks(TRAIN_SEED_BASE + 700_000 + i, "train", pool, FRAMES):
            c["video"] = i
            crops.append(c)
    feats = backend.encode_images([c["image"] for c in crops], batch_size=64)
    t_embed = time.time() - t0
    ids = sorted({c["identity"] for c in crops})
    idx_of = {k: i for i, k in enumerate(ids)}
    y = np.array([idx_of[c["identity"]] for c in crops])
    n_train_video = int(args.videos * 0.85)
    train = np.array([c["video"] < n_train_video for c in crops])
    by_id: dict[int, list[int]] = {}
    for i in np.flatnonzero(train):
        by_id.setdefault(int(y[i]), []).append(int(i))
    multi = [k for k, v in by_id.items() if len(v) >= 2]
    by_group: dict[int, list[int]] = {}  # look-alike group (8 videos sharing a concept pool) -> identities
    for k in multi:
        by_group.setdefault(crops[by_id[k][0]]["video"] // 8, []).append(k)
    groups = sorted(by_group)
    f = torch.tensor(feats, dtype=torch.float32)
    d = f.shape[-1]
    u = torch.nn.Parameter(torch.randn(d, args.rank) * 0.01)
    w = torch.nn.Parameter(torch.zeros(args.rank, d))
    opt = torch.optim.Adam([u, w], lr=args.lr)

    def fwd(x):
        return torch.nn.functional.normalize(x + (x @ u) @ w, dim=-1)

    def dev(adapted: bool) -> float:
        dv = np.flatnonzero(~train)
        first = [i for i in dv if crops[i]["frame"] == FRAMES[0]]
        rest = [i for i in dv if crops[i]["frame"] != FRAMES[0]]
        with torch.no_grad():
            e = fwd(f).numpy() if adapted else feats
        return rank1(e[first], [crops[i]["identity"] for i in first], e[rest], [crops[i]["identity"] for i in rest])

    log = []
    for step in range(args.steps):
        if args.negatives == "group":
            chosen = by_group[groups[int(rng.integers(len(groups)))]]
        else:
            chosen = rng.choice(multi, size=min(48, len(multi)), replace=False)
        a, b = zip(*[rng.choice(by_id[int(k)], size=2, replace=False) for k in chosen], strict=True)
        za, zb = fwd(f[list(a)]), fwd(f[list(b)])
        logits = za @ zb.T / 0.07
        target = torch.arange(len(chosen))
        loss = 0.5 * (torch.nn.functional.cross_entropy(logits, target)
                      + torch.nn.functional.cross_entropy(logits.T, target))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == args.steps - 1:
            log.append({"step": step, "loss": float(loss), "dev_rank1": dev(True)})
    summary = {"crops": len(crops), "identities": len(ids), "dev_rank1_plain": dev(False),
               "dev_rank1_adapted": dev(True)}
    out = REPO / "vltools" / "models" / "weights" / f"reid_{args.clip.replace(':', '_').replace('/', '_')}.npz"
    save_adapter(out, args.clip, u.detach().numpy(), w.detach().numpy(), fingerprint(backend))
    record = {"command": " ".join(["python", *sys.argv]), "args": vars(args), "embed_s": round(t_embed, 1),
              "wall_s": round(time.time() - t0, 1), "log": log, **summary, "weights": str(out.relative_to(REPO)),
              "bytes": out.stat().st_size}
    (REPO / "benchmarks" / "reid_adapter_train_log.json").write_text(json.dumps(record, indent=1))
    lines = [f"{k}: {val}" for k, val in record.items() if k != "log"] + [json.dumps(r) for r in log]
    (REPO / "benchmarks" / "reid_adapter_train_log.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
