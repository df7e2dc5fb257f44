"""What each of ``cifar10-quick``'s departures from the paper is worth, at equal epochs.

    python benchmarks/recipe_ablation.py --epochs 2            # all variants, resumable
    python benchmarks/recipe_ablation.py --epochs 2 --only recipe adamw

Every variant is ``cifar10-quick`` with one of its choices put back to the paper's (a
leave-one-out ablation), trained for the same number of epochs on all 50,000 training images and
tested on all 10,000 test images, one seed. ``paper_block`` puts all of them back at once: the
paper's block (GroupNorm(1), GELU, no norm before downsampling, the registry's 1-1-3-1 depths,
layer scale 1e-5) trained by AdamW from a random stem at label smoothing 0.1. Test-time
augmentation needs no training, so its effect is measured on the ``recipe`` run's last
checkpoint, evaluated with and without it.

Each finished variant is written to the JSON table at once; a rerun skips finished variants
and resumes an interrupted one from its ``last.pt``. Seconds per epoch depend on the machine
and on what else it runs (the load average is recorded); accuracies depend only on the seed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's package, whatever else is installed

from metaformer_mini._io import write_json
from metaformer_mini._names import flag
from metaformer_mini.checkpoint import load_checkpoint
from metaformer_mini.configs import RANGES, get_train_config
from metaformer_mini.evaluate import evaluate, test_batches
from metaformer_mini.train import resolve_amp, train


# name -> (the paper's choice put back, overrides of cifar10-quick, why the recipe departs)
VARIANTS: dict[str, tuple[str, dict, str]] = {
    "recipe": ("nothing: cifar10-quick as it is", {}, ""),
    "paper_block": ("all of the choices below at once", {
        "model.norm": "group", "model.act": "gelu", "model.downsample_norm": "none",
        "model.depths": (1, 1, 3, 1), "whiten_stem": False, "optimizer": "adamw",
        "progressive_start": 0, "label_smoothing": 0.1}, ""),
    "adamw": ("AdamW for every weight (no Muon)", {"optimizer": "adamw"},
              "Muon steps every direction of a weight matrix at the same speed"),
    "no_whiten": ("a randomly initialized stem", {"whiten_stem": False},
                  "the stem starts as a whitening filter bank of the training patches"),
    "groupnorm": ("GroupNorm(1) (the paper's modified LayerNorm)", {"model.norm": "group"},
                  "BatchNorm needs no per-image statistics and trains faster in few epochs"),
    "gelu": ("GELU", {"model.act": "gelu"}, "ReLU is cheaper per step on a CPU"),
    "no_downsample_norm": ("no norm before downsampling", {"model.downsample_norm": "none"},
                           "a norm before each downsampling, as in MetaFormer Baselines"),
    "smoothing_0.1": ("label smoothing 0.1", {"label_smoothing": 0.1},
                      "softer targets for a model fitted in a few epochs"),
    "no_progressive": ("32x32 images throughout", {"progressive_start": 0},
                       "early epochs on 16x16 images are about 4 times cheaper"),
    "depths_1131": ("depths 1-1-3-1 (no second stage-2 block)", {"model.depths": (1, 1, 3, 1)},
                    "one more block where the grid is 8x8"),
}


def run_variant(name: str, epochs: int, seed: int, data_dir: Path, runs: Path, threads: int = 0) -> dict:
    """Train one variant (resuming its run folder if it was interrupted); return its row."""
    choice, overrides, why = VARIANTS[name]
    config = get_train_config("cifar10-quick", {**overrides, "epochs": float(epochs), "seed": seed,
                                                "threads": threads})
    out = runs / name
    resume = (out / "last.pt").exists()
    load = os.getloadavg()[0]
    summary = train(config, data_dir, out, resume=resume, progress=False)
    return {"variant": name, "paper_choice": choice, "why_recipe": why,
            "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
            "test_top1": summary["final_test_acc"], "epochs": summary["epochs_completed"],
            "train_s": round(summary["train_seconds"], 1),
            "s_per_epoch": round(summary["train_seconds"] / summary["epochs_completed"], 1),
            "num_params": summary["num_params"],
            "load": [round(load, 2), round(os.getloadavg()[0], 2)]}


def tta_rows(runs: Path, data_dir: Path) -> dict:
    """Return the recipe run's test top-1 without TTA, with flips, and with flips and shifts."""
    model, config = load_checkpoint(runs / "recipe" / "last.pt")
    device = torch.device("cpu")
    amp = resolve_amp(config, device)
    batches = test_batches(config, str(data_dir), device)
    views = {"none": (False, 0), "flip": (True, 0), "flip_shift1": (True, 1)}
    return {k: evaluate(model, batches, device, amp, tta_flip=f, tta_shift=s)["top1"]
            for k, (f, s) in views.items()}


def print_table(table: dict) -> None:
    """Print the rows as a Markdown table, each with its difference from the recipe."""
    rows = table["rows"]
    base = rows.get("recipe", {}).get("test_top1")
    print(f"\n{table['epochs']} epochs, seed {table['seed']}, all 10,000 test images, flip+shift TTA")
    print("| variant | the paper's choice | test top-1 | vs recipe | s/epoch |")
    print("|---|---|---|---|---|")
    for name in VARIANTS:
        r = rows.get(name)
        if r is None:
            continue
        delta = "" if base is None or name == "recipe" else f"{r['test_top1'] - base:+.2f}"
        print(f"| {name} | {r['paper_choice']} | {r['test_top1']:.2f}% | {delta} | {r['s_per_epoch']:.0f} |")
    if "tta" in table:
        print("recipe without TTA / flip / flip+shift: "
              + " / ".join(f"{v:.2f}%" for v in table["tta"].values()))


def main(argv: Optional[list[str]] = None) -> None:
    """Run the variants not yet in the table, writing it after each; print it."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=flag("[1, inf)"), default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=flag(RANGES["threads"]), default=0,
                   help="torch threads per run (0: torch's default); 1 wastes less on a busy machine")
    p.add_argument("--only", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "cifar10"))
    p.add_argument("--runs", default=str(ROOT / "runs" / "recipe_ablation"))
    p.add_argument("--table", default=str(ROOT / "results" / "recipe_ablation.json"))
    args = p.parse_args(argv)
    table_path, runs = Path(args.table), Path(args.runs) / f"e{args.epochs}-s{args.seed}"
    table = json.loads(table_path.read_text()) if table_path.is_file() else {}
    if table.get("epochs") != args.epochs or table.get("seed") != args.seed:
        table = {"epochs": args.epochs, "seed": args.seed, "rows": {}}
    table.update(command="python benchmarks/recipe_ablation.py --epochs "
                 f"{args.epochs}" + (f" --seed {args.seed}" if args.seed else "")
                 + (f" --threads {args.threads}" if args.threads else ""),
                 torch=torch.__version__, cores=os.cpu_count(), base_config="cifar10-quick",
                 commit=subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                                       text=True).stdout.strip())

    def save() -> None:
        write_json(table_path, table)

    for name in args.only:
        if name in table["rows"]:
            continue
        start = time.perf_counter()
        print(f"[{time.strftime('%H:%M:%S')}] {name}: {VARIANTS[name][0]}", flush=True)
        table["rows"][name] = run_variant(name, args.epochs, args.seed, Path(args.data_dir), runs, args.threads)
        r = table["rows"][name]
        print(f"  test top-1 {r['test_top1']:.2f}% after {r['epochs']:.1f} epochs, "
              f"{time.perf_counter() - start:.0f} s wall", flush=True)
        if "recipe" in table["rows"] and "tta" not in table:
            table["tta"] = tta_rows(runs, Path(args.data_dir))
        save()
    if "recipe" in table["rows"] and "tta" not in table:
        table["tta"] = tta_rows(runs, Path(args.data_dir))
        save()
    print_table(table)


if __name__ == "__main__":
    sys.exit(main())
