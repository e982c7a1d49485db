"""Train the class-agnostic object-proposal net (`vltools.models.objectness`) on world v2 scenes.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 19 \
        python scripts/train_objectness.py --scenes 12000 --steps 3000 --log benchmarks/objectness_train_log.txt

Scenes: `vltools.world.generate_object_scene` objects theme, **train concepts only** (``split="train"``;
held-out concepts are never drawn), seeds 71,300,000 + k (training) and 71,400,000 + k (a small
validation set for the log), used by no benchmark or other script. 1-5 objects, the world's own
backgrounds, with more tints (``tint_p`` 0-0.4) and overlaps (``overlap_p`` 0.2-0.6) than its default,
sometimes smaller objects (``scale``), plus flips, random zoom-crops and brightness/contrast jitter,
so the net learns objects, not seeds. Targets from the world's exact visible masks: foreground
(their union) and centre-ness (each visible object's distance to its boundary over its maximum).
Loss: BCE on both. CPU, one thread, Adam with a cosine schedule; a fixed number of steps.
Writes ``vltools/models/weights/objectness_demo.safetensors`` (fp16) and a JSON log beside ``--log``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _train_common import log as _log  # noqa: E402

TRAIN_SEED = 71_300_000
VAL_SEED = 71_400_000


def centreness(visible: list[np.ndarray]) -> np.ndarray:
    """Per pixel: the distance to the edge of its (visible) object over that object's largest distance."""
    from scipy import ndimage as ndi

    out = np.zeros(visible[0].shape, np.float32) if visible else None
    for m in visible:
        if not m.any():
            continue
        d = ndi.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]
        out = np.maximum(out, d / d.max())
    return out


def example(seed: int, rng: np.random.Generator, size: int, augment: bool) -> tuple[np.ndarray, np.ndarray]:
    """One scene as (uint8 image (size, size, 3), float16 targets (2, size, size))."""
    from PIL import Image

    from vltools.world import generate_object_scene

    kw = {}
    if augment:
        kw = {"tint_p": float(rng.uniform(0, 0.4)), "overlap_p": float(rng.uniform(0.2, 0.6))}
        if rng.random() < 0.2:
            kw["scale"] = (0.12, float(rng.uniform(0.25, 0.45)))
    sc = generate_object_scene(seed, split="train", **kw)
    img = np.asarray(sc.image.convert("RGB"))
    vis = list(sc.visible_masks)
    h, w = img.shape[:2]
    fg = np.zeros((h, w), bool)
    for m in vis:
        fg |= m
    cn = centreness(vis) if vis else np.zeros((h, w), np.float32)
    if augment and rng.random() < 0.5:  # zoom-crop: 70-100% of the side
        s = int(round(rng.uniform(0.7, 1.0) * min(h, w)))
        y0, x0 = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        img, fg, cn = img[y0:y0 + s, x0:x0 + s], fg[y0:y0 + s, x0:x0 + s], cn[y0:y0 + s, x0:x0 + s]
    if augment and rng.random() < 0.5:
        img, fg, cn = img[:, ::-1], fg[:, ::-1], cn[:, ::-1]
    im = np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((size, size), Image.BILINEAR), np.float32)
    if augment and rng.random() < 0.5:
        im = (im - im.mean()) * rng.uniform(0.75, 1.25) + im.mean() + rng.uniform(-20, 20)
    t = [np.asarray(Image.fromarray(np.ascontiguousarray(a.astype(np.float32))).resize((size, size), Image.BILINEAR))
         for a in (fg, cn)]
    return np.clip(im, 0, 255).astype(np.uint8), np.stack(t).astype(np.float16)


def dataset(seed0: int, n: int, size: int, augment: bool, rng_seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(rng_seed)
    xs, ys = zip(*(example(seed0 + k, rng, size, augment) for k in range(n)), strict=True)
    return np.stack(xs), np.stack(ys)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=12000)
    ap.add_argument("--val", type=int, default=300)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "vltools" / "models" / "weights" / "objectness_demo.safetensors"))
    ap.add_argument("--log", default=str(REPO / "benchmarks" / "objectness_train_log.txt"))
    args = ap.parse_args(argv)
    import torch
    from safetensors.torch import save_file

    from vltools.models import objectness as ob

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    fh = open(args.log, "w")  # noqa: SIM115
    t0 = time.time()
    _log(f"args {vars(args)}", fh)
    x_tr, y_tr = dataset(TRAIN_SEED, args.scenes, ob.SIZE, True, args.seed)
    x_va, y_va = dataset(VAL_SEED, args.val, ob.SIZE, False, args.seed + 1)
    _log(f"data: {len(x_tr)} train scenes, {len(x_va)} val scenes, {time.time() - t0:.0f} s", fh)
    net = ob.build()
    n_params = sum(p.numel() for p in net.parameters())
    _log(f"net: {n_params} parameters", fh)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float32) / 255.0),
                torch.from_numpy(y.astype(np.float32)))

    def loss_of(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return bce(out[:, 0], y[:, 0]), bce(out[:, 1], y[:, 1]) * 2.0

    def validate() -> dict:
        net.eval()
        with torch.no_grad():
            ls = [loss_of(net(xb), yb) for xb, yb in (tensors(x_va[i:i + 100], y_va[i:i + 100])
                                                       for i in range(0, len(x_va), 100))]
        net.train()
        return {"val_fg": round(float(np.mean([a.item() for a, _ in ls])), 4),
                "val_centre": round(float(np.mean([b.item() for _, b in ls])), 4)}

    rng = np.random.default_rng(args.seed + 2)
    history = []
    net.train()
    for step in range(1, args.steps + 1):
        idx = rng.integers(0, len(x_tr), args.batch)
        xb, yb = tensors(x_tr[idx], y_tr[idx])
        lf, lc = loss_of(net(xb), yb)
        opt.zero_grad()
        (lf + lc).backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == args.steps:
            row = {"step": step, "fg": round(lf.item(), 4), "centre": round(lc.item(), 4), **validate(),
                   "seconds": round(time.time() - t0)}
            history.append(row)
            _log(json.dumps(row), fh)
    net.eval()
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in net.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_file(state, args.out, metadata={"seed": str(args.seed), "scenes": str(args.scenes), "steps": str(args.steps),
                                          "widths": ",".join(map(str, ob.WIDTHS))})
    _log(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes); wall {time.time() - t0:.0f} s", fh)
    Path(args.log).with_suffix(".json").write_text(json.dumps(
        {"args": vars(args), "parameters": n_params, "history": history,
         "wall_seconds": round(time.time() - t0)}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
