"""Tests for metaformer_mini/analysis/widgets.py: each widget redraws its plain figure function."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from metaformer_mini import create_model  # noqa: E402
from metaformer_mini.analysis.plots import figure_png  # noqa: E402
from metaformer_mini.analysis.receptive_field import random_images  # noqa: E402
from metaformer_mini.analysis.widgets import (erf_figure, erf_widget, gradcam_widget,  # noqa: E402
                                              pool_size_figure, pool_size_widget)

TINY = dict(dims=(8, 8, 8, 8), depths=(1, 1, 1, 1))


def test_pool_size_figure_shows_the_matrix_and_the_fields():
    fig = pool_size_figure(5, grid=5)
    matrix = fig.axes[0].images[0].get_array()
    assert matrix.shape == (25, 25) and matrix[12, 12] == pytest.approx(1 / 25 - 1)
    bars = [patch.get_height() for patch in fig.axes[2].patches]  # axes 3.. are colorbars
    assert bars == [39, 111, 511, 799]  # poolformer_s12 with pool_size=5
    assert fig.axes[2].get_ylabel() == "receptive field side (pixels)"


def test_pool_size_slider_redraws_the_figure():
    view = pool_size_widget(grid=5)
    slider, image = view.children[0].children[0], view.children[1]
    assert image.value == figure_png(pool_size_figure(3, grid=5))
    slider.value = 7
    assert image.value == figure_png(pool_size_figure(7, grid=5))


def test_erf_widget_switches_mixer_and_stage_and_caches():
    torch.manual_seed(0)
    models = {"pooling": create_model("cifar_poolformer", **TINY),
              "identity": create_model("cifar_identityformer", **TINY)}
    images = random_images(1, 32)
    view = erf_widget(models, images)
    mixer, stage = view.children[0].children
    image = view.children[1]
    first = image.value
    assert mixer.options == ("pooling", "identity") and [v for _, v in stage.options] == [0, 1, 2, 3]
    mixer.value = "identity"
    assert image.value != first
    assert image.value == figure_png(erf_figure(models["identity"], 0, images, "identity"))
    mixer.value = "pooling"
    assert image.value == first
    with pytest.raises(ValueError, match="models is empty"):
        erf_widget({}, images)


def test_erf_figure_draws_the_analytic_half_width():
    model = create_model("cifar_identityformer", **TINY)
    fig = erf_figure(model, 1, random_images(1, 32), "identity")
    heat, profile = fig.axes[:2]
    assert heat.patches[0].get_width() == 7  # stem 3 + downsample 2 * 2
    assert profile.lines[1].get_xdata()[0] == 3  # half of 7 - 1
    assert profile.get_xlabel() == "distance from the central token (pixels)"


def test_gradcam_widget_picks_images():
    torch.manual_seed(0)
    models = {"pooling": create_model("cifar_poolformer", num_classes=3, **TINY)}
    images = torch.randn(3, 3, 32, 32)
    view = gradcam_widget(models, images, labels=torch.tensor([2, 0, 1]),
                          class_names=["cat", "dog", "ship"])
    picker, image = view.children[0].children[0], view.children[1]
    assert [name for name, _ in picker.options] == ["image 0: ship", "image 1: cat", "image 2: dog"]
    first = image.value
    picker.value = 2
    assert image.value != first and bytes(image.value).startswith(b"\x89PNG")


@pytest.mark.parametrize("call, message", [
    (lambda: pool_size_figure(4), "pool_size must be an odd positive int .* got 4"),
    (lambda: pool_size_figure(3, grid=0), "grid must be 1 or more, got 0"),
    (lambda: pool_size_widget(pool_size=13), r"pool_size must be one of \(1, 3, 5, 7, 9, 11\), got 13"),
    (lambda: erf_figure(create_model("cifar_poolformer", **TINY), 4, random_images(1, 32), erf=torch.ones(32, 32)),
     r"stage must be in \[-4, 3\], got 4"),
])
def test_out_of_range_arguments_name_the_argument_value_and_range(call, message):
    with pytest.raises(ValueError, match=message):
        call()
