"""CIFAR-10 test accuracy against wall-clock for the ``cifar10-quick`` config (and the ImageNet S12 step on a GPU).

    python benchmarks/cifar_quick.py --budgets 3 10
    python benchmarks/cifar_quick.py --budgets 3 --set model.act=gelu   # try a variation

Each budget is one run of ``python -m metaformer_mini.train --config cifar10-quick
--time-budget-min B``: the cosine schedule is fitted to B minutes of training (evaluation and
data loading are not counted; both are printed). The goals on a 2-core CPU are >= 70% in 3
minutes and >= 85% in 10 minutes. Timings depend on what else the machine runs, so the load
average is printed next to every number. With a CUDA GPU the script also measures the
training throughput of PoolFormer-S12 at 224x224 (synthetic data, bf16, channels_last).
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Optional

import torch

from metaformer_mini._io import write_json
from metaformer_mini._names import flag
from metaformer_mini.configs import get_train_config
from metaformer_mini.registry import create_model
from metaformer_mini.train import train

ROOT = Path(__file__).resolve().parent.parent
GOALS = {3: 70.0, 10: 85.0}


def run_budget(minutes: float, data_dir: Path, out: Path, sets: list[str]) -> dict:
    """Train cifar10-quick for ``minutes`` of training time; return accuracy, timings and load."""
    config = get_train_config("cifar10-quick", [*sets, f"time_budget_min={minutes}"])
    load_before = os.getloadavg()[0]
    summary = train(config, data_dir, out, progress=False)
    return {"budget_min": minutes, "test_acc": summary["final_test_acc"],
            "epochs": summary["epochs_completed"], "train_s": summary["train_seconds"],
            "wall_s": summary["wall_seconds"], "images_per_s": summary["images_per_s"],
            "amp": summary["amp"], "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "goal": GOALS.get(int(minutes)) if float(minutes).is_integer() else None}


def cpu_name() -> str:
    """Return the processor's model name (from /proc/cpuinfo on Linux), else the platform's word."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def imagenet_step_throughput(batch: int = 128, steps: int = 20) -> dict:
    """Return training images/s of PoolFormer-S12 at 224x224 on the GPU (synthetic data)."""
    device = torch.device("cuda")
    model = create_model("poolformer_s12").to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    x = torch.randn(batch, 3, 224, 224, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=device)
    for i in range(steps + 5):
        if i == 5:  # the first steps pick kernels
            torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"gpu": torch.cuda.get_device_name(device), "batch": batch,
            "images_per_s": steps * batch / seconds}


def main(argv: Optional[list[str]] = None) -> None:
    """Run the budgets, print the table, write it as JSON."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budgets", type=flag("(0, inf)", float), nargs="+", default=[3, 10],
                   help="minutes of training")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "cifar10"))
    p.add_argument("--out", default=str(ROOT / "runs" / "cifar_quick"), help="run folders go here")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra config overrides")
    p.add_argument("--table", default=str(ROOT / "results" / "cifar_quick.json"),
                   help="the table as JSON (the committed one is what chapter 6 shows)")
    args = p.parse_args(argv)
    out = Path(args.out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    print(f"cifar10-quick on {cpu_name()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = []
    for minutes in args.budgets:
        rows.append(run_budget(minutes, Path(args.data_dir), out / f"{stamp}-{minutes:g}min", args.set))
        r = rows[-1]
        print(f"budget {minutes:g} min: test acc {r['test_acc']:.2f}% (goal {r['goal']}) after "
              f"{r['epochs']:.1f} epochs, {r['train_s']:.0f} s training / {r['wall_s']:.0f} s wall, "
              f"{r['images_per_s']:.0f} img/s, load {r['load'][0]} -> {r['load'][1]}", flush=True)
    print("\n| budget | CIFAR-10 test acc | goal | epochs | train s | wall s | img/s | load avg before -> after |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['budget_min']:g} min | {r['test_acc']:.2f}% | {r['goal'] or '-'}% | "
              f"{r['epochs']:.1f} | {r['train_s']:.0f} | {r['wall_s']:.0f} | "
              f"{r['images_per_s']:.0f} | {r['load'][0]} -> {r['load'][1]} |")
    result = {"cifar10_quick": rows, "sets": args.set, "torch": torch.__version__,
              "date": time.strftime("%Y-%m-%d"), "cpu": cpu_name(),
              "cores": os.cpu_count(),
              "command": "python benchmarks/cifar_quick.py --budgets " + " ".join(f"{b:g}" for b in args.budgets)
                         + (" --set " + " ".join(args.set) if args.set else "")}
    if torch.cuda.is_available():
        result["imagenet_s12_gpu"] = imagenet_step_throughput()
        g = result["imagenet_s12_gpu"]
        print(f"\nPoolFormer-S12 training step on {g['gpu']}: {g['images_per_s']:.0f} images/s "
              f"(batch {g['batch']}, 224x224, bf16, channels_last)")
    write_json(args.table, result)


if __name__ == "__main__":
    main()
