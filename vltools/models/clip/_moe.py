"""Mixture-of-experts layers for a CLIP image tower (CLIP-MoE, P37) and their save/load layout.

`adapt.upcycle_moe` replaces chosen blocks of an open_clip image tower with `MoE` modules: expert
copies of the block plus a learned linear router that sends each input to its top-k experts.
In a ViT the block is a transformer layer's MLP and routing is per token (as in the paper); in a
ModifiedResNet (the demo CLIP) the block is a whole Bottleneck and routing is per image (a conv
block has no independent tokens). Only the chosen experts run on each input (sparse dispatch).

A checkpoint with MoE layers records them under ``vltools_moe`` in its open_clip_config.json;
`apply_layout` rebuilds them on the dense model open_clip creates from the same config, before the
weights are loaded (vltools.models.clip._load). Needs torch (imported inside the functions; the
module class is built on first use so that importing this module stays light).
"""

from __future__ import annotations

import copy
from typing import Any

from vltools.core.errors import InvalidInput

LAYOUT_VERSION = 1
_MOE_CLASS: Any = None


def moe_class() -> Any:
    """The `MoE` torch module class (built once, on first use)."""
    global _MOE_CLASS
    if _MOE_CLASS is not None:
        return _MOE_CLASS
    import torch
    from torch import nn

    class MoE(nn.Module):
        """Top-k mixture of ``experts`` (copies of one block) with a linear router.

        ``kind`` "token": inputs (..., dim), each row routed on its own; "sample": inputs (B, C, H, W),
        each image routed on its mean-pooled features. Gates are the router's softmax renormalised over
        the chosen k. After a forward: ``load`` = share of routing slots per expert (detached) and, when
        gradients are on, ``aux`` = the Switch-Transformer load-balancing loss E * sum_e f_e * P_e.
        ``force`` (an expert index) routes every input to that expert alone (diagnostics).
        """

        def __init__(self, experts: list[nn.Module], top_k: int, kind: str, dim: int) -> None:
            super().__init__()
            if kind not in ("token", "sample"):
                raise ValueError(f"unknown MoE kind {kind!r}")
            self.experts = nn.ModuleList(experts)
            self.router = nn.Linear(dim, len(experts))
            self.top_k = int(top_k)
            self.kind = kind
            self.dim = int(dim)
            self.force: int | None = None
            self.load: Any = None
            self.aux: Any = None
            self.choices: Any = None  # (rows, k) expert indices of the last forward (detached)

        def forward(self, x: Any) -> Any:
            if self.kind == "token":
                flat = x.reshape(-1, x.shape[-1])
                feats = flat
            else:
                flat = x
                feats = x.mean(dim=(2, 3))
            n_exp = len(self.experts)
            probs = self.router(feats.to(self.router.weight.dtype)).float().softmax(-1)
            if self.force is not None:
                top_i = torch.full((len(flat), 1), int(self.force), dtype=torch.long, device=flat.device)
                gates = torch.ones(len(flat), 1, device=flat.device)
            else:
                top_v, top_i = probs.topk(min(self.top_k, n_exp), dim=-1)
                gates = top_v / top_v.sum(-1, keepdim=True)
            out = None
            for e, expert in enumerate(self.experts):
                rows, slot = (top_i == e).nonzero(as_tuple=True)
                if rows.numel() == 0:
                    continue
                y = expert(flat[rows])
                g = gates[rows, slot].to(y.dtype).reshape(-1, *([1] * (y.dim() - 1)))
                if out is None:
                    out = y.new_zeros((len(flat), *y.shape[1:]))
                out = out.index_add(0, rows, y * g)
            counts = torch.bincount(top_i.flatten(), minlength=n_exp).float()
            share = counts / counts.sum().clamp_min(1.0)
            self.load = share.detach()
            self.choices = top_i.detach()
            self.aux = n_exp * (share * probs.mean(0)).sum() if torch.is_grad_enabled() else None
            assert out is not None  # every row goes to at least one expert
            return out.reshape(*x.shape[:-1], out.shape[-1]) if self.kind == "token" else out

    _MOE_CLASS = MoE
    return MoE


# -- finding the blocks to upcycle --------------------------------------------------------------------
def get_module(root: Any, path: str) -> Any:
    m = root
    for part in path.split("."):
        m = m[int(part)] if part.isdigit() else getattr(m, part)
    return m


def set_module(root: Any, path: str, new: Any) -> None:
    parent_path, _, last = path.rpartition(".")
    parent = get_module(root, parent_path) if parent_path else root
    if last.isdigit():
        parent[int(last)] = new
    else:
        setattr(parent, last, new)


def find_targets(model: Any, layers: int) -> tuple[str, list[str], list[int]]:
    """(kind, module paths from the model root, input dims) of the last ``layers`` upcyclable blocks.

    Raises:
        InvalidInput: the image tower is neither an open_clip ViT nor a ModifiedResNet, or it is
            already a mixture of experts.
    """
    visual = model.visual
    moe = moe_class()
    if any(isinstance(m, moe) for m in visual.modules()):
        raise InvalidInput("the base model already has mixture-of-experts layers",
                           hint="upcycle a dense model (e.g. demo or an adapt.finetune checkpoint)")
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    if blocks is not None and len(blocks) and hasattr(blocks[0], "mlp"):
        idx = list(range(len(blocks)))[-layers:]
        dims = [int(blocks[i].mlp[0].in_features) for i in idx]
        return "token", [f"visual.transformer.resblocks.{i}.mlp" for i in idx], dims
    if all(hasattr(visual, f"layer{s}") for s in range(1, 5)):
        paths = [f"visual.layer{s}.{i}" for s in range(1, 5) for i in range(len(getattr(visual, f"layer{s}")))]
        paths = paths[-layers:]
        return "sample", paths, [int(get_module(model, p).conv1.in_channels) for p in paths]
    raise InvalidInput(f"cannot upcycle an image tower of type {type(visual).__name__}",
                       hint="use an open_clip ViT or ModifiedResNet CLIP (e.g. demo)")


def upcycle(model: Any, paths: list[str], dims: list[int], kind: str, expert_states: list[list[dict[str, Any]]],
            top_k: int, seed: int = 0) -> None:
    """Replace each block at ``paths`` by an MoE whose expert e has the weights ``expert_states[e][i]``
    (state dict of block i); the routers start small and random (seeded)."""
    import torch

    moe = moe_class()
    gen = torch.Generator().manual_seed(seed)
    for i, (path, dim) in enumerate(zip(paths, dims, strict=True)):
        base = get_module(model, path)
        experts = []
        for states in expert_states:
            e = copy.deepcopy(base)
            e.load_state_dict(states[i])
            experts.append(e)
        layer = moe(experts, top_k, kind, dim)
        p = next(base.parameters())
        with torch.no_grad():
            layer.router.weight.copy_(torch.randn(layer.router.weight.shape, generator=gen) * 0.02)
            layer.router.bias.zero_()
        set_module(model, path, layer.to(p.device, p.dtype))


def moe_layout(model: Any) -> dict[str, Any] | None:
    """The MoE layers of ``model`` as a JSON-able layout (None when it has none)."""
    import sys

    if "torch" not in sys.modules or _MOE_CLASS is None:
        return None
    layers = [{"path": name, "experts": len(m.experts), "top_k": m.top_k, "kind": m.kind, "dim": m.dim}
              for name, m in model.named_modules() if isinstance(m, _MOE_CLASS)]
    return {"version": LAYOUT_VERSION, "layers": layers} if layers else None


def apply_layout(model: Any, layout: dict[str, Any]) -> None:
    """Rebuild the MoE layers of ``layout`` on a dense ``model`` (weights are loaded afterwards).

    Raises:
        InvalidInput: the layout is malformed or names a block the model does not have.
    """
    moe = moe_class()
    try:
        if int(layout.get("version", 0)) != LAYOUT_VERSION:
            raise ValueError(f"layout version {layout.get('version')}")
        for layer in layout["layers"]:
            base = get_module(model, str(layer["path"]))
            n, k = int(layer["experts"]), int(layer["top_k"])
            if not 1 <= k <= n:
                raise ValueError(f"top_k {k} with {n} experts")
            new = moe([copy.deepcopy(base) for _ in range(n)], k, str(layer["kind"]), int(layer["dim"]))
            p = next(base.parameters())
            set_module(model, str(layer["path"]), new.to(p.device, p.dtype))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise InvalidInput(f"the checkpoint's vltools_moe layout does not fit its model: {err}",
                           hint="re-create the checkpoint with adapt.upcycle_moe") from None
