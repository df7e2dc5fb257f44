"""Parameters and MACs of a model, counted by fvcore as in the paper's tables.

fvcore traces one forward pass and counts one multiply-accumulate (MAC) per multiply-add of the
convolutions, linear layers and matrix products, plus a few per element of each norm; element-wise ops
(pooling, GELU, the residual adds) are left out, as in the paper's "MACs" column. fvcore does not
know ``scaled_dot_product_attention``, so we count it here: QK^T and (softmax)V are two matrix
products of B * heads * N * N * head_dim MACs each.
"""
from __future__ import annotations

import warnings
from math import prod
from typing import Any

import torch
from torch import nn


def sdpa_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """Return the MACs of softmax(Q K^T / sqrt(d)) V for q (..., L, E), k (..., S, E), v (..., S, Ev)."""
    q, k, v = (t.type().sizes() for t in inputs[:3])
    return prod(q[:-1]) * k[-2] * (q[-1] + v[-1])


def count_params_and_macs(model: nn.Module, input_size: tuple[int, ...] = (3, 224, 224)) -> tuple[int, int]:
    """Return (parameters, MACs of one forward pass on one image of ``input_size``).

    Every parameter is counted, frozen ones too (RandFormer's random matrix), as timm does.
    The model is traced in eval mode without gradients; its mode is restored afterwards.
    """
    first = next(model.parameters(), None)
    image = torch.zeros(1, *input_size, device=first.device if first is not None else "cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # fvcore's import calls the deprecated torch.jit.script; tracing warns about
            # shape-dependent Python code. Imported here so `import metaformer_mini` stays light.
            warnings.simplefilter("ignore")
            from fvcore.nn import FlopCountAnalysis

            analysis = FlopCountAnalysis(model, image)
            analysis.set_op_handle("aten::scaled_dot_product_attention", sdpa_macs)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            macs = analysis.total()
    finally:
        model.train(was_training)
    return sum(p.numel() for p in model.parameters()), int(macs)
