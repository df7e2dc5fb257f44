"""The book's figure conventions: one colour and marker per token mixer, heatmaps, saving for slides.

Figures are plain :class:`matplotlib.figure.Figure` objects (no pyplot state): a function
returns one, a notebook cell shows it by ending with it, a script saves it with :func:`savefig`.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from .._names import check_range, unknown_message

# Okabe-Ito colours (readable by colour-blind readers), one per mixer, used by every chapter.
MIXER_COLORS = {
    "pooling": "#0072B2",
    "attention": "#D55E00",
    "spatial_mlp": "#009E73",
    "identity": "#7F7F7F",
    "random": "#CC79A7",
    "sepconv": "#E69F00",
    "pooling+attention": "#8C3F9E",
    "pooling+spatial_mlp": "#56B4E9",
    "sepconv+attention": "#A6761D",
    "identity+random": "#B8860B",
}
MIXER_MARKERS = {
    "pooling": "o", "attention": "^", "spatial_mlp": "s", "identity": "x", "random": "P",
    "sepconv": "D", "pooling+attention": "v", "pooling+spatial_mlp": "<",
    "sepconv+attention": ">", "identity+random": "*",
}
MIXER_LABELS = {
    "pooling": "pooling (PoolFormer)",
    "attention": "attention (ViT-like)",
    "spatial_mlp": "spatial MLP (Mixer-like)",
    "identity": "identity",
    "random": "random mixing",
    "sepconv": "separable conv (ConvFormer)",
    "pooling+attention": "pooling, then attention",
    "pooling+spatial_mlp": "pooling, then spatial MLP",
    "sepconv+attention": "conv, then attention (CAFormer)",
    "identity+random": "identity, then random",
}


class BookFigure(Figure):
    """A Figure that renders itself as PNG in Jupyter when it is a cell's value, pyplot or not."""

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def new_figure(nrows: int = 1, ncols: int = 1, panel_size: tuple[float, float] = (3.6, 3.2),
               **subplot_kw) -> tuple[BookFigure, np.ndarray]:
    """Return a constrained-layout figure and its (nrows, ncols) array of axes."""
    check_range("nrows", nrows, "[1, inf)")
    check_range("ncols", ncols, "[1, inf)")
    for i, side in enumerate(panel_size):
        check_range(f"panel_size[{i}]", side, "(0, inf)")
    fig = BookFigure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, subplot_kw=subplot_kw or None)
    return fig, axes


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """Return the figure rendered as PNG bytes."""
    check_range("dpi", dpi, "(0, inf)")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def savefig(fig: Figure, path: Union[str, Path], formats: Sequence[str] = ("png", "pdf"),
            dpi: int = 200) -> list[Path]:
    """Save ``fig`` as path.<format> for each format (slides: PNG at 200 dpi, PDF); return the paths."""
    check_range("dpi", dpi, "(0, inf)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = []
    for fmt in formats:
        out = path.with_suffix(f".{fmt.lstrip('.')}")
        fig.savefig(out, dpi=dpi, bbox_inches="tight")
        saved.append(out)
    return saved


def mixer_color(mixer: str) -> str:
    """Return the book's colour for a mixer name or hybrid label such as 'pooling+attention'."""
    if mixer not in MIXER_COLORS:
        raise ValueError(unknown_message("mixer label", mixer, MIXER_COLORS))
    return MIXER_COLORS[mixer]


def mixer_label(token_mixers: Sequence[str]) -> str:
    """Return one label for a model's per-stage mixers: 'pooling', or 'pooling+attention' for hybrids."""
    distinct = list(dict.fromkeys(token_mixers))
    return "+".join(distinct)


def heatmap(ax: Axes, data: Union[torch.Tensor, np.ndarray], title: str, cmap: str = "viridis",
            norm: Optional[Normalize] = None, colorbar_label: str = "",
            xlabel: str = "", ylabel: str = "") -> AxesImage:
    """Draw ``data`` (2-D) on ``ax`` with a title, axis labels and a labelled colorbar; return the image."""
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    if np.ndim(data) != 2:
        raise ValueError(f"heatmap needs a 2-D array, got shape {np.shape(data)}")
    image = ax.imshow(data, cmap=cmap, norm=norm, interpolation="nearest")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    bar = ax.figure.colorbar(image, ax=ax, shrink=0.8, label=colorbar_label)
    if isinstance(norm, TwoSlopeNorm):  # ticks on both sides, however unequal their ranges
        bar.set_ticks([norm.vmin, norm.vmin / 2, 0.0, norm.vmax / 2, norm.vmax])
        bar.ax.yaxis.set_major_formatter("{x:.2g}")
    return image


def diverging_norm(*arrays: Union[torch.Tensor, np.ndarray]) -> TwoSlopeNorm:
    """Return a colour scale with white at 0 and each sign stretched to its own extreme.

    Pooling's matrix holds a large negative diagonal and small positive weights; stretching the
    two sides separately keeps both visible. An array of one sign gets a symmetric scale.
    """
    values = np.concatenate([np.ravel(a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a)
                             for a in arrays])
    low, high = float(values.min()), float(values.max())
    if low >= 0.0 and high <= 0.0:
        low, high = -1.0, 1.0
    elif low >= 0.0:
        low = -high
    elif high <= 0.0:
        high = -low
    return TwoSlopeNorm(0.0, low, high)


def to_display(image: torch.Tensor) -> np.ndarray:
    """Return a (3, H, W) image (uint8, or float of any range) as an (H, W, 3) float array in [0, 1]."""
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected one image (C, H, W) with 1 or 3 channels, got {tuple(image.shape)}")
    if image.dtype == torch.uint8:
        image = image.float() / 255.0
    image = image.detach().cpu().float()
    if image.min() < 0.0 or image.max() > 1.0:  # a normalized model input: stretch to [0, 1]
        image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-12)
    return image.permute(1, 2, 0).expand(-1, -1, 3).numpy()
