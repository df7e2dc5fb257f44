r"""Token-mixing matrices: every mixer as an N x N matrix acting on the N = H * W tokens.

Pooling, identity, the spatial MLP, random mixing and (for one input) attention all compute

.. math:: T'_{c, m} = \sum_n M_{m n} \, T_{c, n} \qquad \text{for every channel } c,

they differ only in M: a band minus the identity (pooling), the identity, a learned matrix,
a frozen random matrix, or a softmax map that depends on the input (attention). Attention is
the one mixer that also mixes channels: head h applies its own map :math:`A_h` to its values
:math:`V_h = T W_{v,h}`, then a projection mixes the heads; its single matrix is the head average.
"""
from __future__ import annotations

from typing import Optional

import torch

from .._names import check_range
from ..mixers import Attention, TokenMixer, make_mixer
from ..model import MetaFormer
from .plots import BookFigure, diverging_norm, heatmap, new_figure

MATRIX_MIXERS = ("pooling", "identity", "attention", "spatial_mlp", "random")


def mixing_matrix(mixer: TokenMixer, height: int, width: int,
                  x: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Return the mixer's (N, N) token-mixing matrix for an H x W grid (attention needs x (1, C, H, W))."""
    if not isinstance(mixer, TokenMixer):
        raise TypeError(f"expected a TokenMixer (pooling, attention, ...), got {type(mixer).__name__}")
    check_range("height", height, "[1, inf)")
    check_range("width", width, "[1, inf)")
    return mixer.token_mixing_matrix(height, width, x).detach().cpu()


def apply_mixing_matrix(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Return ``M`` applied to the tokens of x (B, C, H, W): out[b, c, m] = sum_n M[m, n] x[b, c, n]."""
    b, c, h, w = x.shape
    if matrix.shape != (h * w, h * w):
        raise ValueError(f"a {h}x{w} grid has {h * w} tokens, so the matrix must be "
                         f"({h * w}, {h * w}); got {tuple(matrix.shape)}")
    return (x.flatten(2) @ matrix.to(x).T).reshape(b, c, h, w)


def attention_from_maps(mixer: Attention, x: torch.Tensor) -> torch.Tensor:
    """Return attention's output rebuilt from its maps: proj(concat_h A_h V_h), for x (B, C, H, W)."""
    b, c, h, w = x.shape
    with torch.no_grad():
        maps = mixer.attention_maps(x)  # (B, heads, N, N)
        _, _, values = mixer.qkv_heads(x)    # (B, heads, N, head_dim)
        mixed = (maps @ values).transpose(1, 2).reshape(b, h * w, -1)
        return mixer.proj(mixed).transpose(1, 2).reshape(b, c, h, w)


def mixing_matrix_error(mixer: TokenMixer, x: torch.Tensor) -> float:
    """Return max |mixer(x) - M x| for an input x (1, C, H, W): ~1e-7 when M is the mixer's matrix.

    For attention M x is replaced by proj(concat_h A_h V_h) with the per-head maps A_h.
    """
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"expected one input (1, C, H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[2:]
    with torch.no_grad():
        if isinstance(mixer, Attention):
            return float((mixer(x) - attention_from_maps(mixer, x)).abs().max())
        matrix = mixing_matrix(mixer, h, w, x)
        return float((mixer(x) - apply_mixing_matrix(matrix, x)).abs().max())


def example_mixers(dim: int = 32, grid: int = 8, pool_size: int = 3,
                   seed: int = 0) -> dict[str, TokenMixer]:
    """Return freshly built mixers with a matrix (pooling, identity, attention, spatial MLP, random)."""
    check_range("dim", dim, "[1, inf)")
    check_range("grid", grid, "[1, inf)")
    torch.manual_seed(seed)
    return {name: make_mixer(name, dim, (grid, grid), pool_size).eval() for name in MATRIX_MIXERS}


def _block_mixer(model: MetaFormer, stage: int, block: int = 0) -> TokenMixer:
    """Return the token mixer of block ``block`` of stage ``stage`` (negative: from the end)."""
    check_range("stage", stage, f"[{-len(model.stages)}, {len(model.stages) - 1}]")
    blocks = model.stages[stage].blocks
    check_range("block", block, f"[{-len(blocks)}, {len(blocks) - 1}]")
    return blocks[block].token_mixer


def mixer_inputs(model: MetaFormer, images: torch.Tensor, stage: int,
                 block: int = 0) -> tuple[TokenMixer, torch.Tensor]:
    """Return block ``block`` of stage ``stage``'s token mixer and its input Norm(X) for the images."""
    mixer = _block_mixer(model, stage, block)
    seen = []
    handle = mixer.register_forward_hook(lambda module, args, out: seen.append(args[0].detach()))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model.forward_stages(images)
    finally:
        handle.remove()
        model.train(was_training)
    return mixer, seen[0]


def model_mixing_matrix(model: MetaFormer, stage: int, block: int = 0,
                        image: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Return the (N, N) mixing matrix of one block of a model (attention: for ``image`` (1, 3, H, W))."""
    if image is None:
        mixer = _block_mixer(model, stage, block)
        side = model.config.grids[stage]
        return mixing_matrix(mixer, side, side)
    mixer, x = mixer_inputs(model, image, stage, block)
    return mixing_matrix(mixer, x.shape[2], x.shape[3], x[:1])


def plot_mixing_matrices(matrices: dict[str, torch.Tensor], grid: int,
                         title: str = "Token-mixing matrices") -> BookFigure:
    """Return the matrices side by side, each on a diverging scale centred on 0 with its colorbar."""
    fig, axes = new_figure(1, len(matrices), panel_size=(3.4, 3.0))
    for ax, (name, matrix) in zip(axes[0], matrices.items()):
        heatmap(ax, matrix, name, cmap="RdBu_r", norm=diverging_norm(matrix),
                colorbar_label="weight $M_{mn}$", xlabel="input token n", ylabel="output token m")
    fig.suptitle(f"{title} ({grid}x{grid} grid, N = {grid * grid})")
    return fig


def plot_token_weights(matrices: dict[str, torch.Tensor], grid: int,
                       token: Optional[tuple[int, int]] = None) -> BookFigure:
    """Return, per mixer, the weights one output token gives every input token, drawn on the grid."""
    row, col = token if token is not None else (grid // 2, grid // 2)
    if not (0 <= row < grid and 0 <= col < grid):
        raise ValueError(f"token {token} is outside the {grid}x{grid} grid")
    fig, axes = new_figure(1, len(matrices), panel_size=(3.2, 2.9))
    for ax, (name, matrix) in zip(axes[0], matrices.items()):
        weights = matrix[row * grid + col].reshape(grid, grid)
        heatmap(ax, weights, name, cmap="RdBu_r", norm=diverging_norm(weights),
                colorbar_label="weight", xlabel="token column", ylabel="token row")
        ax.plot(col, row, marker="s", markersize=10, markerfacecolor="none", color="black")
    fig.suptitle(f"Where output token ({row}, {col}) (black square) takes its input from")
    return fig
