"""Tests for metaformer_mini/norms.py: each norm against its formula written out."""
import pytest
import torch
from torch import nn

from metaformer_mini.norms import NORMS, GroupNorm1, LayerNorm2d, make_norm


def _affine(norm: nn.Module) -> nn.Module:
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        if norm.bias is not None:
            norm.bias.uniform_(-1, 1)
    return norm


def test_group_norm1_normalizes_each_sample_over_c_h_w():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 3, 5) * 3 + 1
    norm = _affine(GroupNorm1(4))
    mean = x.mean((1, 2, 3), keepdim=True)
    var = x.var((1, 2, 3), unbiased=False, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + 1e-5) * norm.weight.view(1, -1, 1, 1) \
        + norm.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(norm(x), expected)


def test_layer_norm2d_normalizes_each_position_over_channels():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 3, 5) * 3 + 1
    norm = _affine(LayerNorm2d(4))
    mean = x.mean(1, keepdim=True)
    var = x.var(1, unbiased=False, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + 1e-5) * norm.weight.view(1, -1, 1, 1) \
        + norm.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(norm(x), expected)


@pytest.mark.parametrize("name", ["group_nobias", "layer_nobias"])
def test_nobias_variants_have_no_bias_and_eps_1e_6(name):
    norm = make_norm(name, 8)
    assert norm.bias is None and norm.eps == 1e-6
    assert sum(p.numel() for p in norm.parameters()) == 8


def test_make_norm_builds_each_kind():
    assert isinstance(make_norm("group", 8), GroupNorm1)
    assert isinstance(make_norm("layer", 8), LayerNorm2d)
    assert isinstance(make_norm("batch", 8), nn.BatchNorm2d)
    x = torch.randn(1, 8, 2, 2)
    assert torch.equal(make_norm("none", 8)(x), x)
    assert set(NORMS) == {"group", "group_nobias", "layer", "layer_nobias", "batch", "none"}


def test_unknown_norm_names_the_value_and_the_closest():
    with pytest.raises(ValueError, match=r"unknown norm 'groop'; did you mean 'group'\?"):
        make_norm("groop", 8)
