"""Tests for metaformer_mini/embedding.py: conv patch embedding and the flat ViT patchify."""
import pytest
import torch
import torch.nn.functional as F

from metaformer_mini.embedding import FlatPatchEmbed, PatchEmbed, patchify, whiten_
from metaformer_mini.norms import LayerNorm2d


@pytest.mark.parametrize("kernel,stride,padding,size,out", [(7, 4, 2, 224, 56), (3, 2, 1, 56, 28),
                                                            (3, 2, 1, 7, 4), (3, 2, 1, 32, 16)])
def test_patch_embed_is_a_strided_conv(kernel, stride, padding, size, out):
    torch.manual_seed(0)
    embed = PatchEmbed(3, 8, kernel, stride, padding)
    x = torch.randn(1, 3, size, size)
    y = embed(x)
    assert y.shape == (1, 8, out, out)
    torch.testing.assert_close(y, F.conv2d(x, embed.proj.weight, embed.proj.bias, stride, padding))


def test_patch_embed_norm_after_or_before_the_conv():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8)
    post = PatchEmbed(4, 6, 3, 2, 1, norm="layer")
    assert isinstance(post.norm, LayerNorm2d) and post.norm.normalized_shape == (6,)
    torch.testing.assert_close(post(x), post.norm(post.proj(x)))
    pre = PatchEmbed(4, 6, 3, 2, 1, norm="layer", pre_norm=True)
    assert isinstance(pre.pre_norm, LayerNorm2d) and pre.pre_norm.normalized_shape == (4,)
    torch.testing.assert_close(pre(x), pre.proj(pre.pre_norm(x)))


def test_patchify_cuts_row_major_patches_flattened_as_p_p_c():
    images = torch.arange(2 * 3 * 4 * 6.0).reshape(2, 3, 4, 6)
    patches = patchify(images, 2)
    assert patches.shape == (2, 6, 12)
    # patch 4 is row 1, column 1: pixels [2:4, 2:4], flattened (row, column, channel)
    expected = images[1, :, 2:4, 2:4].permute(1, 2, 0).reshape(-1)
    torch.testing.assert_close(patches[1, 4], expected)


def test_patchify_rejects_indivisible_sizes():
    with pytest.raises(ValueError, match="5x6.*patch_size 2"):
        patchify(torch.zeros(1, 3, 5, 6), 2)
    with pytest.raises(ValueError, match="patch_size must be 1 or more, got 0"):
        patchify(torch.zeros(1, 3, 4, 4), 0)


def test_flat_patch_embed_is_one_linear_map_per_patch():
    torch.manual_seed(0)
    embed = FlatPatchEmbed(3, 10, patch_size=4)
    images = torch.randn(2, 3, 8, 12)
    tokens = embed(images)
    assert tokens.shape == (2, 6, 10)
    weight = embed.proj.weight.permute(0, 2, 3, 1).reshape(10, -1)  # (C, p*p*C_in), (p, p, c) order
    torch.testing.assert_close(tokens, patchify(images, 4) @ weight.T + embed.proj.bias,
                               atol=1e-5, rtol=1e-5)


def test_whiten_decorrelates_the_patches_the_stem_reads():
    torch.manual_seed(0)
    mixing = torch.randn(3, 3) + 2 * torch.eye(3)  # correlated colour channels
    images = torch.einsum("dc,bchw->bdhw", mixing, torch.randn(64, 3, 16, 16).cumsum(-1).cumsum(-2))
    embed = PatchEmbed(3, 16, 3, 2, 1)
    eigenvalues = whiten_(embed, images, eps=0.0)
    assert eigenvalues.shape == (27,) and bool((eigenvalues[:-1] >= eigenvalues[1:]).all())
    tokens = F.conv2d(images, embed.proj.weight, embed.proj.bias, stride=2)  # the windows it read
    flat = tokens.permute(0, 2, 3, 1).reshape(-1, 16).double()
    torch.testing.assert_close(torch.cov(flat[:, :8].T), torch.eye(8, dtype=torch.float64),
                               atol=1e-3, rtol=0)
    torch.testing.assert_close(embed.proj.weight[8:], -embed.proj.weight[:8])  # and the negatives
    assert embed.proj.bias.abs().max() == 0


def test_whiten_names_what_does_not_fit():
    with pytest.raises(ValueError, match="expects 3 input channels, the images have 1"):
        whiten_(PatchEmbed(3, 8, 3, 2, 1), torch.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match="even embed_dim of at most 54"):
        whiten_(PatchEmbed(3, 64, 3, 2, 1), torch.randn(2, 3, 8, 8))
