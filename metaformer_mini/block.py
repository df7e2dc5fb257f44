r"""The MetaFormer block: the two residual sub-blocks of eqs. (2) and (3) of the paper."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torchvision.ops import StochasticDepth

from .mixers import TokenMixer
from .mlp import ChannelMLP
from .norms import make_norm


class LayerScale(nn.Module):
    """Multiply each channel by a learned scale, initialized small (CaiT): ``x * s[c]``."""

    def __init__(self, dim: int, init_value: float):
        super().__init__()
        self.scale = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.view(1, -1, 1, 1)


class NoShortcut(nn.Module):
    """The 'no residual' ablation: the shortcut carries nothing."""

    def forward(self, x: torch.Tensor) -> float:
        return 0.0


def _scale_or_identity(dim: int, init_value: Optional[float]) -> nn.Module:
    return nn.Identity() if init_value is None else LayerScale(dim, init_value)


class MetaFormerBlock(nn.Module):
    r"""One MetaFormer block, (B, C, H, W) -> (B, C, H, W):

    .. math::
        Y &= \mathrm{TokenMixer}(\mathrm{Norm}(X)) + X \\
        Z &= \sigma(\mathrm{Norm}(Y) W_1) W_2 + Y

    Each branch is scaled per channel by layer scale (when ``layer_scale_init`` is set) and
    dropped whole per sample by drop path (stochastic depth) during training. ``res_scale_init``
    scales the shortcut instead (MetaFormer Baselines). ``channel_mlp=False`` removes the second
    line and ``residual=False`` the ``+ X`` / ``+ Y`` (ablations).
    """

    def __init__(self, dim: int, token_mixer: TokenMixer, norm: str = "group",
                 act: str = "gelu", mlp_ratio: float = 4.0, mlp_bias: bool = True,
                 layer_scale_init: Optional[float] = 1e-5, res_scale_init: Optional[float] = None,
                 drop_path: float = 0.0, channel_mlp: bool = True, residual: bool = True):
        super().__init__()
        shortcut = (lambda: _scale_or_identity(dim, res_scale_init)) if residual else NoShortcut
        self.norm1 = make_norm(norm, dim)
        self.token_mixer = token_mixer
        self.layer_scale1 = _scale_or_identity(dim, layer_scale_init)
        self.shortcut1 = shortcut()
        self.drop_path = StochasticDepth(drop_path, mode="row")
        self.mlp = None
        if channel_mlp:
            self.norm2 = make_norm(norm, dim)
            self.mlp = ChannelMLP(dim, mlp_ratio, act=act, bias=mlp_bias)
            self.layer_scale2 = _scale_or_identity(dim, layer_scale_init)
            self.shortcut2 = shortcut()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.shortcut1(x) + self.layer_scale1(self.drop_path(self.token_mixer(self.norm1(x))))
        if self.mlp is not None:
            x = self.shortcut2(x) + self.layer_scale2(self.drop_path(self.mlp(self.norm2(x))))
        return x
