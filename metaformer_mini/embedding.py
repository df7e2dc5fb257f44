r"""InputEmb: :math:`X = \mathrm{InputEmb}(I)`, turning pixels into tokens.

Two styles: the hierarchical models embed with an overlapping strided convolution and keep the
tokens on a (B, C, H/s, W/s) grid (PoolFormer's stem is 7x7 stride 4, its downsampling layers
3x3 stride 2); ViT cuts the image into non-overlapping p x p patches and flattens them into a
(B, N, C) sequence.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._names import check_range
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


@torch.no_grad()
def whiten_(embed: PatchEmbed, images: torch.Tensor, eps: float = 5e-3) -> torch.Tensor:
    r"""Initialize ``embed``'s convolution to whiten the image patches it sees; return the eigenvalues.

    Every k x k window of ``images`` (B, C, H, W), the normalized training images, is a vector
    :math:`p \in \mathbb{R}^{C k^2}` with covariance :math:`\Sigma = V \Lambda V^\top`. The
    filters become the top D/2 principal directions scaled to unit variance,
    :math:`W = (\Lambda + \epsilon)^{-1/2} V^\top`, and their negatives (D = ``embed_dim``), so
    the tokens start decorrelated with equal variance instead of waiting for the first layer to
    learn it (Coates & Ng, 2011; used to train CIFAR-10 fast by Page, 2018, and airbench). The
    bias starts at zero; training changes both as usual.
    """
    conv = embed.proj
    if conv.in_channels != images.shape[1]:
        raise ValueError(f"the embedding expects {conv.in_channels} input channels, the images "
                         f"have {images.shape[1]} (shape {tuple(images.shape)})")
    out, dim = conv.out_channels, conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
    if out % 2 or out // 2 > dim:
        raise ValueError(f"whitening fills {out} filters with +/- principal directions of "
                         f"{dim}-dimensional patches: it needs an even embed_dim of at most {2 * dim}")
    total = torch.zeros(dim, dtype=torch.float64, device=images.device)
    outer, n = torch.zeros(dim, dim, dtype=torch.float64, device=images.device), 0
    for chunk in images.split(64):  # the windows the convolution reads, a few images at a time
        patches = F.unfold(chunk.double(), conv.kernel_size, dilation=conv.dilation,
                           stride=conv.stride).transpose(1, 2).reshape(-1, dim)
        total, outer, n = total + patches.sum(0), outer + patches.T @ patches, n + len(patches)
    mean = total / n
    eigenvalues, eigenvectors = torch.linalg.eigh(outer / n - torch.outer(mean, mean))
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)  # largest first
    w = (eigenvectors[:, :out // 2] / torch.sqrt(eigenvalues[:out // 2] + eps)).T
    conv.weight.copy_(torch.cat([w, -w]).reshape(conv.weight.shape).to(conv.weight))
    if conv.bias is not None:
        conv.bias.zero_()
    return eigenvalues.float()


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Return the non-overlapping patches of (B, C, H, W) images as (B, N, patch_size**2 * C)."""
    check_range("patch_size", patch_size, "[1, inf)")
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
