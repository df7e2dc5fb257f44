"""Tests for metaformer_mini/flops.py: parameter and MAC counts against the paper and by hand."""
import pytest
import torch
from torch import nn

from metaformer_mini import create_model
from metaformer_mini.flops import count_params_and_macs
from metaformer_mini.mixers import Attention, RandomMixing, SpatialMLP


# PoolFormer paper, Table 1/2: parameters (exact, official code) and MACs (G) at 224x224.
@pytest.mark.parametrize("name,params,gmacs", [
    ("poolformer_s12", 11_915_176, 1.8), ("poolformer_s24", 21_388_968, 3.4),
    ("poolformer_s36", 30_862_760, 5.0), ("poolformer_m36", 56_172_520, 8.8),
    ("poolformer_m48", 73_473_448, 11.6),
])
def test_poolformer_params_and_macs_match_the_paper(name, params, gmacs):
    counted_params, macs = count_params_and_macs(create_model(name))
    assert counted_params == params
    assert round(macs / 1e9, 1) == gmacs


def test_hand_counted_conv_and_linear():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    params, macs = count_params_and_macs(model, (3, 8, 8))
    assert params == (4 * 3 * 3 * 3 + 4) + (256 * 10 + 10)
    # conv: 8*8 outputs x 4 channels x (3*3*3) taps; linear: 256 x 10
    assert macs == 8 * 8 * 4 * 27 + 256 * 10


def test_attention_counts_projections_and_both_matrix_products():
    dim, side, head_dim = 64, 8, 16
    n, heads = side * side, dim // head_dim
    _, macs = count_params_and_macs(Attention(dim, head_dim=head_dim), (dim, side, side))
    projections = n * dim * 3 * dim + n * dim * dim  # qkv and output projection
    products = 2 * heads * n * n * head_dim  # Q K^T and (softmax) V
    assert macs == projections + products


@pytest.mark.parametrize("mixer", [RandomMixing((4, 4)), SpatialMLP((4, 4))])
def test_token_mixing_matrix_product_is_counted(mixer):
    channels, n = 8, 16
    assert count_params_and_macs(mixer, (channels, 4, 4))[1] == channels * n * n


def test_training_mode_is_restored_and_no_grad_is_kept():
    model = create_model("cifar_poolformer").train()
    params, macs = count_params_and_macs(model, (3, 32, 32))
    assert model.training and macs > 0
    assert all(p.grad is None for p in model.parameters())
