"""A tiny learned class-agnostic instance-proposal net for world-v2-like images (`_objects`, method "learned").

Why learned: the superpixel + boundary-prior proposals merge touching or overlapping objects and miss
objects coloured like the background (benchmarks/README.md, issue 11). The world draws exact
per-object masks, so a small fully convolutional net can learn, with no class labels, (1) which
pixels belong to an object and (2) how deep inside its own object each pixel lies: the *centre-ness*,
each visible object's distance-to-its-boundary divided by its maximum (1 at an object's core, falling
to 0 at its edge and between two touching objects). Cores are then the markers of a watershed
(`vltools.tools._objects.learned_regions`), so two touching objects stay two even when their
colours are alike. Design: a four-level U-Net (16/32/48/64 channels, ~0.2 M parameters) on the image
resized to ``SIZE`` x ``SIZE`` (world objects scale with the image side; CPU, a few ms an image).
Trained by ``scripts/train_objectness.py`` on train-concept scenes only (never held-out concepts);
weights ``weights/objectness_demo.safetensors`` (fp16). Torch is imported only inside functions.
"""

from __future__ import annotations

import threading
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

SIZE = 64  # the net's input side (pixels)
WIDTHS = (16, 32, 48, 64)  # channels per U-Net level (4 levels: the receptive field spans a large object)
WEIGHTS_FILE = "objectness_demo.safetensors"
TRAIN_COMMAND = ("OMP_NUM_THREADS=1 nice -n 19 python scripts/train_objectness.py "
                 "(writes vltools/models/weights/objectness_demo.safetensors)")

_LOCK = threading.Lock()
_LOADED: dict[str, Any] = {}


def default_path() -> Path:
    return Path(str(resources.files("vltools.models") / "weights" / WEIGHTS_FILE))


def build(widths: tuple[int, ...] = WIDTHS) -> Any:
    """The net (torch): RGB in [0, 1] -> 2 logits per pixel (foreground, centre-ness), same size."""
    import torch
    from torch import nn

    def block(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                             nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = widths
            self.downs = nn.ModuleList([block(3 + 2, w[0])] + [block(w[i], w[i + 1]) for i in range(len(w) - 1)])
            self.ups = nn.ModuleList([block(w[i] + w[i + 1], w[i]) for i in range(len(w) - 1)])
            self.head = nn.Conv2d(w[0], 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, _, h, wd = x.shape
            ys = torch.linspace(-1, 1, h, device=x.device).view(1, 1, h, 1).expand(b, 1, h, wd)
            xs = torch.linspace(-1, 1, wd, device=x.device).view(1, 1, 1, wd).expand(b, 1, h, wd)
            x = torch.cat([x, xs, ys], 1)  # coordinates: the image border is mostly background
            skips = []
            for i, d in enumerate(self.downs):
                x = d(x if i == 0 else nn.functional.max_pool2d(x, 2))
                skips.append(x)
            for i in range(len(self.ups) - 1, -1, -1):
                x = nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
                x = self.ups[i](torch.cat([skips[i], x], 1))
            return self.head(x)

    return UNet()


def load(path: Path | None = None) -> Any:
    """The trained net in eval mode (cached; fp32 on CPU). Missing weights: BackendUnavailable."""
    p = Path(path) if path is not None else default_path()
    key = str(p)
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
        from vltools.core.errors import BackendUnavailable

        if not p.is_file():
            raise BackendUnavailable(f"the learned object-proposal weights are missing ({p})",
                                     hint=f"train them with {TRAIN_COMMAND}, or pass proposals: 'superpixels'")
        try:
            import torch
            from safetensors import safe_open
            from safetensors.torch import load_file
        except ImportError as err:
            raise BackendUnavailable("learned object proposals need torch and safetensors",
                                     hint="pip install torch safetensors, or pass proposals: 'superpixels'") from err
        with safe_open(str(p), "pt") as fh:
            meta = fh.metadata() or {}
        widths = tuple(int(x) for x in meta["widths"].split(",")) if "widths" in meta else WIDTHS
        net = build(widths)
        missing, unexpected = net.load_state_dict({k: v.float() for k, v in load_file(str(p)).items()}, strict=False)
        if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
            raise BackendUnavailable(f"the object-proposal weights {p} do not fit the net",
                                     hint=f"retrain them with {TRAIN_COMMAND}")
        net.eval()
        _LOADED[key] = (net, torch)
        return _LOADED[key]


def to_input(image: Any) -> np.ndarray:
    """The image as the net sees it: RGB resized to SIZE x SIZE, float32 in [0, 1], (3, SIZE, SIZE)."""
    from PIL import Image

    arr = np.asarray(image.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR), dtype=np.float32) / 255.0
    return arr.transpose(2, 0, 1)


def predict(image: Any, path: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel foreground probability and centre-ness (0..1), each (h, w) at the image's own size."""
    net, torch = load(path)
    w, h = image.size
    with torch.no_grad():
        x = torch.from_numpy(to_input(image))[None]
        y = torch.sigmoid(net(x))
        y = torch.nn.functional.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)[0].numpy()
    return y[0], y[1]
