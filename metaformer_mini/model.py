"""MetaFormer: a stem, four stages of MetaFormer blocks with downsampling between them, a head.

The general architecture of the paper's Figure 2 with PoolFormer's 4-stage hierarchy (Figure 3):
stage i works on an H/2^(i+2) x W/2^(i+2) token grid with ``dims[i]`` channels. Everything that
distinguishes PoolFormer from a ViT-, Mixer- or ConvFormer-style MetaFormer is a field of
:class:`MetaFormerConfig`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ._io import plain
from ._names import check_range, lookup
from .block import MetaFormerBlock
from .embedding import PatchEmbed
from .mixers import MIXERS, check_pool_size, make_mixer
from .mlp import ACTIVATIONS, SquaredReLU
from .norms import NORMS, GroupNorm1

GRID_MIXERS = ("spatial_mlp", "random")  # mixers whose weights fix the token grid


@dataclass
class MetaFormerConfig:
    """Every choice that defines a MetaFormer; the registry names a few of them."""

    depths: tuple[int, ...] = (2, 2, 6, 2)
    dims: tuple[int, ...] = (64, 128, 320, 512)
    token_mixers: tuple[str, ...] = ("pooling",) * 4
    pool_size: int = 3
    norm: str = "group"
    act: str = "gelu"
    mlp_ratio: float = 4.0
    mlp_bias: bool = True
    channel_mlp: bool = True
    residual: bool = True
    layer_scale_init: Optional[float] = 1e-5
    res_scale_init: tuple[Optional[float], ...] = (None,) * 4
    drop_path_rate: float = 0.0
    stem: tuple[int, int, int] = (7, 4, 2)
    downsample: tuple[int, int, int] = (3, 2, 1)
    stem_norm: str = "none"
    downsample_norm: str = "none"
    head: str = "linear"
    head_norm: str = "group"
    head_dropout: float = 0.0
    img_size: int = 224
    in_chans: int = 3
    num_classes: int = 1000

    def __post_init__(self) -> None:
        for name in ("depths", "dims", "token_mixers", "res_scale_init", "stem", "downsample"):
            setattr(self, name, tuple(getattr(self, name)))
        stages = len(self.depths)
        for name in ("dims", "token_mixers", "res_scale_init"):
            if len(getattr(self, name)) != stages:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries but depths has "
                                 f"{stages}: give one per stage, e.g. {name}={getattr(self, name)[:1] * stages}")
        for mixer in self.token_mixers:
            lookup("token mixer", mixer, MIXERS)
        lookup("norm", self.norm, NORMS)
        lookup("norm", self.stem_norm, NORMS)
        lookup("norm", self.downsample_norm, NORMS)
        lookup("activation", self.act, ACTIVATIONS)
        lookup("head", self.head, {"linear": 0, "mlp": 0})
        lookup("head norm", self.head_norm, {"group": 0, "layer": 0})
        for name, interval in (("mlp_ratio", "(0, inf)"), ("drop_path_rate", "[0, 1)"),
                               ("head_dropout", "[0, 1)"), ("in_chans", "[1, inf)"),
                               ("num_classes", "[1, inf)")):
            check_range(name, getattr(self, name), interval)
        if self.layer_scale_init is not None:  # None: no layer scale
            check_range("layer_scale_init", self.layer_scale_init, "[0, inf)")
        for i, scale in enumerate(self.res_scale_init):
            if scale is not None:
                check_range(f"res_scale_init[{i}]", scale, "[0, inf)")
        check_pool_size(self.pool_size)
        for name in ("stem", "downsample"):
            kernel, stride, padding = getattr(self, name)
            if kernel < 1 or stride < 1 or not 0 <= padding < kernel:
                raise ValueError(f"{name}=(kernel, stride, padding) needs kernel >= 1, stride >= 1 "
                                 f"and 0 <= padding < kernel, got {getattr(self, name)}")
        for name in ("depths", "dims"):
            for i, value in enumerate(getattr(self, name)):
                if not isinstance(value, int):
                    raise ValueError(f"{name}[{i}] must be an int, got {value!r}")
                check_range(f"{name}[{i}]", value, "[1, inf)")
        if self.img_size < self.min_img_size:
            raise ValueError(f"img_size={self.img_size} is too small: this model downsamples "
                             f"by {self.min_img_size} and needs at least that many pixels")

    @property
    def grids(self) -> list[int]:
        """Return the side of the token grid of each stage for an img_size x img_size input."""
        k, s, p = self.stem
        side = (self.img_size + 2 * p - k) // s + 1
        sides = [side]
        k, s, p = self.downsample
        for _ in self.depths[1:]:
            side = (side + 2 * p - k) // s + 1
            sides.append(side)
        return sides

    @property
    def min_img_size(self) -> int:
        """Return the total stride of the stem and downsamplings: the smallest sensible input side."""
        return self.stem[1] * self.downsample[1] ** (len(self.depths) - 1)

    def to_dict(self) -> dict:
        """Return the config as plain JSON-friendly data (tuples become lists)."""
        return plain(dataclasses.asdict(self))


class MlpHead(nn.Module):
    """The MLP classifier head of ConvFormer/CAFormer: Linear, SquaredReLU, LayerNorm, Linear."""

    def __init__(self, dim: int, num_classes: int, ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        hidden = int(ratio * dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = SquaredReLU()
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.norm(self.act(self.fc1(x)))))


class Stage(nn.Module):
    """One stage: a downsampling InputEmb (or the stem) followed by ``depth`` MetaFormer blocks."""

    def __init__(self, downsample: nn.Module, blocks: list[MetaFormerBlock]):
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class MetaFormer(nn.Module):
    """A hierarchical MetaFormer classifier, (B, 3, H, W) images -> (B, num_classes) logits.

    ``forward_stages`` returns every stage's (B, C_i, H_i, W_i) map, ``forward_features`` the
    last one, ``forward_head`` the logits. The PoolFormer head normalizes the last map with
    GroupNorm(1, C), then averages over positions, then applies a Linear layer, as the official
    code does; timm's port averages first and normalizes the pooled vector, so with the same
    weights its features equal ours but its logits do not (see :mod:`metaformer_mini.weights`).

    On a CPU the stages run on channels-last maps, whatever the layout of the input: the channel
    MLP's matrix products then read each token's channels in place, and no element-wise op has to
    combine a channels-first with a channels-last tensor (``benchmarks/throughput.py`` times both
    input layouts). The values are the same in either layout.
    """

    def __init__(self, config: MetaFormerConfig):
        super().__init__()
        self.config = cfg = config
        k, s, p = cfg.stem
        self.stem = PatchEmbed(cfg.in_chans, cfg.dims[0], k, s, p, norm=cfg.stem_norm)
        n_blocks = sum(cfg.depths)  # drop-path rate rises linearly from 0 to drop_path_rate
        drop_rates = [cfg.drop_path_rate * i / max(n_blocks - 1, 1) for i in range(n_blocks)]
        k, s, p = cfg.downsample
        stages = []
        for i, (depth, dim) in enumerate(zip(cfg.depths, cfg.dims)):
            grid = (cfg.grids[i], cfg.grids[i])
            blocks = [MetaFormerBlock(
                dim, make_mixer(cfg.token_mixers[i], dim, grid, cfg.pool_size), norm=cfg.norm,
                act=cfg.act, mlp_ratio=cfg.mlp_ratio, mlp_bias=cfg.mlp_bias,
                layer_scale_init=cfg.layer_scale_init, res_scale_init=cfg.res_scale_init[i],
                drop_path=drop_rates.pop(0), channel_mlp=cfg.channel_mlp, residual=cfg.residual)
                for _ in range(depth)]
            downsample = nn.Identity() if i == 0 else PatchEmbed(
                cfg.dims[i - 1], dim, k, s, p, norm=cfg.downsample_norm, pre_norm=True)
            stages.append(Stage(downsample, blocks))
        self.stages = nn.ModuleList(stages)
        last = cfg.dims[-1]
        self.norm = GroupNorm1(last) if cfg.head_norm == "group" else nn.LayerNorm(last, eps=1e-6)
        self.head = (MlpHead(last, cfg.num_classes, dropout=cfg.head_dropout)
                     if cfg.head == "mlp" else nn.Linear(last, cfg.num_classes))
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.requires_grad:
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ValueError/TypeError naming what is wrong with an input batch."""
        cfg = self.config
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor of shape (B, {cfg.in_chans}, H, W), "
                            f"got {type(x).__name__}")
        if x.dim() != 4:
            raise ValueError(f"expected a 4-D batch (B, {cfg.in_chans}, H, W), got shape "
                             f"{tuple(x.shape)}; add a batch dimension with x.unsqueeze(0)")
        if x.shape[1] != cfg.in_chans:
            raise ValueError(f"expected {cfg.in_chans} input channels, got {x.shape[1]} "
                             f"(shape {tuple(x.shape)}); images are (B, C, H, W), channels first")
        if min(x.shape[2:]) < cfg.min_img_size:
            raise ValueError(f"input {x.shape[2]}x{x.shape[3]} is too small: the stem and "
                             f"{len(cfg.depths) - 1} downsamplings reduce it by {cfg.min_img_size}, "
                             f"so at least {cfg.min_img_size}x{cfg.min_img_size} pixels are needed")
        if set(cfg.token_mixers) & set(GRID_MIXERS) and tuple(x.shape[2:]) != (cfg.img_size,) * 2:
            raise ValueError(f"this model's {'/'.join(set(cfg.token_mixers) & set(GRID_MIXERS))} "
                             f"mixer fixes the input to {cfg.img_size}x{cfg.img_size}, got "
                             f"{x.shape[2]}x{x.shape[3]}")

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the output map of every stage, [(B, C_i, H_i, W_i) for each stage i]."""
        self.check_input(x)
        x = self.stem(x)
        if x.device.type == "cpu":  # see the class docstring
            x = x.contiguous(memory_format=torch.channels_last)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the last stage's feature map (B, C, H/32, W/32), before the head."""
        return self.forward_stages(x)[-1]

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Return the logits (B, num_classes) for a last-stage feature map."""
        if self.config.head_norm == "group":
            return self.head(self.norm(x).mean((2, 3)))
        return self.head(self.norm(x.mean((2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
