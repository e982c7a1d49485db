"""Train the temporal head of `video.ground` (R²-Tuning style, P30) on world-video events.

    nice -n 19 python scripts/train_video_ground.py --videos 500 --dev 100 --epochs 60 \
        --log benchmarks/video_ground_train_log.txt

Queries are the events' captions; targets per sampled frame (4 fps): inside the event or not, and
(inside) the distance in frames to the event's start and end. Features come from the same code as
the tool (`vltools.tools.video.ground.query_features` on `encode_video`). The epoch with the best
dev R1@0.5 is kept; writes ``vltools/models/weights/video_ground_head.safetensors`` (~50 KB).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _train_common import log as _log  # noqa: E402
from _video_world import GROUND_DEV, GROUND_TRAIN, world_queries  # noqa: E402


def examples(items: list[dict]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    from vltools.tools.video.ground import query_features

    out = []
    for it in items:
        t = np.asarray(it["ff"].times)
        for e in it["events"]:
            x = query_features(it["ff"], e["q"])
            inside = (t >= e["start"]) & (t <= e["end"])
            if not inside.any():
                inside[int(np.argmin(np.abs(t - (e["start"] + e["end"]) / 2)))] = True
            step = float(np.median(np.diff(t))) if len(t) > 1 else 0.25
            d_s = np.clip((t - e["start"]) / step, 0, None)
            d_e = np.clip((e["end"] - t) / step, 0, None)
            out.append((x, inside.astype(np.float32), d_s.astype(np.float32), d_e.astype(np.float32)))
    return out


def r1(items: list[dict], head, thr: float = 0.5) -> float:
    from vltools.tools.video import ground as g

    hits = n = 0
    for it in items:
        ff = it["ff"]
        step = float(np.median(np.diff(ff.times))) if len(ff.times) > 1 else 0.25
        for e in it["events"]:
            prob, d_s, d_e = g.run_head(g.query_features(ff, e["q"]), head)
            m = g.head_moments(ff.times, prob, d_s, d_e, step, ff.duration, 1)
            hits += bool(m) and g.iou((m[0][0], m[0][1]), (e["start"], e["end"])) >= thr
            n += 1
    return hits / max(n, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=500)
    ap.add_argument("--dev", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clip", default="demo")
    ap.add_argument("--out", default=None)
    ap.add_argument("--log", default=None)
    args = ap.parse_args()
    import torch
    from safetensors.torch import save_file

    from vltools.tools.video.ground import build_head, head_path

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    fh = open(args.log, "w") if args.log else None  # noqa: SIM115

    def log(msg: str) -> None:
        _log(msg, fh)

    t0 = time.time()
    log(f"args: {vars(args)}")
    with tempfile.TemporaryDirectory() as tmp:
        train = world_queries(GROUND_TRAIN, args.videos, Path(tmp) / "train", args.clip, log=log)
        dev = world_queries(GROUND_DEV, args.dev, Path(tmp) / "dev", args.clip, log=log)
    log(f"encoded {len(train)} train + {len(dev)} dev videos in {time.time() - t0:.0f} s")
    data = examples(train)
    log(f"{len(data)} training queries")
    head = build_head()
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    rng = np.random.default_rng(args.seed)
    best, best_state, history = -1.0, None, []
    for epoch in range(args.epochs):
        head.train()
        order = rng.permutation(len(data))
        total = 0.0
        for i in order:
            x, y, d_s, d_e = (torch.from_numpy(a) for a in data[i])
            out = head(x.T[None])[0]
            pos_w = torch.tensor(max(1.0, float((1 - y).sum() / max(y.sum(), 1))))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(out[0], y, pos_weight=pos_w)
            if y.sum() > 0:
                m = y > 0
                loss = loss + 0.5 * (torch.nn.functional.smooth_l1_loss(out[1][m] * 10, d_s[m])
                                     + torch.nn.functional.smooth_l1_loss(out[2][m] * 10, d_e[m]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
        sched.step()
        head.eval()
        dev_r1 = r1(dev, head)
        history.append({"epoch": epoch + 1, "loss": total / len(data), "dev_r1_0.5": dev_r1})
        log(f"epoch {epoch + 1}: loss {total / len(data):.4f}  dev R1@0.5 {dev_r1:.3f}")
        if dev_r1 > best:
            best, best_state = dev_r1, {k: v.detach().clone().contiguous() for k, v in head.state_dict().items()}
    out = Path(args.out) if args.out else head_path()
    save_file(best_state, str(out))
    n_params = sum(p.numel() for p in head.parameters())
    log(f"best dev R1@0.5 {best:.3f}; {n_params} parameters; wrote {out} ({out.stat().st_size} bytes) "
        f"in {time.time() - t0:.0f} s wall, {time.process_time():.0f} s CPU")
    if args.log:
        Path(args.log).with_suffix(".json").write_text(json.dumps(
            {"args": vars(args), "best_dev_r1_0.5": best, "params": n_params, "wall_s": round(time.time() - t0, 1),
             "cpu_s": round(time.process_time(), 1),
             "history": history}, indent=1))


if __name__ == "__main__":
    main()
