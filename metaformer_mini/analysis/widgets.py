"""Interactive views for the chapters: a pool-size slider, an ERF mixer/stage picker, a Grad-CAM image picker.

Each widget is a thin shell around a plain function that returns a matplotlib Figure
(``pool_size_figure``, ``erf_figure``, ``plot_grad_cam``): the site shows that figure statically,
nbval runs it headless, and the widget redraws it as a PNG when a control changes.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .._names import check_range
from ..mixers import Pooling
from ..model import MetaFormer
from ..registry import get_config
from .gradcam import plot_grad_cam
from .mixing import mixing_matrix
from .plots import MIXER_COLORS, BookFigure, diverging_norm, figure_png, heatmap, new_figure
from .receptive_field import analytic_receptive_field, radial_profile, stage_erf

POOL_SIZES = (1, 3, 5, 7, 9, 11)


def pool_size_figure(pool_size: int = 3, grid: int = 7, model: str = "poolformer_s12") -> BookFigure:
    """Return the pooling mixer's matrix, one token's weights, and ``model``'s receptive field per stage."""
    check_range("grid", grid, "[1, inf)")
    matrix = mixing_matrix(Pooling(pool_size), grid, grid)
    fields = analytic_receptive_field(get_config(model, pool_size=pool_size))
    fig, axes = new_figure(1, 3, panel_size=(3.7, 3.3))
    norm = diverging_norm(matrix)
    heatmap(axes[0, 0], matrix, f"AvgPool{pool_size} - I as a matrix", cmap="RdBu_r", norm=norm,
            colorbar_label="weight", xlabel="input token n", ylabel="output token m")
    centre = grid // 2
    heatmap(axes[0, 1], matrix[centre * grid + centre].reshape(grid, grid),
            f"weights of token ({centre}, {centre})", cmap="RdBu_r", norm=norm,
            colorbar_label="weight", xlabel="token column", ylabel="token row")
    ax = axes[0, 2]
    sides = [f.size for f in fields]
    bars = ax.bar([f"stage {f.stage + 1}" for f in fields], sides, color=MIXER_COLORS["pooling"])
    ax.bar_label(bars, labels=[str(s) for s in sides], fontsize=8)
    ax.axhline(fields[0].img_size, color="black", linestyle=":", label=f"image ({fields[0].img_size} px)")
    ax.set_ylabel("receptive field side (pixels)")
    ax.set_title(f"{model}, pool_size={pool_size}")
    ax.legend(fontsize=8)
    fig.suptitle(f"Pooling with a {pool_size}x{pool_size} window on a {grid}x{grid} token grid")
    return fig


def erf_figure(model: MetaFormer, stage: int, images: torch.Tensor, name: str = "",
               erf: Optional[torch.Tensor] = None) -> BookFigure:
    """Return one model's ERF at a stage (log heatmap with the analytic field) and its radial profile."""
    check_range("stage", stage, f"[{-len(model.stages)}, {len(model.stages) - 1}]")
    erf = stage_erf(model, stage, images) if erf is None else erf
    field = analytic_receptive_field(model.config, images.shape[-1])[stage]
    fig, axes = new_figure(1, 2, panel_size=(4.0, 3.4))
    heatmap(axes[0, 0], (erf / erf.max()).clamp_min(1e-4), f"{name} stage {stage + 1}".strip(),
            cmap="magma", norm=LogNorm(1e-4, 1.0), colorbar_label="|gradient| / max",
            xlabel="input x (pixels)", ylabel="input y (pixels)")
    top, left, bottom, right = field.box()
    axes[0, 0].add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1,
                                   fill=False, linestyle="--", color="cyan", label="analytic field"))
    axes[0, 0].legend(loc="lower right", fontsize=7)
    radii, profile = radial_profile(erf, field.centre)
    ax = axes[0, 1]
    ax.plot(radii, np.maximum(profile, 1e-8), color=MIXER_COLORS.get(name, "black"), linewidth=2)
    if not field.is_global:
        ax.axvline((field.size - 1) / 2, color="cyan", linestyle="--", label="analytic half-width")
    ax.set_yscale("log")
    ax.set_xlabel("distance from the central token (pixels)")
    ax.set_ylabel("mean |gradient| / peak")
    ax.set_title("radial profile")
    ax.grid(True, alpha=0.3)
    if not field.is_global:
        ax.legend(fontsize=8)
    fig.suptitle("Effective receptive field of the central token")
    return fig


def live_figure(render: Callable[..., Figure], **controls: widgets.ValueWidget) -> widgets.VBox:
    """Return the controls above a PNG of ``render(**values)``, redrawn whenever a control changes."""
    image = widgets.Image(format="png")

    def update(change: Optional[dict] = None) -> None:
        image.value = figure_png(render(**{name: c.value for name, c in controls.items()}))

    for control in controls.values():
        control.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox(list(controls.values())), image])


def pool_size_widget(grid: int = 7, model: str = "poolformer_s12", pool_size: int = 3) -> widgets.VBox:
    """Return a pool-size slider over :func:`pool_size_figure`."""
    if pool_size not in POOL_SIZES:
        raise ValueError(f"pool_size must be one of {POOL_SIZES}, got {pool_size!r}")
    slider = widgets.SelectionSlider(options=POOL_SIZES, value=pool_size, description="pool_size")
    return live_figure(lambda pool_size: pool_size_figure(pool_size, grid, model), pool_size=slider)


def erf_widget(models: dict[str, MetaFormer], images: torch.Tensor) -> widgets.VBox:
    """Return mixer and stage dropdowns over :func:`erf_figure`; each ERF is computed once, then cached."""
    if not models:
        raise ValueError("models is empty: pass {name: model}, e.g. {'pooling': create_model(...)}")
    stages = len(next(iter(models.values())).stages)
    cache: dict[tuple[str, int], torch.Tensor] = {}

    def render(mixer: str, stage: int) -> Figure:
        if (mixer, stage) not in cache:
            cache[mixer, stage] = stage_erf(models[mixer], stage, images)
        return erf_figure(models[mixer], stage, images, mixer, cache[mixer, stage])

    return live_figure(render,
                       mixer=widgets.Dropdown(options=list(models), description="mixer"),
                       stage=widgets.Dropdown(options=[(f"stage {i + 1}", i) for i in range(stages)],
                                              description="stage"))


def gradcam_widget(models: dict[str, MetaFormer], images: torch.Tensor,
                   display_images: Optional[torch.Tensor] = None,
                   labels: Optional[torch.Tensor] = None,
                   class_names: Optional[Sequence[str]] = None, stage: int = -1) -> widgets.VBox:
    """Return an image picker over :func:`plot_grad_cam` for several models side by side."""
    names = [f"image {i}" + (f": {class_names[int(labels[i])]}" if labels is not None and class_names
                             else "") for i in range(len(images))]

    def render(index: int) -> Figure:
        shown = None if display_images is None else display_images[index:index + 1]
        return plot_grad_cam(models, images[index:index + 1], stage, display_images=shown,
                             class_names=class_names)

    return live_figure(render, index=widgets.Dropdown(options=list(zip(names, range(len(images)))),
                                                      description="image"))
