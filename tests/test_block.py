"""Tests for metaformer_mini/block.py: the two residual equations of the MetaFormer block."""
import torch
import torch.nn.functional as F

from metaformer_mini.block import LayerScale, MetaFormerBlock
from metaformer_mini.mixers import Pooling


def group_norm(x, weight, bias, eps=1e-5):
    mean = x.mean((1, 2, 3), keepdim=True)
    var = x.var((1, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)


def channel(vector):
    return vector.view(1, -1, 1, 1)


def randomized_block(**kwargs) -> MetaFormerBlock:
    torch.manual_seed(0)
    block = MetaFormerBlock(8, Pooling(3), **kwargs)
    with torch.no_grad():
        for name, p in block.named_parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1.0 if "norm" in name and "weight" in name else 0.0))
    return block.eval()


def test_block_computes_the_two_equations():
    block = randomized_block(layer_scale_init=1e-5)
    x = torch.randn(2, 8, 5, 5)
    n1 = group_norm(x, block.norm1.weight, block.norm1.bias)
    y = x + channel(block.layer_scale1.scale) * (F.avg_pool2d(n1, 3, 1, 1, count_include_pad=False) - n1)
    n2 = group_norm(y, block.norm2.weight, block.norm2.bias)
    hidden = F.gelu(torch.einsum("oc,bchw->bohw", block.mlp.fc1.weight[:, :, 0, 0], n2)
                    + channel(block.mlp.fc1.bias))
    mlp = torch.einsum("co,bohw->bchw", block.mlp.fc2.weight[:, :, 0, 0], hidden) + channel(block.mlp.fc2.bias)
    z = y + channel(block.layer_scale2.scale) * mlp
    torch.testing.assert_close(block(x), z, atol=1e-5, rtol=1e-5)


def test_layer_scale_starts_at_init_value():
    scale = LayerScale(4, 1e-5)
    torch.testing.assert_close(scale.scale, torch.full((4,), 1e-5))
    x = torch.randn(1, 4, 2, 2)
    torch.testing.assert_close(scale(x), x * 1e-5)


def test_res_scale_scales_the_shortcut():
    block = randomized_block(layer_scale_init=None, res_scale_init=1.0, channel_mlp=False)
    x = torch.randn(1, 8, 4, 4)
    n1 = block.norm1(x)
    expected = channel(block.shortcut1.scale) * x + block.token_mixer(n1)
    torch.testing.assert_close(block(x), expected)


def test_ablations_without_residual_and_without_mlp():
    x = torch.randn(1, 8, 4, 4)
    block = randomized_block(residual=False, channel_mlp=False)
    assert block.mlp is None
    torch.testing.assert_close(block(x), channel(block.layer_scale1.scale) * block.token_mixer(block.norm1(x)))


def test_drop_path_drops_whole_branches_only_in_training():
    block = randomized_block(drop_path=1.0)
    x = torch.randn(3, 8, 4, 4)
    block.train()
    torch.testing.assert_close(block(x), x)  # both branches dropped for every sample
    block.eval()
    assert not torch.allclose(block(x), x)
    block = randomized_block(drop_path=0.5).train()
    torch.manual_seed(1)
    out = torch.stack([block(x) for _ in range(20)])
    kept = ~torch.isclose(out, x).flatten(2).all(-1)  # (trials, samples): branch active somewhere
    assert kept.any() and not kept.all()
