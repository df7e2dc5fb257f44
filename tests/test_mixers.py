"""Tests for metaformer_mini/mixers.py: every token mixer against a hand-written version."""
import math

import pytest
import torch
import torch.nn.functional as F

from metaformer_mini.mixers import (MIXERS, Attention, Identity, Pooling, RandomMixing, SepConv,
                                    SpatialMLP, TokenMixer, make_mixer)


def apply_matrix(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """out[b, c, m] = sum_n M[m, n] x[b, c, n], back on the (H, W) grid."""
    b, c, h, w = x.shape
    return (x.flatten(2) @ matrix.T).reshape(b, c, h, w)


def test_pooling_is_avgpool_minus_x_with_borders_uncounted():
    x = torch.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    # corner (0,0): mean(1,2,4,5)=3; edge (0,1): mean(1..6)=3.5; centre: mean(1..9)=5; ...
    averages = torch.tensor([[3.0, 3.5, 4.0], [4.5, 5.0, 5.5], [6.0, 6.5, 7.0]])
    torch.testing.assert_close(Pooling(3)(x)[0, 0], averages - x[0, 0])


def test_pooling_size_5_and_bad_sizes():
    x = torch.arange(25.0).reshape(1, 1, 5, 5)
    out = Pooling(5)(x)
    torch.testing.assert_close(out[0, 0, 2, 2], x.mean() - x[0, 0, 2, 2])  # sees the whole image
    for bad in (0, 4, 2.0):
        with pytest.raises(ValueError, match=repr(bad)):
            Pooling(bad)


def test_pooling_matrix_rows_and_product():
    torch.manual_seed(0)
    pool = Pooling(3)
    matrix = pool.token_mixing_matrix(3, 3)
    # token 0 is the corner: it averages itself and tokens 1, 3, 4, then subtracts itself
    torch.testing.assert_close(matrix[0], torch.tensor([-0.75, 0.25, 0, 0.25, 0.25, 0, 0, 0, 0]))
    torch.testing.assert_close(matrix.sum(1), torch.zeros(9))
    x = torch.randn(2, 4, 3, 3)
    torch.testing.assert_close(apply_matrix(matrix, x), pool(x))
    x = torch.randn(1, 2, 4, 5)
    torch.testing.assert_close(apply_matrix(pool.token_mixing_matrix(4, 5), x), pool(x))


def test_identity_mixer_and_matrix():
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(Identity()(x), x)
    torch.testing.assert_close(apply_matrix(Identity().token_mixing_matrix(4, 4), x), x)


def test_spatial_mlp_matrix_is_its_weight_and_reproduces_it():
    torch.manual_seed(0)
    mixer = SpatialMLP((3, 4))
    x = torch.randn(2, 5, 3, 4)
    matrix = mixer.token_mixing_matrix(3, 4)
    assert matrix.shape == (12, 12)
    torch.testing.assert_close(apply_matrix(matrix, x), mixer(x))
    with pytest.raises(ValueError, match="3x4.*4x4"):
        mixer(torch.randn(1, 5, 4, 4))
    with pytest.raises(ValueError, match="3x4"):
        mixer.token_mixing_matrix(4, 4)


def test_random_mixing_is_frozen_and_row_stochastic():
    torch.manual_seed(0)
    mixer = RandomMixing((4, 4))
    matrix = mixer.token_mixing_matrix(4, 4)
    torch.testing.assert_close(matrix.sum(1), torch.ones(16))
    assert torch.all(matrix > 0) and not mixer.random_matrix.requires_grad
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(apply_matrix(matrix, x), mixer(x))
    with pytest.raises(ValueError, match="4x4.*2x2"):
        mixer(torch.randn(1, 3, 2, 2))


def reference_attention(mixer: Attention, x: torch.Tensor) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d)) V for each head, written out with one loop over heads."""
    b, c, h, w = x.shape
    d, heads = mixer.head_dim, mixer.num_heads
    tokens = x.flatten(2).transpose(1, 2)  # (B, N, C)
    q, k, v = (tokens @ W.T for W in mixer.qkv.weight.chunk(3, dim=0))
    outs = []
    for i in range(heads):
        part = slice(i * d, (i + 1) * d)
        weights = torch.softmax(q[..., part] @ k[..., part].transpose(1, 2) / math.sqrt(d), dim=-1)
        outs.append(weights @ v[..., part])
    out = torch.cat(outs, dim=-1) @ mixer.proj.weight.T
    return out.transpose(1, 2).reshape(b, c, h, w)


def test_attention_equals_the_formula():
    torch.manual_seed(0)
    mixer = Attention(64, head_dim=16)
    x = torch.randn(2, 64, 3, 5)
    assert mixer.num_heads == 4
    torch.testing.assert_close(mixer(x), reference_attention(mixer, x), atol=1e-5, rtol=1e-5)


def test_attention_maps_rows_sum_to_one_and_give_the_output():
    torch.manual_seed(0)
    mixer = Attention(32, head_dim=16)
    x = torch.randn(1, 32, 4, 4)
    maps = mixer.attention_maps(x)
    assert maps.shape == (1, 2, 16, 16)
    torch.testing.assert_close(maps.sum(-1), torch.ones(1, 2, 16))
    # head-averaged map: one matrix per image, still row-stochastic
    matrix = mixer.token_mixing_matrix(4, 4, x)
    torch.testing.assert_close(matrix, maps[0].mean(0))
    # with identity projections and one head, the map applied to the tokens is the output
    single = Attention(32, head_dim=32)
    with torch.no_grad():
        single.qkv.weight.copy_(torch.cat([torch.randn(64, 32) * 0.2, torch.eye(32)]))
        single.proj.weight.copy_(torch.eye(32))
    torch.testing.assert_close(apply_matrix(single.token_mixing_matrix(4, 4, x), x), single(x),
                               atol=1e-5, rtol=1e-5)


def test_attention_matrix_needs_one_input_of_the_right_size():
    mixer = Attention(32)
    with pytest.raises(ValueError, match=r"\(1, C, 4, 4\), got None"):
        mixer.token_mixing_matrix(4, 4)
    with pytest.raises(ValueError, match=r"got \(2, 32, 4, 4\)"):
        mixer.token_mixing_matrix(4, 4, torch.randn(2, 32, 4, 4))


def test_sepconv_is_pointwise_depthwise_pointwise():
    torch.manual_seed(0)
    mixer = SepConv(8)
    x = torch.randn(2, 8, 9, 9)
    hidden = F.conv2d(x, mixer.pwconv1.weight)
    hidden = mixer.act.scale * F.relu(hidden) ** 2 + mixer.act.bias
    hidden = F.conv2d(hidden, mixer.dwconv.weight, padding=3, groups=16)
    torch.testing.assert_close(mixer(x), F.conv2d(hidden, mixer.pwconv2.weight))
    with pytest.raises(NotImplementedError, match="SepConv"):
        mixer.token_mixing_matrix(9, 9)


@pytest.mark.parametrize("name", sorted(MIXERS))
def test_every_mixer_keeps_the_shape(name):
    mixer = make_mixer(name, dim=32, grid=(4, 4))
    assert isinstance(mixer, TokenMixer)
    assert mixer(torch.randn(2, 32, 4, 4)).shape == (2, 32, 4, 4)


def test_unknown_mixer_names_the_closest():
    with pytest.raises(ValueError, match=r"unknown token mixer 'atention'; did you mean 'attention'"):
        make_mixer("atention", 32, (4, 4))
