r"""Receptive fields: which pixels a stage's token can see (analytic) and how much each matters (effective).

The analytic field follows the usual conv arithmetic: a layer with kernel k and stride s on a
map whose tokens are ``jump`` pixels apart grows the field by :math:`(k - 1) \cdot jump` and
multiplies the jump by s. The stem and the downsamplings are such layers; a pooling mixer with
``pool_size`` K is a K x K window with stride 1, so each pooling block adds
:math:`(K - 1) \cdot jump`; a separable-conv block adds its depthwise kernel; the identity adds
nothing; attention, the spatial MLP and random mixing see every token, so a stage using them is
global after its first block. Channel MLPs and per-position norms add nothing. GroupNorm(1, C)
(PoolFormer's norm) couples every position through its mean and variance; that weak global
dependence is left out of the analytic field, and it shows up in the effective one.

The effective receptive field (Luo et al., NeurIPS 2016) is

.. math:: \mathrm{ERF}(u, v) = \mathbb{E}_{x} \, \frac{1}{C} \sum_c
    \left| \frac{\partial \sum_k y_{k}(i_0, j_0)}{\partial x_c(u, v)} \right|,

the gradient of the central output token of a stage with respect to the input image.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
from matplotlib.colors import LogNorm
from matplotlib.patches import Rectangle

from .._names import check_range
from ..mixers import SepConv
from ..model import MetaFormer, MetaFormerConfig
from .plots import BookFigure, MIXER_COLORS, heatmap, new_figure

GLOBAL_MIXERS = ("attention", "spatial_mlp", "random")
SEPCONV_KERNEL = inspect.signature(SepConv).parameters["kernel_size"].default


@dataclass(frozen=True)
class StageField:
    """The analytic receptive field of the tokens of one stage, in input pixels."""

    stage: int
    grid: int        # tokens per side of this stage's map
    stride: int      # pixels between neighbouring tokens
    offset: float    # pixel coordinate of the centre of token 0
    size: int        # side of the (square) field, before clipping to the image
    is_global: bool  # a global mixer has run: every token sees the whole image
    img_size: int

    def box(self, row: Optional[int] = None, col: Optional[int] = None) -> tuple[int, int, int, int]:
        """Return (top, left, bottom, right), the inclusive pixel bounds of a token's field in the image."""
        row = self.grid // 2 if row is None else row
        col = self.grid // 2 if col is None else col
        check_range("row", row, f"[0, {self.grid - 1}]")
        check_range("col", col, f"[0, {self.grid - 1}]")
        if self.is_global:
            return 0, 0, self.img_size - 1, self.img_size - 1
        half = (self.size - 1) / 2
        centre_r, centre_c = self.offset + self.stride * row, self.offset + self.stride * col
        low = [min(max(math.ceil(c - half), 0), self.img_size - 1) for c in (centre_r, centre_c)]
        high = [min(max(math.floor(c + half), 0), self.img_size - 1) for c in (centre_r, centre_c)]
        return low[0], low[1], high[0], high[1]

    @property
    def centre(self) -> tuple[float, float]:
        """Return the (row, col) pixel coordinates of the central token's centre."""
        middle = self.offset + self.stride * (self.grid // 2)
        return middle, middle

    @property
    def pixels(self) -> int:
        """Return how many input pixels the central token sees (its clipped field's area)."""
        top, left, bottom, right = self.box()
        return (bottom - top + 1) * (right - left + 1)


def analytic_receptive_field(config: MetaFormerConfig,
                             img_size: Optional[int] = None) -> list[StageField]:
    """Return the receptive field of each stage's output tokens for img_size (default: the config's)."""
    if not isinstance(config, MetaFormerConfig):
        raise TypeError(f"expected a MetaFormerConfig (e.g. get_config('poolformer_s12')), "
                        f"got {type(config).__name__}")
    if img_size is not None:
        config = dataclasses.replace(config, img_size=img_size)
    size, jump, offset, is_global = 1, 1, 0.0, False

    def conv(k: int, s: int, p: int) -> None:
        nonlocal size, jump, offset
        size += (k - 1) * jump
        offset += ((k - 1) / 2 - p) * jump
        jump *= s

    conv(*config.stem)
    fields = []
    for stage, (depth, mixer) in enumerate(zip(config.depths, config.token_mixers)):
        if stage > 0:
            conv(*config.downsample)
        kernel = {"pooling": config.pool_size, "sepconv": SEPCONV_KERNEL}.get(mixer, 1)
        for _ in range(depth):
            conv(kernel, 1, kernel // 2)
        is_global = is_global or mixer in GLOBAL_MIXERS
        fields.append(StageField(stage, config.grids[stage], jump, offset, size, is_global,
                                 config.img_size))
    return fields


def effective_receptive_field(fn: Callable[[torch.Tensor], torch.Tensor],
                              images: torch.Tensor) -> torch.Tensor:
    """Return the ERF (H, W) of fn's central output token: |d out / d input|, mean over images, channels.

    ``fn`` maps images (B, C, H, W) to a map (B, C', H', W'); the gradient of the sum over C' of
    its token (H'//2, W'//2) is taken for each image separately (the images do not interact in
    eval mode, so one backward pass gives all of them).
    """
    if images.dim() != 4:
        raise ValueError(f"expected images (B, C, H, W), got shape {tuple(images.shape)}")
    images = images.detach().clone().float().requires_grad_(True)
    with torch.enable_grad():
        out = fn(images)
        if out.dim() != 4:
            raise ValueError(f"fn must return a map (B, C, H, W), got shape {tuple(out.shape)}")
        centre = out[:, :, out.shape[2] // 2, out.shape[3] // 2].sum()
        (grad,) = torch.autograd.grad(centre, images)
    return grad.abs().mean((0, 1))


def stage_erf(model: MetaFormer, stage: int, images: torch.Tensor) -> torch.Tensor:
    """Return the ERF (H, W) of stage ``stage``'s central token for a MetaFormer, in eval mode."""
    check_range("stage", stage, f"[{-len(model.stages)}, {len(model.stages) - 1}]")
    was_training = model.training
    model.eval()
    try:
        return effective_receptive_field(lambda x: model.forward_stages(x)[stage], images)
    finally:
        model.train(was_training)


def random_images(n: int, size: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """Return n standard-normal images (n, channels, size, size), the usual input for an ERF at init."""
    for name, value in (("n", n), ("size", size), ("channels", channels)):
        check_range(name, value, "[1, inf)")
    return torch.randn(n, channels, size, size, generator=torch.Generator().manual_seed(seed))


def erf_support(erf: torch.Tensor, rel_threshold: float = 0.0) -> torch.Tensor:
    """Return the boolean mask of pixels whose ERF exceeds ``rel_threshold`` times the maximum."""
    check_range("rel_threshold", rel_threshold, "[0, 1)")
    return erf > rel_threshold * erf.max()


def support_box(erf: torch.Tensor, rel_threshold: float = 0.0) -> tuple[int, int, int, int]:
    """Return (top, left, bottom, right), the inclusive bounding box of the ERF's support."""
    rows, cols = torch.nonzero(erf_support(erf, rel_threshold), as_tuple=True)
    if rows.numel() == 0:
        raise ValueError("the ERF is zero everywhere: the output does not depend on the input")
    return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())


def _centre_distance(shape: tuple[int, int], centre: Optional[tuple[float, float]]) -> torch.Tensor:
    h, w = shape
    cy, cx = centre if centre is not None else ((h - 1) / 2, (w - 1) / 2)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    return torch.sqrt((ys - cy) ** 2 + (xs - cx) ** 2)


def radial_profile(erf: torch.Tensor,
                   centre: Optional[tuple[float, float]] = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (radii, mean ERF at each of those integer distances), normalized to a peak of 1.

    ``centre`` is the (row, col) pixel the distances are measured from, e.g. ``field.centre``;
    by default the middle of the map.
    """
    distance = _centre_distance(tuple(erf.shape), centre).round().long().flatten()
    sums = torch.zeros(int(distance.max()) + 1).index_add_(0, distance, erf.flatten().float())
    counts = torch.bincount(distance, minlength=sums.numel())
    radii = torch.nonzero(counts, as_tuple=True)[0]
    profile = sums[radii] / counts[radii]
    return radii.numpy(), (profile / profile.max().clamp_min(1e-30)).numpy()


def erf_radius(erf: torch.Tensor, mass: float = 0.5,
               centre: Optional[tuple[float, float]] = None) -> float:
    """Return the smallest distance from the centre within which ``mass`` of the ERF's total lies."""
    check_range("mass", mass, "(0, 1]")
    distance = _centre_distance(tuple(erf.shape), centre).flatten()
    order = torch.argsort(distance)
    cumulative = torch.cumsum(erf.flatten()[order].double(), 0)
    index = int(torch.searchsorted(cumulative, mass * cumulative[-1]))
    return float(distance[order][min(index, order.numel() - 1)])


def plot_erfs(erfs: dict[str, torch.Tensor], fields: Optional[dict[str, StageField]] = None,
              log_floor: Optional[float] = 1e-4,
              title: str = "Effective receptive fields") -> BookFigure:
    """Return ERF heatmaps side by side (normalized to peak 1), with the analytic field as a dashed box.

    The colour scale is logarithmic down to ``log_floor`` (None: linear, as in Luo et al.).
    """
    if log_floor is not None:
        check_range("log_floor", log_floor, "(0, 1)")
    fig, axes = new_figure(1, len(erfs), panel_size=(3.4, 3.0))
    for ax, (name, erf) in zip(axes[0], erfs.items()):
        data = erf / erf.max()
        log = log_floor is not None
        heatmap(ax, data.clamp_min(log_floor) if log else data, name, cmap="magma",
                norm=LogNorm(log_floor, 1.0) if log else None,
                colorbar_label="|gradient| / max", xlabel="input x (pixels)",
                ylabel="input y (pixels)")
        field = (fields or {}).get(name)
        if field is not None:
            top, left, bottom, right = field.box()
            ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1,
                                   fill=False, linestyle="--", linewidth=1.5, color="cyan"))
    fig.suptitle(title + (" (dashed: analytic field)" if fields else ""))
    return fig


def plot_radial_profiles(erfs: dict[str, torch.Tensor], fields: Optional[dict[str, StageField]] = None,
                         colors: Optional[dict[str, str]] = None,
                         title: str = "ERF radial profiles") -> BookFigure:
    """Return the radial profiles of several ERFs on one log-scale plot, one colour per entry.

    Distances are measured from each entry's central token (``fields[name].centre``) when
    fields are given, else from the middle of the map.
    """
    fig, axes = new_figure(1, 1, panel_size=(5.0, 3.6))
    ax = axes[0, 0]
    for name, erf in erfs.items():
        field = (fields or {}).get(name)
        radii, profile = radial_profile(erf, field.centre if field is not None else None)
        color = (colors or MIXER_COLORS).get(name)
        ax.plot(radii, np.maximum(profile, 1e-8), label=name, color=color, linewidth=2)
    ax.set_yscale("log")
    ax.set_xlabel("distance from the central token (pixels)")
    ax.set_ylabel("mean |gradient| / peak")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return fig


def plot_analytic_fields(fields: dict[str, list[StageField]],
                         title: str = "Analytic receptive field per stage") -> BookFigure:
    """Return the side of each stage's receptive field (pixels, log scale) for several models.

    A stage after a global mixer is drawn at the image side with a star: it sees everything.
    """
    fig, axes = new_figure(1, 1, panel_size=(5.0, 3.6))
    ax = axes[0, 0]
    img_size = max(f[0].img_size for f in fields.values())
    for name, stage_fields in fields.items():
        stages = [f.stage + 1 for f in stage_fields]
        sides = [f.img_size if f.is_global else f.size for f in stage_fields]
        line, = ax.plot(stages, sides, marker="o", label=name, color=MIXER_COLORS.get(name),
                        linewidth=2)
        glob = [(st, side) for st, side, f in zip(stages, sides, stage_fields) if f.is_global]
        if glob:
            ax.plot(*zip(*glob), linestyle="none", marker="*", markersize=14, color=line.get_color())
    ax.axhline(img_size, color="black", linestyle=":", label=f"image side ({img_size} px)")
    ax.plot([], [], linestyle="none", marker="*", markersize=10, color="black",
            label="global (sees the whole image)")
    ax.set_yscale("log")
    ax.set_xlabel("stage")
    ax.set_ylabel("receptive field side (pixels)")
    ax.set_xticks(range(1, 1 + max(len(f) for f in fields.values())))
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig
