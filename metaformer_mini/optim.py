"""Muon: momentum whose update for each weight matrix is orthogonalized (the CIFAR quick path's optimizer)."""
from __future__ import annotations

import math
from typing import Callable, Iterable, Optional

import torch
from torch import nn

from ._names import check_range

# the quintic Newton-Schulz coefficients of Jordan et al. (2024), also torch.optim.Muon's default
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def orthogonalize(g: torch.Tensor, steps: int = 5, eps: float = 1e-7,
                  dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    r"""Return about :math:`UV^\top` for a matrix :math:`G = USV^\top`, by a Newton-Schulz iteration.

    Scale :math:`X_0 = G / \|G\|_F` (all singular values now at most 1), then
    :math:`X_{k+1} = aX_k + (bA + cA^2)X_k` with :math:`A = X_kX_k^\top`. Each step maps every
    singular value :math:`s` to :math:`as + bs^3 + cs^5`, which pushes them all towards 1 (to
    roughly 0.7-1.2 after five steps, close enough for an update direction) and leaves
    :math:`U` and :math:`V` alone. Works on the shorter side (:math:`A` is the smaller Gram
    matrix) and by default in bfloat16, as ``torch.optim.Muon`` does: the iteration needs no
    more precision, and bf16 products are the fast ones on a GPU and on a CPU with bf16 units.
    A CPU without them emulates bf16, far slower than float32, so there ``dtype`` is float32.
    """
    a, b, c = NS_COEFFICIENTS
    x = g.to(dtype)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return (x.T if tall else x).to(g.dtype)


def muon_params(model: nn.Module) -> list[nn.Parameter]:
    """Return the weight matrices Muon trains: every kernel or matrix in ``model.stages`` but depthwise ones.

    That is the channel MLP's :math:`W_1, W_2` (stored as 1x1 kernels), the downsampling
    convolutions (a kernel (out, in, k, k) is the matrix (out, in k k) of the convolution as a
    product) and the mixers' matrices (attention, spatial MLP). The stem, the head, biases,
    norms and layer scales stay with AdamW, as in Jordan et al.
    """
    return [p for p in model.stages.parameters()
            if p.requires_grad and p.ndim >= 2 and not (p.ndim == 4 and p.shape[1] == 1)]


class Muon(torch.optim.Optimizer):
    r"""Muon (Jordan et al., 2024) for matrices and conv kernels: orthogonalized Nesterov momentum.

    For a weight :math:`W` of shape (A, B) (a kernel is flattened to (out, in k k)) with gradient :math:`G_t`:

    .. math::
        M_t = \mu M_{t-1} + (1 - \mu) G_t, \qquad
        O_t = \mathrm{NS}\big((1 - \mu) G_t + \mu M_t\big) \approx UV^\top, \qquad
        W_t = (1 - \eta\lambda) W_{t-1} - 0.2\sqrt{\max(A, B)}\,\eta\, O_t

    Every direction of the update gets the same step, however small its gradient was: the
    rare directions learn as fast as the dominant ones. The factor :math:`0.2\sqrt{\max(A, B)}`
    gives the update the RMS of an AdamW update (Liu et al., 2025), so one learning rate
    :math:`\eta` and weight decay :math:`\lambda` serve both optimizers. ``torch.optim.Muon``
    computes the same update (``adjust_lr_fn="match_rms_adamw"``) but takes only 2-D
    parameters, while the channel MLP stores (out, in, 1, 1) kernels, the official checkpoints'
    layout. ``ns_dtype`` is the precision of the Newton-Schulz iteration (see ``orthogonalize``).
    """

    def __init__(self, params: Iterable[nn.Parameter], lr: float = 1e-3, weight_decay: float = 0.0,
                 momentum: float = 0.95, ns_steps: int = 5, ns_dtype: torch.dtype = torch.bfloat16):
        for name, value, interval in (("lr", lr, "[0, inf)"), ("weight_decay", weight_decay, "[0, inf)"),
                                      ("momentum", momentum, "[0, 1)"), ("ns_steps", ns_steps, "[1, inf)")):
            check_range(name, value, interval)
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                                      ns_steps=ns_steps))
        self.ns_dtype = ns_dtype
        for group in self.param_groups:
            flat = [p for p in group["params"] if p.ndim < 2]
            if flat:
                raise ValueError(f"Muon trains matrices and kernels; got a parameter of shape "
                                 f"{tuple(flat[0].shape)} (give biases, norms and scales to AdamW)")

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], float]] = None) -> Optional[float]:
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            lr, mu = group["lr"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum" not in state:
                    state["momentum"] = torch.zeros_like(p)
                state["momentum"].lerp_(p.grad, 1 - mu)
                update = p.grad.lerp(state["momentum"], mu).reshape(len(p), -1)
                rows, cols = update.shape
                p.mul_(1 - lr * group["weight_decay"])
                p.add_(orthogonalize(update, group["ns_steps"], dtype=self.ns_dtype).view_as(p),
                       alpha=-0.2 * math.sqrt(max(rows, cols)) * lr)
        return loss
