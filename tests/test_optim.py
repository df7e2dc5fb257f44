import math

import pytest
import torch

from metaformer_mini import create_model
from metaformer_mini.optim import Muon, muon_params, orthogonalize


@pytest.mark.parametrize("shape", [(64, 16), (16, 64), (48, 32)])
def test_orthogonalize_keeps_the_singular_vectors_and_evens_the_singular_values(shape):
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    g = g @ torch.diag(torch.logspace(-1, 0, shape[-1]))  # singular values over a decade
    o = orthogonalize(g)
    assert o.dtype == g.dtype and o.shape == g.shape
    u, s, vh = torch.linalg.svd(g, full_matrices=False)
    inner = u.T @ o @ vh.T  # diagonal when o has g's singular vectors (up to bf16 rounding)
    diag = torch.diagonal(inner)
    assert (inner - torch.diag(diag)).abs().max() < 0.02
    assert s[0] / s[-1] > 3  # the input's singular values spread out ...
    assert diag.min() > 0.6 and diag.max() < 1.2  # ... the output's all lie near 1


def test_muon_matches_torch_muon_on_matrices():
    torch.manual_seed(0)
    w = torch.randn(48, 24)
    ours, theirs = torch.nn.Parameter(w.clone()), torch.nn.Parameter(w.clone())
    opt_ours = Muon([ours], lr=0.01, weight_decay=0.1)
    opt_theirs = torch.optim.Muon([theirs], lr=0.01, weight_decay=0.1,
                                  adjust_lr_fn="match_rms_adamw")
    for _ in range(3):
        grad = torch.randn(48, 24)
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        opt_ours.step()
        opt_theirs.step()
    moved = (ours - w).pow(2).mean().sqrt()  # each step moves 0.2 lr RMS (AdamW's), 0.002 here
    assert moved > 0.004
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-6)


def test_orthogonalize_in_float32_is_the_bf16_result_without_its_rounding():
    g = torch.randn(48, 32, generator=torch.Generator().manual_seed(0))
    fp32, bf16 = orthogonalize(g, dtype=torch.float32), orthogonalize(g)
    assert fp32.dtype == g.dtype
    assert 0 < (fp32 - bf16).abs().max() < 0.05  # bf16 keeps 8 bits of mantissa


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_muon_flattens_kernels(dtype):
    torch.manual_seed(0)
    kernel = torch.nn.Parameter(torch.randn(8, 4, 3, 3).to(memory_format=torch.channels_last))
    start = kernel.detach().clone()
    kernel.grad = torch.randn_like(kernel)
    grad = kernel.grad.clone()
    Muon([kernel], lr=0.1, ns_dtype=dtype).step()
    momentum = torch.zeros_like(grad).lerp(grad, 0.05)  # the first step, as the docstring's equation
    update = grad.lerp(momentum, 0.95).reshape(8, 36)  # the kernel as the matrix (out, in k k)
    expected = 0.1 * 0.2 * math.sqrt(36) * orthogonalize(update, dtype=dtype).reshape(8, 4, 3, 3)
    assert torch.allclose(start - kernel, expected, rtol=0, atol=1e-6)


def test_muon_params_are_the_stages_matrices():
    model = create_model("cifar_poolformer", downsample_norm="batch")
    names = {id(p): n for n, p in model.named_parameters()}
    chosen = sorted(names[id(p)] for p in muon_params(model))
    assert chosen and all(n.endswith(("mlp.fc1.weight", "mlp.fc2.weight", "downsample.proj.weight"))
                          for n in chosen)
    assert len(chosen) == 2 * 6 + 3  # two per block, one per downsampling
    convformer = create_model("cifar_convformer")  # depthwise (C, 1, k, k) kernels stay with AdamW
    assert all(not (p.ndim == 4 and p.shape[1] == 1) for p in muon_params(convformer))
    assert any(p.ndim == 4 and p.shape[1] == 1 for p in convformer.parameters())


def test_muon_rejects_vectors_and_bad_settings():
    with pytest.raises(ValueError, match=r"shape \(5,\).*AdamW"):
        Muon([torch.nn.Parameter(torch.zeros(5))])
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\), got 1.5"):
        Muon([torch.nn.Parameter(torch.zeros(2, 2))], momentum=1.5)
    for bad, message in [(dict(lr=-1e-3), "lr must be 0 or more, got -0.001"),
                         (dict(weight_decay=-0.1), "weight_decay must be 0 or more, got -0.1"),
                         (dict(ns_steps=0), "ns_steps must be 1 or more, got 0")]:
        with pytest.raises(ValueError, match=message):
            Muon([torch.nn.Parameter(torch.zeros(2, 2))], **bad)
