r"""Token mixers: the ``TokenMixer`` of :math:`Y = \mathrm{TokenMixer}(\mathrm{Norm}(X)) + X`.

Every mixer has the same interface, (B, C, H, W) in and out, so swapping attention for pooling
is a one-word change -- which is the paper's argument. A mixer that mixes tokens with one N x N
matrix (N = H * W) can return it with :meth:`TokenMixer.token_mixing_matrix`; ``out[..., m] =
sum_n M[m, n] * x[..., n]`` for every channel.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ._names import lookup
from .mlp import StarReLU


class TokenMixer(nn.Module):
    """Base class: a module (B, C, H, W) -> (B, C, H, W) that exchanges information between tokens."""

    def token_mixing_matrix(self, height: int, width: int,
                            x: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Return the (N, N) matrix M with ``mixer(x)[c, m] = sum_n M[m, n] x[c, n]``."""
        raise NotImplementedError(
            f"{type(self).__name__} has no single N x N token-mixing matrix "
            "(it mixes each channel differently); matrices exist for pooling, identity, "
            "spatial MLP, random mixing and (for a given input) attention")

    def _matrix_of_linear_map(self, height: int, width: int) -> torch.Tensor:
        """Feed the N one-hot token images through the mixer; column n is the response to token n."""
        n = height * width
        param = next(self.parameters(), None)
        basis = torch.eye(n, device=param.device if param is not None else None)
        with torch.no_grad():
            out = self(basis.reshape(n, 1, height, width))
        return out.reshape(n, n).T


def check_pool_size(pool_size: int) -> None:
    """Raise ValueError unless ``pool_size`` is an odd positive int (a window centred on its token)."""
    if not isinstance(pool_size, int) or pool_size < 1 or pool_size % 2 == 0:
        raise ValueError(f"pool_size must be an odd positive int (so the output keeps the "
                         f"input's H x W), got {pool_size!r}")


class Pooling(TokenMixer):
    r"""PoolFormer's token mixer, eq. (4): :math:`T' = \mathrm{AvgPool}(T) - T`.

    Average pooling with stride 1 over a ``pool_size`` x ``pool_size`` window (padding not
    counted in the average). The input is subtracted because the block adds it back through
    the residual connection. No parameters.
    """

    def __init__(self, pool_size: int = 3):
        super().__init__()
        check_pool_size(pool_size)
        self.pool_size = pool_size
        self.pool = nn.AvgPool2d(pool_size, stride=1, padding=pool_size // 2,
                                 count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x) - x

    def token_mixing_matrix(self, height: int, width: int,
                            x: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Return the banded averaging matrix minus the identity, (N, N)."""
        return self._matrix_of_linear_map(height, width)


class Identity(TokenMixer):
    """The identity mixer (IdentityFormer): no token mixing at all, ``T' = T``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def token_mixing_matrix(self, height: int, width: int,
                            x: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Return the (N, N) identity."""
        return torch.eye(height * width)


class Attention(TokenMixer):
    r"""Multi-head self-attention over the N = H * W tokens (the ViT-style mixer).

    :math:`\mathrm{Attn}(X) = \mathrm{softmax}(Q K^\top / \sqrt{d})\, V` per head, with
    :math:`Q, K, V = X W_q, X W_k, X W_v`, heads concatenated and projected back to C.
    Cost grows as N^2. ``head_dim`` 32 and no biases, as in MetaFormer Baselines.
    """

    def __init__(self, dim: int, head_dim: int = 32, qkv_bias: bool = False,
                 proj_bias: bool = False):
        super().__init__()
        self.head_dim = head_dim
        self.num_heads = max(dim // head_dim, 1)
        inner = self.num_heads * head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=qkv_bias)
        self.proj = nn.Linear(inner, dim, bias=proj_bias)

    def qkv_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return Q, K, V split into heads, each (B, heads, N, head_dim), for x (B, C, H, W)."""
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (B, N, C)
        qkv = self.qkv(tokens).reshape(b, h * w, 3, self.num_heads, self.head_dim)
        return qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, head_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv_heads(x)
        out = F.scaled_dot_product_attention(q, k, v)
        out = self.proj(out.transpose(1, 2).reshape(b, h * w, -1))
        return out.transpose(1, 2).reshape(b, c, h, w)

    def attention_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Return the softmax attention weights, (B, heads, N, N), for input x (B, C, H, W)."""
        q, k, _ = self.qkv_heads(x)
        return torch.softmax(q @ k.transpose(-2, -1) * self.head_dim ** -0.5, dim=-1)

    def token_mixing_matrix(self, height: int, width: int,
                            x: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Return the attention map of one input image (1, C, H, W), averaged over heads."""
        if x is None or x.dim() != 4 or x.shape[0] != 1 or tuple(x.shape[2:]) != (height, width):
            shape = None if x is None else tuple(x.shape)
            raise ValueError(f"attention mixes tokens by an input-dependent matrix: pass x of "
                             f"shape (1, C, {height}, {width}), got {shape}")
        with torch.no_grad():
            return self.attention_maps(x)[0].mean(0)


class SpatialMLP(TokenMixer):
    r"""A spatial (token-mixing) fully connected layer, the MLP-Mixer / ResMLP-style mixer.

    :math:`T' = W T` with a learned :math:`W \in \mathbb{R}^{N \times N}` shared by all
    channels, as the ``SpatialFc`` of the official MetaFormer code. N = H * W is fixed when the
    model is built, so the model accepts only one input resolution.
    """

    def __init__(self, grid: tuple[int, int]):
        super().__init__()
        self.grid = tuple(grid)
        n = self.grid[0] * self.grid[1]
        self.fc = nn.Linear(n, n, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if (h, w) != self.grid:
            raise ValueError(f"SpatialMLP was built for a {self.grid[0]}x{self.grid[1]} token grid "
                             f"and got {h}x{w}; a spatial MLP fixes the number of tokens, so build "
                             "the model with the img_size you feed it")
        return self.fc(x.flatten(2)).reshape(b, c, h, w)

    def token_mixing_matrix(self, height: int, width: int,
                            x: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Return the learned weight W, (N, N)."""
        if (height, width) != self.grid:
            raise ValueError(f"this SpatialMLP mixes a {self.grid[0]}x{self.grid[1]} grid, "
                             f"not {height}x{width}")
        return self.fc.weight.detach().clone()


class RandomMixing(TokenMixer):
    r"""RandFormer's mixer: :math:`T' = R T` with a frozen random row-stochastic N x N matrix.

    ``R = softmax(U)`` row-wise with ``U ~ Uniform(0, 1)``, drawn once at construction and never
    trained (MetaFormer Baselines). N is fixed, like the spatial MLP's.
    """

    def __init__(self, grid: tuple[int, int]):
        super().__init__()
        self.grid = tuple(grid)
        n = self.grid[0] * self.grid[1]
        self.random_matrix = nn.Parameter(torch.softmax(torch.rand(n, n), dim=-1),
                                          requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if (h, w) != self.grid:
            raise ValueError(f"RandomMixing was built for a {self.grid[0]}x{self.grid[1]} token "
                             f"grid and got {h}x{w}; build the model with the img_size you feed it")
        return (x.flatten(2) @ self.random_matrix.T).reshape(b, c, h, w)

    def token_mixing_matrix(self, height: int, width: int,
                            x: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Return the frozen random matrix R, (N, N)."""
        if (height, width) != self.grid:
            raise ValueError(f"this RandomMixing mixes a {self.grid[0]}x{self.grid[1]} grid, "
                             f"not {height}x{width}")
        return self.random_matrix.detach().clone()


class SepConv(TokenMixer):
    r"""ConvFormer's mixer: an inverted depthwise-separable convolution (MobileNetV2 style).

    :math:`T' = \mathrm{Conv}_{pw,2}(\mathrm{DWConv}_{7\times7}(\sigma(\mathrm{Conv}_{pw,1}(T))))`,
    widening C by ``expansion`` with StarReLU between, no biases (MetaFormer Baselines).
    """

    def __init__(self, dim: int, expansion: float = 2.0, kernel_size: int = 7):
        super().__init__()
        mid = int(expansion * dim)
        self.pwconv1 = nn.Conv2d(dim, mid, kernel_size=1, bias=False)
        self.act = StarReLU()
        self.dwconv = nn.Conv2d(mid, mid, kernel_size=kernel_size, padding=kernel_size // 2,
                                groups=mid, bias=False)
        self.pwconv2 = nn.Conv2d(mid, dim, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pwconv2(self.dwconv(self.act(self.pwconv1(x))))


MIXERS = {
    "pooling": lambda dim, grid, pool_size: Pooling(pool_size),
    "identity": lambda dim, grid, pool_size: Identity(),
    "attention": lambda dim, grid, pool_size: Attention(dim),
    "spatial_mlp": lambda dim, grid, pool_size: SpatialMLP(grid),
    "random": lambda dim, grid, pool_size: RandomMixing(grid),
    "sepconv": lambda dim, grid, pool_size: SepConv(dim),
}


def make_mixer(name: str, dim: int, grid: tuple[int, int], pool_size: int = 3) -> TokenMixer:
    """Return the token mixer called ``name`` (one of ``MIXERS``) for C=dim and an H x W grid."""
    return lookup("token mixer", name, MIXERS)(dim, grid, pool_size)
