"""The mixer comparison: one skeleton, several token mixers, measured side by side (the paper's Figure 1).

A *spec* names a model and how it differs from its registry entry::

    {"name": "attention", "model": "cifar_poolformer", "overrides": {"token_mixer": "attention"}}

:func:`compare_mixers` builds each, counts parameters and MACs (fvcore), times inference, measures
memory, and takes the accuracy from a ``train_fn`` (which trains and evaluates it, e.g.
:func:`engine_train_fn`) or from precomputed results; it returns one dict per spec.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import nn

from .._names import check_range
from ..registry import create_model
from .plots import MIXER_LABELS, MIXER_MARKERS, BookFigure, mixer_color, mixer_label, new_figure

Spec = dict[str, Any]
SpecTrainFn = Callable[[Spec], Union[float, dict[str, Any]]]


def _check_spec(spec: Spec) -> None:
    if not isinstance(spec, dict) or "name" not in spec or "model" not in spec:
        raise ValueError(f"a spec is a dict with at least 'name' and 'model' (a registry name), "
                         f"e.g. {{'name': 'pooling', 'model': 'cifar_poolformer'}}; got {spec!r}")


def build_spec(spec: Spec, num_classes: int = 10) -> nn.Module:
    """Return the freshly initialized model a spec describes."""
    _check_spec(spec)
    return create_model(spec["model"], num_classes=num_classes, **spec.get("overrides", {}))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_throughput(model: nn.Module, input_size: tuple[int, ...], batch_size: int = 32,
                       device: Union[str, torch.device] = "cpu", iters: int = 5,
                       warmup: int = 2) -> float:
    """Return inference images/s of ``model`` (moved to ``device``) on random images (median of iters)."""
    for name, value, interval in (("batch_size", batch_size, "[1, inf)"), ("iters", iters, "[1, inf)"),
                                  ("warmup", warmup, "[0, inf)")):
        check_range(name, value, interval)
    device = torch.device(device)
    model = model.to(device).eval()
    images = torch.randn(batch_size, *input_size, device=device)
    times = []
    with torch.inference_mode():
        for i in range(warmup + iters):
            _sync(device)
            start = time.perf_counter()
            model(images)
            _sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return batch_size / float(np.median(times))


def activation_memory_mb(model: nn.Module, input_size: tuple[int, ...],
                         batch_size: int = 32) -> float:
    """Return the MiB of activations a training forward pass keeps for backward (weights excluded).

    Counted on the CPU with autograd's saved-tensor hooks, each storage once: the part of training
    memory that grows with batch size and resolution, and the one the mixers change.
    """
    check_range("batch_size", batch_size, "[1, inf)")
    model = model.cpu().train()
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(torch.randn(batch_size, *input_size))
    return sum(saved.values()) / 2 ** 20


def peak_gpu_memory_mb(model: nn.Module, input_size: tuple[int, ...], batch_size: int = 32,
                       device: Union[str, torch.device] = "cuda") -> float:
    """Return the peak MiB allocated on a GPU by one training forward + backward pass (weights included)."""
    check_range("batch_size", batch_size, "[1, inf)")
    device = torch.device(device)
    model = model.to(device).train()
    images = torch.randn(batch_size, *input_size, device=device)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    model(images).sum().backward()
    torch.cuda.synchronize(device)
    model.zero_grad(set_to_none=True)
    return torch.cuda.max_memory_allocated(device) / 2 ** 20


def _accuracy(spec: Spec, train_fn: Optional[SpecTrainFn], results: dict[str, dict]) -> dict[str, Any]:
    if train_fn is not None:
        out = train_fn(spec)
        return dict(out) if isinstance(out, dict) else {"top1": float(out)}
    return {k: v for k, v in results.get(spec["name"], {}).items() if k != "name"}


def compare_mixers(specs: Sequence[Spec], train_fn: Optional[SpecTrainFn] = None,
                   results: Optional[Sequence[dict[str, Any]]] = None, batch_size: int = 32,
                   iters: int = 5, num_classes: int = 10, measure_speed: bool = True,
                   ) -> list[dict[str, Any]]:
    """Return one row per spec: name, model, mixer, params, macs, top1, throughput and memory.

    The accuracy comes from ``train_fn(spec)`` (a float top-1 or a dict merged into the row) or,
    without one, from the entry of ``results`` (dicts with a 'name') that has the spec's name.
    Throughput is inference images/s at ``batch_size`` on the CPU (and on CUDA when present);
    memory is :func:`activation_memory_mb` (CPU) and :func:`peak_gpu_memory_mb` (CUDA).
    """
    from ..flops import count_params_and_macs  # fvcore is imported only when counting

    if train_fn is not None and results is not None:
        raise ValueError("give train_fn (to train each spec) or results (precomputed), not both")
    by_name = {r["name"]: r for r in (results or [])}
    rows = []
    for spec in specs:
        _check_spec(spec)
        model = build_spec(spec, num_classes)
        size = model.config.img_size
        input_size = (model.config.in_chans, size, size)
        params, macs = count_params_and_macs(model, input_size)
        row: dict[str, Any] = {
            "name": spec["name"], "model": spec["model"],
            "mixer": spec.get("mixer", mixer_label(model.config.token_mixers)),
            "img_size": size, "params": params, "macs": macs}
        if measure_speed:
            row["throughput_cpu"] = measure_throughput(model, input_size, batch_size, "cpu", iters)
            row["activation_mb"] = activation_memory_mb(model, input_size, batch_size)
            if torch.cuda.is_available():
                row["throughput_gpu"] = measure_throughput(model, input_size, batch_size, "cuda", iters)
                row["peak_memory_mb_gpu"] = peak_gpu_memory_mb(model, input_size, batch_size)
                model.cpu()
        row.update(_accuracy(spec, train_fn, by_name))
        rows.append(row)
    return rows


def engine_train_fn(train_config: str = "cifar10-quick", data_dir: Optional[str] = None,
                    progress: bool = True, **settings: Any) -> SpecTrainFn:
    """Return a train_fn that trains a spec with the training engine and reports its test top-1.

    ``settings`` override fields of the named training config (e.g. ``time_budget_min=3``).
    """
    def train_fn(spec: Spec) -> dict[str, Any]:
        from ..configs import get_train_config  # the engine is imported only when training
        from ..train import train

        overrides = {f"model.{k}": v for k, v in spec.get("overrides", {}).items()}
        config = get_train_config(train_config, {"model": spec["model"], **overrides, **settings})
        summary = train(config, data_dir=data_dir, progress=progress)
        return {"top1": summary["final_test_acc"], "train_seconds": summary["train_seconds"]}
    return train_fn


def plot_accuracy_vs_cost(rows: Sequence[dict[str, Any]], x: str = "macs",
                          ax: Optional[Axes] = None, title: Optional[str] = None) -> Figure:
    """Return top-1 against MACs (x='macs') or parameters (x='params'), one colour and marker per mixer.

    Draws on ``ax`` (and returns its figure) when given. Rows of the same mixer (e.g. model sizes) are joined by a line in order of cost, as in the
    paper's Figure 1; every point is labelled with its row name.
    """
    scale, unit = {"macs": (1e9, "MACs (G)"), "params": (1e6, "parameters (M)")}.get(x, (None, None))
    if scale is None:
        raise ValueError(f"x must be 'macs' or 'params', got {x!r}")
    scored = [r for r in rows if r.get("top1") is not None]
    if not scored:
        raise ValueError("no row has a 'top1' accuracy: pass train_fn or results to compare_mixers")
    fig = ax.figure if ax is not None else None
    if ax is None:
        fig, axes = new_figure(1, 1, panel_size=(5.2, 4.0))
        ax = axes[0, 0]
    for mixer in dict.fromkeys(r["mixer"] for r in scored):
        group = sorted((r for r in scored if r["mixer"] == mixer), key=lambda r: r[x])
        ax.plot([r[x] / scale for r in group], [r["top1"] for r in group], color=mixer_color(mixer),
                marker=MIXER_MARKERS.get(mixer, "o"), markersize=8, linewidth=1.5,
                label=MIXER_LABELS.get(mixer, mixer))
        for r in group:
            ax.annotate(r["name"], (r[x] / scale, r["top1"]), textcoords="offset points",
                        xytext=(5, 4), fontsize=8)
    ax.set_xlabel(unit)
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(title or f"Accuracy vs {'MACs' if x == 'macs' else 'model size'}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_mixer_comparison(rows: Sequence[dict[str, Any]],
                          title: str = "Token mixers on one MetaFormer skeleton") -> BookFigure:
    """Return the Figure-1-style pair: accuracy vs MACs (left) and vs parameters (right)."""
    fig, axes = new_figure(1, 2, panel_size=(5.2, 4.0))
    plot_accuracy_vs_cost(rows, "macs", axes[0, 0])
    plot_accuracy_vs_cost(rows, "params", axes[0, 1])
    fig.suptitle(title)
    return fig


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Return the rows as an aligned text table (params in M, MACs in G, speeds in img/s)."""
    columns = [("name", "name", "{}"), ("mixer", "mixer", "{}"), ("params", "params (M)", "{:.2f}"),
               ("macs", "MACs (G)", "{:.3f}"), ("top1", "top-1 (%)", "{:.2f}"),
               ("throughput_cpu", "CPU img/s", "{:.0f}"), ("activation_mb", "act. MiB", "{:.1f}"),
               ("throughput_gpu", "GPU img/s", "{:.0f}"), ("peak_memory_mb_gpu", "GPU MiB", "{:.0f}")]
    scale = {"params": 1e-6, "macs": 1e-9}
    present = [c for c in columns if any(c[0] in r for r in rows)]
    cells = [[head for _, head, _ in present]]
    for r in rows:
        cells.append(["-" if r.get(key) is None else
                      fmt.format(r[key] * scale.get(key, 1) if key in scale else r[key])
                      for key, _, fmt in present])
    widths = [max(len(row[i]) for row in cells) for i in range(len(present))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                               enumerate(zip(row, widths))) for row in cells)
