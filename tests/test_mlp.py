"""Tests for metaformer_mini/mlp.py: the channel MLP and the activations."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from metaformer_mini.mlp import ACTIVATIONS, ChannelMLP, SquaredReLU, StarReLU, make_act


def test_channel_mlp_is_w2_sigma_w1_on_every_token():
    torch.manual_seed(0)
    mlp = ChannelMLP(6, ratio=2, act="gelu")
    x = torch.randn(2, 6, 3, 4)
    w1, b1 = mlp.fc1.weight[:, :, 0, 0], mlp.fc1.bias
    w2, b2 = mlp.fc2.weight[:, :, 0, 0], mlp.fc2.bias
    tokens = x.flatten(2).transpose(1, 2)  # (B, N, C)
    expected = F.gelu(tokens @ w1.T + b1) @ w2.T + b2
    assert mlp.fc1.weight.shape == (12, 6, 1, 1)
    torch.testing.assert_close(mlp(x), expected.transpose(1, 2).reshape(2, 6, 3, 4))


def test_channel_mlp_does_not_mix_tokens():
    torch.manual_seed(0)
    mlp = ChannelMLP(4)
    x = torch.randn(1, 4, 5, 5)
    changed = x.clone()
    changed[..., 2, 3] += 1.0
    diff = (mlp(changed) - mlp(x)).abs().sum(1)[0]
    assert diff[2, 3] > 0
    diff[2, 3] = 0
    assert torch.all(diff == 0)


def test_channel_mlp_without_bias():
    mlp = ChannelMLP(4, bias=False)
    assert mlp.fc1.bias is None and mlp.fc2.bias is None


def test_star_relu_is_scale_times_relu_squared_plus_bias():
    act = StarReLU(scale=0.8944, bias=-0.4472)
    x = torch.tensor([-2.0, 0.0, 0.5, 3.0])
    torch.testing.assert_close(act(x), torch.tensor([-0.4472, -0.4472, 0.8944 * 0.25 - 0.4472,
                                                     0.8944 * 9 - 0.4472]))
    assert [p.numel() for p in act.parameters()] == [1, 1]


def test_squared_relu():
    torch.testing.assert_close(SquaredReLU()(torch.tensor([-1.0, 2.0])), torch.tensor([0.0, 4.0]))


def test_make_act_builds_each_and_rejects_unknown_names():
    assert isinstance(make_act("gelu"), nn.GELU) and isinstance(make_act("ReLU"), nn.ReLU)
    assert set(ACTIVATIONS) == {"gelu", "relu", "silu", "starrelu", "squaredrelu"}
    with pytest.raises(ValueError, match=r"unknown activation 'gelo'; did you mean 'gelu'\?"):
        make_act("gelo")
