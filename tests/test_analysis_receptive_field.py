"""Tests for metaformer_mini/analysis/receptive_field.py: analytic fields and effective (gradient) fields."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from metaformer_mini import create_model, get_config  # noqa: E402
from metaformer_mini.analysis.receptive_field import (analytic_receptive_field,  # noqa: E402
                                                      effective_receptive_field, erf_radius,
                                                      plot_analytic_fields, plot_erfs,
                                                      plot_radial_profiles, radial_profile,
                                                      random_images, stage_erf, support_box)
from metaformer_mini.mixers import Pooling  # noqa: E402

TINY = dict(dims=(8, 8, 8, 8), depths=(1, 1, 1, 1), img_size=64)


@pytest.mark.parametrize("pool_size", [3, 5])
def test_erf_of_one_pooling_layer_is_exactly_its_box(pool_size):
    erf = effective_receptive_field(Pooling(pool_size), random_images(3, 11, channels=2))
    k, c = pool_size, 5
    expected = torch.zeros(11, 11)
    expected[c - k // 2:c + k // 2 + 1, c - k // 2:c + k // 2 + 1] = 1 / k ** 2
    expected[c, c] = 1 - 1 / k ** 2  # |d(avg - x)/dx| at the centre
    assert torch.allclose(erf, expected, atol=1e-7)


def test_erf_of_a_pooling_block_is_a_uniform_box():
    pool = Pooling(3)
    erf = effective_receptive_field(lambda x: x + pool(x), random_images(2, 9))  # residual adds x back
    assert support_box(erf) == (3, 3, 5, 5)
    assert torch.allclose(erf[3:6, 3:6], torch.full((3, 3), 1 / 9))


def test_analytic_field_of_poolformer_s12():
    fields = analytic_receptive_field(get_config("poolformer_s12"))
    # stem 7x7/4, then 2 pooling blocks (+2*4 each); downsample 3x3/2 (+2*4), 2 blocks (+2*8 each) ...
    assert [f.size for f in fields] == [23, 63, 271, 431]
    assert [f.stride for f in fields] == [4, 8, 16, 32]
    assert [f.grid for f in fields] == [56, 28, 14, 7]
    assert not any(f.is_global for f in fields)
    assert fields[0].box() == (102, 102, 124, 124)  # token 28 is centred on pixel 1 + 4 * 28
    assert fields[1].pixels == 63 * 63 and fields[2].pixels == 224 * 224
    small = analytic_receptive_field(get_config("poolformer_s12"), img_size=64)
    assert [f.grid for f in small] == [16, 8, 4, 2] and small[1].box() == (2, 2, 63, 63)  # 33 +- 31


def test_analytic_field_of_other_mixers():
    def sizes(name, **overrides):
        return [f.size for f in analytic_receptive_field(get_config(name, **overrides))]

    assert sizes("cifar_identityformer") == [3, 7, 15, 31]  # only the stem and the downsamplings
    assert sizes("poolformer_s12", pool_size=5) == [39, 111, 511, 799]
    assert [f.is_global for f in analytic_receptive_field(get_config("cifar_attentionformer"))] == [True] * 4
    caformer = analytic_receptive_field(get_config("caformer_s18"))
    assert [f.is_global for f in caformer] == [False, False, True, True]
    assert sizes("convformer_s18")[0] == 7 + 3 * 6 * 4  # three 7x7 depthwise convs on the stride-4 grid
    with pytest.raises(TypeError, match="MetaFormerConfig"):
        analytic_receptive_field("poolformer_s12")


@pytest.mark.parametrize("name", ["cifar_poolformer", "cifar_identityformer", "cifar_convformer"])
def test_erf_support_is_exactly_the_analytic_field_with_per_position_norms(name):
    torch.manual_seed(0)
    model = create_model(name, norm="layer", **TINY)
    fields = analytic_receptive_field(model.config)
    images = random_images(2, 64)
    for stage in range(4):
        assert support_box(stage_erf(model, stage, images)) == fields[stage].box(), stage


def test_global_mixers_see_the_whole_image_after_one_block():
    torch.manual_seed(0)
    model = create_model("cifar_attentionformer", norm="layer", **TINY)
    erf = stage_erf(model, 0, random_images(2, 64))
    assert analytic_receptive_field(model.config)[0].is_global
    assert support_box(erf) == (0, 0, 63, 63) and bool((erf > 0).all())


def test_groupnorm_statistics_leak_a_faint_global_dependence():
    torch.manual_seed(0)
    model = create_model("cifar_poolformer", **TINY)  # GroupNorm(1, C) in every block
    erf = stage_erf(model, 0, random_images(2, 64))
    top, left, bottom, right = analytic_receptive_field(model.config)[0].box()
    outside = erf.clone()
    outside[top:bottom + 1, left:right + 1] = 0
    assert 0 < outside.max() < 0.02 * erf.max()  # nonzero everywhere, but faint


def test_stage_erf_restores_the_training_mode_and_checks_the_stage():
    model = create_model("cifar_poolformer", **TINY).train()
    stage_erf(model, -1, random_images(1, 64))
    assert model.training
    with pytest.raises(ValueError, match=r"stage must be in \[-4, 3\], got 4"):
        stage_erf(model, 4, random_images(1, 64))


def test_radial_profile_and_radius():
    erf = torch.zeros(9, 9)
    erf[4, 4] = 2.0
    erf[4, 6] = 1.0  # distance 2
    radii, profile = radial_profile(erf)
    assert profile[0] == 1.0 and profile[1] == 0.0
    assert profile[2] == pytest.approx(0.5 / 12, rel=0.2)  # one of the ring's pixels at distance 2
    radii, profile = radial_profile(erf, centre=(4, 6))  # measured from the other pixel
    assert profile[2] == pytest.approx(2 / 12) and profile[0] == 1.0
    assert radii[-1] == 7  # the far corners (0, 0) and (8, 0) lie sqrt(52) ~ 7.2 away
    assert erf_radius(erf, 0.5) == 0.0 and erf_radius(erf, 1.0) == 2.0
    with pytest.raises(ValueError, match="mass"):
        erf_radius(erf, 0.0)


def test_erf_plots_have_labels_colorbars_and_the_analytic_box():
    torch.manual_seed(0)
    models = {name: create_model(f"cifar_{name}former", **TINY) for name in ("pool", "identity")}
    images = random_images(1, 64)
    erfs = {name: stage_erf(m, 1, images) for name, m in models.items()}
    fields = {name: analytic_receptive_field(m.config)[1] for name, m in models.items()}
    fig = plot_erfs(erfs, fields)
    assert len(fig.axes) == 4 and fig.axes[0].get_xlabel() == "input x (pixels)"
    box = fig.axes[0].patches[0]
    top, left, bottom, right = fields["pool"].box()
    assert (box.get_x(), box.get_width()) == (left - 0.5, right - left + 1)
    fig = plot_radial_profiles(erfs, fields)
    assert [line.get_label() for line in fig.axes[0].lines] == ["pool", "identity"]
    assert fields["pool"].centre == (32.0, 32.0)  # token 8 of the 16-wide stage-2 grid: 8 * 4
    fig = plot_analytic_fields({n: analytic_receptive_field(m.config) for n, m in models.items()})
    assert list(fig.axes[0].lines[1].get_ydata()) == [3, 7, 15, 31]  # identity: stem and downsamplings


@pytest.mark.parametrize("call, message", [
    (lambda: analytic_receptive_field(get_config("cifar_poolformer"), img_size=8), r"img_size=8 is too small"),
    (lambda: analytic_receptive_field(get_config("cifar_poolformer"))[3].box(row=2), r"row must be in \[0, 1\], got 2"),
    (lambda: analytic_receptive_field(get_config("cifar_poolformer"))[0].box(col=-1), r"col must be in \[0, 15\], got -1"),
    (lambda: random_images(0, 8), "n must be 1 or more, got 0"),
    (lambda: random_images(1, -8), "size must be 1 or more, got -8"),
    (lambda: random_images(1, 8, channels=0), "channels must be 1 or more, got 0"),
    (lambda: support_box(torch.ones(3, 3), rel_threshold=1.0), r"rel_threshold must be in \[0, 1\), got 1.0"),
    (lambda: erf_radius(torch.ones(3, 3), mass=1.5), r"mass must be in \(0, 1\], got 1.5"),
    (lambda: plot_erfs({"x": torch.ones(3, 3)}, log_floor=0.0), r"log_floor must be in \(0, 1\), got 0.0"),
])
def test_out_of_range_arguments_name_the_argument_value_and_range(call, message):
    with pytest.raises(ValueError, match=message):
        call()
