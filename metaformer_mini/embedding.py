r"""InputEmb: :math:`X = \mathrm{InputEmb}(I)`, turning pixels into tokens.

Two styles: the hierarchical models embed with an overlapping strided convolution and keep the
tokens on a (B, C, H/s, W/s) grid (PoolFormer's stem is 7x7 stride 4, its downsampling layers
3x3 stride 2); ViT cuts the image into non-overlapping p x p patches and flattens them into a
(B, N, C) sequence.
"""
from __future__ import annotations

import torch
from torch import nn

from .norms import make_norm


class PatchEmbed(nn.Module):
    r"""Conv patch embedding :math:`X = \mathrm{Conv}_{k, s, p}(I)`, (B, C_in, H, W) -> (B, C, H', W').

    ``H' = floor((H + 2p - k) / s) + 1``. ``norm`` names an optional norm, applied after the
    convolution (the stem of MetaFormer Baselines) or before it (``pre_norm``, their
    downsampling layers); PoolFormer uses none.
    """

    def __init__(self, in_chans: int, embed_dim: int, kernel_size: int, stride: int,
                 padding: int, norm: str = "none", pre_norm: bool = False):
        super().__init__()
        self.pre_norm = make_norm(norm, in_chans) if pre_norm else nn.Identity()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size, stride=stride, padding=padding)
        self.norm = nn.Identity() if pre_norm else make_norm(norm, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(self.pre_norm(x)))


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Return the non-overlapping patches of (B, C, H, W) images as (B, N, patch_size**2 * C)."""
    b, c, h, w = images.shape
    if h % patch_size or w % patch_size:
        raise ValueError(f"image size {h}x{w} is not divisible by patch_size {patch_size}")
    p = patch_size
    patches = images.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
    return patches.reshape(b, (h // p) * (w // p), p * p * c)


class FlatPatchEmbed(nn.Module):
    r"""ViT's InputEmb: :math:`X = \mathrm{patchify}(I)\, W_e`, tokens (B, N, C) with N = HW/p^2.

    A p x p convolution with stride p is the same linear map applied to every patch.
    """

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(images).flatten(2).transpose(1, 2)
