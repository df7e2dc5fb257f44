"""The channel MLP of the MetaFormer block, and its activations."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._names import lookup


class StarReLU(nn.Module):
    """StarReLU (MetaFormer Baselines): ``s * relu(x)**2 + b`` with learnable scalars s, b."""

    def __init__(self, scale: float = 1.0, bias: float = 0.0):
        super().__init__()
        self.scale = nn.Parameter(torch.full((1,), scale))
        self.bias = nn.Parameter(torch.full((1,), bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.relu(x) ** 2 + self.bias


class SquaredReLU(nn.Module):
    """Squared ReLU, ``relu(x)**2`` (used in the MLP head of ConvFormer and CAFormer)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) ** 2


ACTIVATIONS = {
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "starrelu": StarReLU,
    "squaredrelu": SquaredReLU,
}


def make_act(name: str) -> nn.Module:
    """Return a new activation called ``name`` (one of ``ACTIVATIONS``)."""
    return lookup("activation", name, ACTIVATIONS)()


class ChannelMLP(nn.Module):
    r"""The channel MLP: the :math:`\sigma(\mathrm{Norm}(Y) W_1) W_2` of eq. (3).

    Every token (position) is a row of C channels, multiplied by ``W1`` (C -> ``ratio * C``),
    passed through ``sigma``, multiplied by ``W2`` (back to C); tokens never mix. Input and
    output are (B, C, H, W). The weights are stored as 1x1 convolution kernels, the layout of
    the official checkpoints, and applied as the matrix products of the equation to the
    (B, H, W, C) tokens: a channels-last map already is that layout (no copy), and on a CPU
    these products train faster than 1x1 convolutions in fp32 and bf16
    (``benchmarks/throughput.py``).
    """

    def __init__(self, dim: int, ratio: float = 4.0, act: str = "gelu", bias: bool = True):
        super().__init__()
        hidden = int(ratio * dim)
        self.fc1 = nn.Conv2d(dim, hidden, kernel_size=1, bias=bias)
        self.act = make_act(act)
        self.fc2 = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.permute(0, 2, 3, 1).contiguous()  # (B, H, W, C): a row of channels per token
        hidden = self.act(F.linear(tokens, self.fc1.weight.flatten(1), self.fc1.bias))
        return F.linear(hidden, self.fc2.weight.flatten(1), self.fc2.bias).permute(0, 3, 1, 2)
