"""The GPU goals: CIFAR-10 test accuracy and time of ``cifar10-full``, and the ImageNet S12 step.

    python benchmarks/cifar_full.py                          # the config unchanged: 200 epochs
    python benchmarks/cifar_full.py --time-budget-min 8      # the cosine fitted to 8 minutes
    python benchmarks/cifar_full.py --set device=cpu epochs=1 train_subset=1024 test_subset=500  # smoke run

The goal is >= 94% test top-1 on one GPU. The script first measures the training images/s of
PoolFormer-S12 at 224x224 (``cifar_quick.imagenet_step_throughput``, about 20 seconds), then
trains ``cifar10-full`` once and prints its accuracy, its times, and the first evaluation
(every fifth epoch) that reached the goal, with the wall time by then. The row goes to
``results/cifar_full.json`` unless ``--table`` says elsewhere.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Optional

import torch

from cifar_quick import ROOT, imagenet_step_throughput
from metaformer_mini._io import write_json
from metaformer_mini._names import flag
from metaformer_mini.configs import RANGES, get_train_config
from metaformer_mini.train import train

GOAL = 94.0


def first_at_goal(history: list[dict]) -> dict | None:
    """Return the first evaluated epoch of ``history`` with test top-1 >= GOAL (None if none)."""
    for record in history:
        if record.get("test_top1", -1.0) >= GOAL:
            return {"epoch": record["epoch"], "test_acc": record["test_top1"],
                    "wall_s": record["wall_seconds"], "train_s": record["train_seconds"]}
    return None


def main(argv: Optional[list[str]] = None) -> None:
    """Measure the S12 step (on a GPU), train cifar10-full, print the row and write it as JSON."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--time-budget-min", type=flag(RANGES["time_budget_min"], float), default=0.0,
                   help="fit the schedule to this many minutes of training (0: the config's epochs)")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "cifar10"))
    p.add_argument("--out", default=str(ROOT / "runs" / "cifar_full"), help="run folders go here")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra config overrides")
    p.add_argument("--table", default=str(ROOT / "results" / "cifar_full.json"))
    args = p.parse_args(argv)
    sets = [*args.set, f"time_budget_min={args.time_budget_min}"]
    config = get_train_config("cifar10-full", sets)
    if not torch.cuda.is_available() and config.device != "cpu":
        raise SystemExit("cifar10-full is the GPU config and no CUDA device is visible; on a CPU it "
                         "would take days. For a smoke run, pass --set device=cpu with a small "
                         "epochs= and train_subset=.")
    result: dict = {"torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "goal": GOAL,
                    "command": "python benchmarks/cifar_full.py"
                               + (f" --time-budget-min {args.time_budget_min:g}" if args.time_budget_min else "")
                               + (" --set " + " ".join(args.set) if args.set else "")}
    if torch.cuda.is_available():
        result["imagenet_s12_gpu"] = g = imagenet_step_throughput()
        print(f"PoolFormer-S12 training step on {g['gpu']}: {g['images_per_s']:.0f} images/s "
              f"(batch {g['batch']}, 224x224, bf16, channels_last)", flush=True)
    summary = train(config, args.data_dir, Path(args.out) / time.strftime("%Y%m%d-%H%M%S"))
    reached = first_at_goal(summary["history"])
    result["cifar10_full"] = {
        "device": summary["device"],
        "test_acc": summary["final_test_acc"], "best_test_acc": summary["best_test_acc"],
        "epochs": summary["epochs_completed"], "train_s": summary["train_seconds"],
        "wall_s": summary["wall_seconds"], "images_per_s": summary["images_per_s"],
        "first_at_goal": reached,
        "curve": [[h["epoch"], round(h["wall_seconds"], 1), h["test_top1"]]
                  for h in summary["history"] if "test_top1" in h]}
    r = result["cifar10_full"]
    print(f"\ncifar10-full on {r['device']}: test acc {r['test_acc']:.2f}% (best {r['best_test_acc']:.2f}%, "
          f"goal {GOAL}%) after {r['epochs']:.1f} epochs, {r['train_s']:.0f} s training / "
          f"{r['wall_s']:.0f} s wall, {r['images_per_s']:.0f} img/s")
    print(f"first evaluation at >= {GOAL}%: " + (f"epoch {reached['epoch']} ({reached['test_acc']:.2f}%) "
                                                 f"after {reached['wall_s']:.0f} s wall" if reached else "none"))
    write_json(args.table, result)


if __name__ == "__main__":
    main()
