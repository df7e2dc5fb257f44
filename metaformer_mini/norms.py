"""The `Norm` of the MetaFormer block, for (B, C, H, W) feature maps.

PoolFormer normalizes each sample over all of (C, H, W) with GroupNorm(1, C); the paper's
ablation (Table 5) swaps in a per-position LayerNorm over C, BatchNorm, or no norm at all.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._names import lookup


class GroupNorm1(nn.GroupNorm):
    """GroupNorm with one group: mean and variance over (C, H, W) of each sample."""

    def __init__(self, num_channels: int, eps: float = 1e-5, bias: bool = True):
        super().__init__(1, num_channels, eps=eps)
        if not bias:
            self.bias = None


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels C at every position of a (B, C, H, W) map."""

    def __init__(self, num_channels: int, eps: float = 1e-5, bias: bool = True):
        super().__init__(num_channels, eps=eps, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class NoNorm(nn.Identity):
    """No normalization (the 'none' row of the ablation)."""

    def __init__(self, num_channels: int):
        super().__init__()


NORMS = {
    "group": lambda c: GroupNorm1(c),
    "group_nobias": lambda c: GroupNorm1(c, eps=1e-6, bias=False),
    "layer": lambda c: LayerNorm2d(c),
    "layer_nobias": lambda c: LayerNorm2d(c, eps=1e-6, bias=False),
    "batch": lambda c: nn.BatchNorm2d(c),
    "none": NoNorm,
}


def make_norm(name: str, num_channels: int) -> nn.Module:
    """Return the norm called ``name`` (one of ``NORMS``) for ``num_channels`` channels."""
    return lookup("norm", name, NORMS)(num_channels)
