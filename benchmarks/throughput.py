"""Images/s of our poolformer_s12 against timm's, forward and train step, in one process.

Both models run on the same device with the same batch, thread count and memory format; their
steps are timed alternately (ours, timm, ours, ...) so that load from other processes on a shared
machine hits both alike, and each model's fastest step is reported (other processes can only
slow a step down, so the fastest is the least disturbed). The table is printed and written to
``results/throughput.json`` (``--out``) with the command that made it. Example::

    python benchmarks/throughput.py --device cpu --batch 8 --amp none bf16   # fp32 and bf16, 224x224
    python benchmarks/throughput.py --batch 16 --iters 5                # CPU (and CUDA if present)
    python benchmarks/throughput.py --device cuda --batch 128          # compiled too, on CUDA
    python benchmarks/throughput.py --device cpu --compile yes
    python benchmarks/throughput.py --device cpu --amp bf16 --img-size 32 --batch 128   # CIFAR-sized
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import timm
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cifar_quick import cpu_name  # noqa: E402
from metaformer_mini import create_model  # noqa: E402
from metaformer_mini._io import write_json  # noqa: E402
from metaformer_mini._names import flag  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def forward_step(model: nn.Module, images: torch.Tensor, bf16: bool = False) -> Callable[[], None]:
    """Return a function running one inference forward pass of ``model`` on ``images``."""
    model.eval()

    def step() -> None:
        with torch.inference_mode(), torch.autocast(images.device.type, dtype=torch.bfloat16,
                                                    enabled=bf16):
            model(images)
    return step


def train_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
               bf16: bool = False) -> Callable[[], None]:
    """Return a function running one SGD training step (forward, backward, update), in bf16 autocast if asked."""
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = nn.functional.cross_entropy(model(images).float(), labels)
        loss.backward()
        optimizer.step()
    return step


def time_alternately(steps: dict[str, Callable[[], None]], iters: int, warmup: int,
                     device: torch.device) -> dict[str, float]:
    """Return the fastest seconds per call of each step, calling them in turn ``iters`` times."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(iters):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def build_pair(device: torch.device, channels_last: bool, compile_: bool) -> dict[str, nn.Module]:
    """Return {'ours': ..., 'timm': ...} poolformer_s12 models, placed and optionally compiled."""
    torch.manual_seed(0)
    models = {"ours": create_model("poolformer_s12"), "timm": timm.create_model("poolformer_s12")}
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    for name, model in models.items():
        model.to(device, memory_format=memory_format)
        models[name] = torch.compile(model) if compile_ else model
    return models


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=flag("[1, inf)"), default=32, help="images per step")
    parser.add_argument("--iters", type=flag("[1, inf)"), default=10, help="timed steps per model")
    parser.add_argument("--warmup", type=flag("[0, inf)"), default=2, help="untimed steps per model first")
    parser.add_argument("--img-size", type=flag("[32, inf)"), default=224,
                        help="image side (poolformer_s12 downsamples by 32)")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all",
                        help="'all': CPU, and CUDA when present")
    parser.add_argument("--threads", type=flag("[1, inf)"), default=torch.get_num_threads(),
                        help="CPU threads (torch.set_num_threads), the same for both models")
    parser.add_argument("--compile", choices=["auto", "yes", "no"], default="auto",
                        help="also time torch.compile'd models; 'auto': on CUDA only (compiling "
                             "takes minutes on a small CPU)")
    parser.add_argument("--amp", choices=["none", "bf16"], nargs="+", default=["none"],
                        help="none (fp32) and/or bf16: both models under bf16 autocast (as "
                             "cifar10-quick trains); one table row set per mode")
    parser.add_argument("--out", default=str(ROOT / "results" / "throughput.json"),
                        help="the JSON to write")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    if args.device == "cuda" and not devices:
        parser.error("--device cuda was given but torch.cuda.is_available() is False")

    print(f"poolformer_s12, batch {args.batch}, {args.img_size}x{args.img_size}, "
          f"best of {args.iters} steps, {args.threads} CPU threads, torch {torch.__version__}, "
          f"timm {timm.__version__}")
    header = f"{'device':6} {'amp':5} {'format':14} {'compile':7} {'step':7} {'ours img/s':>10} " \
             f"{'timm img/s':>10} {'ours/timm':>9}"
    print(header)
    print("-" * len(header))
    load_before = os.getloadavg()[0]
    rows: list[dict[str, Any]] = []
    for device_name in devices:
        device = torch.device(device_name)
        images = torch.randn(args.batch, 3, args.img_size, args.img_size, device=device)
        labels = torch.randint(0, 1000, (args.batch,), device=device)
        for amp in args.amp:
            for channels_last in (False, True):
                x = images.contiguous(memory_format=torch.channels_last) if channels_last else images
                with_compile = args.compile == "yes" or (args.compile == "auto" and device.type == "cuda")
                for compile_ in (False, True) if with_compile else (False,):
                    models = build_pair(device, channels_last, compile_)
                    for kind in ("forward", "train"):
                        bf16 = amp == "bf16"
                        steps = {name: (forward_step(m, x, bf16) if kind == "forward"
                                        else train_step(m, x, labels, bf16))
                                 for name, m in models.items()}
                        secs = time_alternately(steps, args.iters, args.warmup, device)
                        ours, theirs = args.batch / secs["ours"], args.batch / secs["timm"]
                        fmt = "channels_last" if channels_last else "contiguous"
                        rows.append({"device": device_name, "amp": amp, "format": fmt,
                                     "compile": compile_, "step": kind, "ours_img_s": ours,
                                     "timm_img_s": theirs, "ours_over_timm": ours / theirs})
                        print(f"{device_name:6} {amp:5} {fmt:14} {str(compile_):7} {kind:7} "
                              f"{ours:10.1f} {theirs:10.1f} {ours / theirs:9.2f}")
    result = {"command": shlex.join(["python", "benchmarks/throughput.py", *argv]),
              "date": time.strftime("%Y-%m-%d"), "cpu": cpu_name(), "cores": os.cpu_count(),
              "threads": args.threads, "torch": torch.__version__, "timm": timm.__version__,
              "model": "poolformer_s12", "batch": args.batch, "img_size": args.img_size,
              "iters": args.iters, "warmup": args.warmup,
              "load": [round(load_before, 2), round(os.getloadavg()[0], 2)], "rows": rows}
    print(f"load average {result['load'][0]} -> {result['load'][1]}")
    print(f"wrote {write_json(args.out, result)}")


if __name__ == "__main__":
    main()
