"""Tests for metaformer_mini/analysis/plots.py: mixer colours, colour scales, saving figures."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from metaformer_mini.analysis.plots import (MIXER_COLORS, MIXER_LABELS, MIXER_MARKERS,  # noqa: E402
                                            diverging_norm, figure_png, heatmap, mixer_color,
                                            mixer_label, new_figure, savefig, to_display)
from metaformer_mini.mixers import MIXERS  # noqa: E402


def test_every_mixer_has_one_colour_marker_and_label():
    assert set(MIXERS) <= set(MIXER_COLORS)
    assert set(MIXER_COLORS) == set(MIXER_MARKERS) == set(MIXER_LABELS)
    assert len(set(MIXER_COLORS.values())) == len(MIXER_COLORS)  # no two mixers share a colour
    assert mixer_color("attention") == MIXER_COLORS["attention"]
    with pytest.raises(ValueError, match="did you mean 'pooling'"):
        mixer_color("poolng")


def test_mixer_label_names_hybrids_by_their_stages():
    assert mixer_label(["pooling"] * 4) == "pooling"
    assert mixer_label(["pooling", "pooling", "attention", "attention"]) == "pooling+attention"
    assert mixer_label(["sepconv", "sepconv", "attention", "attention"]) in MIXER_COLORS


def test_diverging_norm_puts_white_at_zero_for_any_signs():
    norm = diverging_norm(torch.tensor([-0.9, 0.1]))
    assert (norm.vmin, norm.vcenter, norm.vmax) == pytest.approx((-0.9, 0.0, 0.1))
    assert norm(0.1) == pytest.approx(1.0) and norm(0.0) == pytest.approx(0.5)
    norm = diverging_norm(np.array([0.0, 0.2]))
    assert (norm.vmin, norm.vmax) == pytest.approx((-0.2, 0.2))
    norm = diverging_norm(np.zeros(3))
    assert (norm.vmin, norm.vmax) == (-1.0, 1.0)


def test_heatmap_has_title_labels_and_colorbar():
    fig, axes = new_figure(1, 2)
    heatmap(axes[0, 0], torch.eye(3), "eye", colorbar_label="weight", xlabel="n", ylabel="m")
    assert axes[0, 0].get_title() == "eye" and axes[0, 0].get_xlabel() == "n"
    assert len(fig.axes) == 3 and fig.axes[-1].get_ylabel() == "weight"
    with pytest.raises(ValueError, match="2-D"):
        heatmap(axes[0, 1], torch.zeros(2, 2, 2), "cube")


def test_savefig_writes_every_format_and_figures_render_in_notebooks(tmp_path):
    fig, axes = new_figure()
    axes[0, 0].plot([0, 1], [1, 0])
    paths = savefig(fig, tmp_path / "slides" / "line", formats=("png", "pdf"))
    assert [p.name for p in paths] == ["line.png", "line.pdf"]
    assert paths[0].read_bytes().startswith(b"\x89PNG") and paths[1].read_bytes().startswith(b"%PDF")
    assert fig._repr_png_().startswith(b"\x89PNG")  # what Jupyter shows when a cell returns fig


def test_to_display_maps_any_image_to_unit_range():
    rgb = to_display(torch.full((3, 2, 2), 255, dtype=torch.uint8))
    assert rgb.shape == (2, 2, 3) and np.allclose(rgb, 1.0)
    stretched = to_display(torch.tensor([[[-2.0, 2.0]]]))
    assert stretched.shape == (1, 2, 3) and np.allclose(stretched[0, :, 0], [0.0, 1.0])
    with pytest.raises(ValueError, match="C, H, W"):
        to_display(torch.zeros(1, 3, 4, 4))


@pytest.mark.parametrize("call, message", [
    (lambda: new_figure(0, 2), "nrows must be 1 or more, got 0"),
    (lambda: new_figure(1, -1), "ncols must be 1 or more, got -1"),
    (lambda: new_figure(1, 1, panel_size=(3.0, 0)), r"panel_size\[1\] must be positive, got 0"),
    (lambda: figure_png(new_figure()[0], dpi=0), "dpi must be positive, got 0"),
    (lambda: savefig(new_figure()[0], "unused", dpi=-100), "dpi must be positive, got -100"),
])
def test_out_of_range_arguments_name_the_argument_value_and_range(call, message):
    with pytest.raises(ValueError, match=message):
        call()
