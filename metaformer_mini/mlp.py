"""The channel MLP of the MetaFormer block, and its activations."""
from __future__ import annotations

import torch
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

    Two 1x1 convolutions act on every token (position) alone, mixing only its channels:
    ``W1`` widens C to ``ratio * C``, ``sigma`` is the activation, ``W2`` narrows back to C.
    Input and output are (B, C, H, W).
    """

    def __init__(self, dim: int, ratio: float = 4.0, act: str = "gelu", bias: bool = True,
                 drop: float = 0.0):
        super().__init__()
        hidden = int(ratio * dim)
        self.fc1 = nn.Conv2d(dim, hidden, kernel_size=1, bias=bias)
        self.act = make_act(act)
        self.fc2 = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))
