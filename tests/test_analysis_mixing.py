"""Tests for metaformer_mini/analysis/mixing.py: token-mixing matrices equal the mixers they come from."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from metaformer_mini import create_model  # noqa: E402
from metaformer_mini.analysis.mixing import (apply_mixing_matrix, example_mixers,  # noqa: E402
                                             mixing_matrix, mixing_matrix_error,
                                             model_mixing_matrix, plot_mixing_matrices,
                                             plot_token_weights)
from metaformer_mini.mixers import Attention, Pooling, SepConv  # noqa: E402


@pytest.mark.parametrize("name", ["pooling", "identity", "attention", "spatial_mlp", "random"])
def test_applying_the_matrix_equals_calling_the_mixer(name):
    torch.manual_seed(1)
    mixer = example_mixers(dim=64, grid=5)[name]
    x = torch.randn(1, 64, 5, 5)
    assert mixing_matrix_error(mixer, x) < 1e-5


@pytest.mark.parametrize("pool_size,grid", [(3, (4, 6)), (5, (7, 7)), (7, (5, 9))])
def test_pooling_matrix_equals_pooling_on_any_grid(pool_size, grid):
    x = torch.randn(2, 3, *grid)
    matrix = mixing_matrix(Pooling(pool_size), *grid)
    assert torch.allclose(apply_mixing_matrix(matrix, x), Pooling(pool_size)(x), atol=1e-6)


def test_pooling_matrix_is_a_band_minus_the_identity():
    matrix = mixing_matrix(Pooling(3), 5, 5)
    centre = matrix[12].reshape(5, 5)  # token (2, 2): a full 3x3 window
    expected = torch.zeros(5, 5)
    expected[1:4, 1:4] = 1 / 9
    expected[2, 2] -= 1
    assert torch.allclose(centre, expected, atol=1e-7)
    corner = matrix[0].reshape(5, 5)  # token (0, 0): padding is not counted, so 4 pixels average
    assert corner[0, 0] == pytest.approx(1 / 4 - 1) and corner[1, 1] == pytest.approx(1 / 4)
    assert corner[2:].abs().sum() == 0 and corner[:, 2:].abs().sum() == 0
    assert torch.allclose(matrix.sum(1), torch.zeros(25), atol=1e-6)  # AvgPool rows sum to 1, minus 1


def test_single_head_attention_is_its_matrix_times_the_values():
    torch.manual_seed(0)
    mixer = Attention(32)  # one head of 32 channels
    with torch.no_grad():  # values and projection = identity: out = A x exactly
        mixer.qkv.weight[64:] = torch.eye(32)
        mixer.proj.weight.copy_(torch.eye(32))
    x = torch.randn(1, 32, 4, 4)
    matrix = mixing_matrix(mixer, 4, 4, x)
    assert torch.allclose(matrix.sum(1), torch.ones(16), atol=1e-6)  # softmax rows
    assert torch.allclose(apply_mixing_matrix(matrix, x), mixer(x), atol=1e-6)


def test_attention_matrix_needs_an_input():
    with pytest.raises(ValueError, match="input-dependent"):
        mixing_matrix(Attention(32), 4, 4)


def test_mixers_without_one_matrix_and_non_mixers_are_refused():
    with pytest.raises(NotImplementedError, match="no single N x N"):
        mixing_matrix(SepConv(8), 4, 4)
    with pytest.raises(TypeError, match="TokenMixer"):
        mixing_matrix(torch.nn.Conv2d(3, 3, 3), 4, 4)
    with pytest.raises(ValueError, match=r"\(16, 16\)"):
        apply_mixing_matrix(torch.eye(9), torch.randn(1, 2, 4, 4))


def test_model_mixing_matrix_reads_the_block_of_a_model():
    torch.manual_seed(0)
    model = create_model("cifar_mlpformer", dims=(8, 8, 8, 8), depths=(1, 1, 2, 1))
    weight = model.stages[2].blocks[1].token_mixer.fc.weight
    assert torch.equal(model_mixing_matrix(model, stage=2, block=1), weight)


def test_model_attention_matrix_is_the_softmax_map_of_the_block_input():
    torch.manual_seed(0)
    model = create_model("cifar_attentionformer", dims=(32, 32, 32, 32), depths=(1, 1, 1, 1))
    image = torch.randn(1, 3, 32, 32)
    matrix = model_mixing_matrix(model, stage=1, image=image)
    block = model.stages[1].blocks[0]
    with torch.no_grad():
        x = model.stages[1].downsample(model.stages[0](model.stem(image)))
        expected = block.token_mixer.attention_maps(block.norm1(x))[0].mean(0)
    assert matrix.shape == (64, 64)
    assert torch.allclose(matrix, expected, atol=1e-6)


def test_plots_show_each_matrix_with_a_colorbar():
    mixers = example_mixers(dim=32, grid=4)
    x = torch.randn(1, 32, 4, 4)
    matrices = {name: mixing_matrix(m, 4, 4, x) for name, m in mixers.items()}
    fig = plot_mixing_matrices(matrices, grid=4)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == list(matrices)
    assert len(fig.axes) == 2 * len(matrices)  # a colorbar beside each panel
    assert torch.allclose(torch.as_tensor(panels[0].images[0].get_array().data), matrices["pooling"])
    assert panels[0].get_xlabel() == "input token n"
    fig = plot_token_weights(matrices, grid=4, token=(1, 2))
    shown = torch.as_tensor(fig.axes[0].images[0].get_array().data)
    assert torch.allclose(shown, matrices["pooling"][1 * 4 + 2].reshape(4, 4))
    with pytest.raises(ValueError, match="outside"):
        plot_token_weights(matrices, grid=4, token=(4, 0))


TINY_MODEL = create_model("cifar_poolformer", dims=(8, 8, 8, 8), depths=(1, 2, 1, 1)).eval()


@pytest.mark.parametrize("call, message", [
    (lambda: mixing_matrix(Pooling(3), 0, 4), "height must be 1 or more, got 0"),
    (lambda: mixing_matrix(Pooling(3), 4, -1), "width must be 1 or more, got -1"),
    (lambda: example_mixers(dim=0), "dim must be 1 or more, got 0"),
    (lambda: example_mixers(grid=0), "grid must be 1 or more, got 0"),
    (lambda: example_mixers(pool_size=4), "pool_size must be an odd positive int .* got 4"),
    (lambda: model_mixing_matrix(TINY_MODEL, 4), r"stage must be in \[-4, 3\], got 4"),
    (lambda: model_mixing_matrix(TINY_MODEL, 1, block=2), r"block must be in \[-2, 1\], got 2"),
    (lambda: model_mixing_matrix(TINY_MODEL, 0, block=-2, image=torch.zeros(1, 3, 32, 32)),
     r"block must be in \[-1, 0\], got -2"),
    (lambda: plot_token_weights({"x": torch.eye(16)}, 4, token=(4, 0)), r"token \(4, 0\) is outside the 4x4 grid"),
])
def test_out_of_range_arguments_name_the_argument_value_and_range(call, message):
    with pytest.raises(ValueError, match=message):
        call()
