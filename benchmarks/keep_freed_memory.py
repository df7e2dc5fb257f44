"""What keeping freed memory (glibc's ``mallopt``) is worth: the CPU training step with and without it.

    python benchmarks/keep_freed_memory.py                                 # cifar10-quick's step
    python benchmarks/keep_freed_memory.py --config imagenet-s12 --batch 8 # PoolFormer-S12, 224x224

By default glibc returns freed activations' pages to the kernel and each training step faults
them in again; :func:`keep_freed_memory` tells it to keep them. It removes nearly all of the page
faults, but the step itself barely changes (``results/keep_freed_memory*.json``), so the engine
leaves the allocator at its defaults and this benchmark is where the question is answered.
The setting is process-global, so each case runs in a fresh process of this script:
"with" calls it before building the model, "without" keeps glibc's defaults (and sees no
``MALLOC_*`` environment variable). The two alternate for ``--rounds`` rounds, so that load from
other processes hits both alike. Each process times ``--iters`` training steps of the config's
model, batch, image size, amp and memory format (the step of ``throughput.py``) after
``--warmup`` untimed ones, and counts its minor page faults (``getrusage``). Each case reports its
fastest step and its median faults per step; the table goes to ``results/keep_freed_memory.json``
with the command that made it.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's package, whatever else is installed

from cifar_quick import cpu_name  # noqa: E402
from throughput import time_alternately, train_step  # noqa: E402
from metaformer_mini._io import write_json  # noqa: E402
from metaformer_mini._names import flag  # noqa: E402
from metaformer_mini.checkpoint import build_model  # noqa: E402
from metaformer_mini.configs import get_train_config, list_configs  # noqa: E402
from metaformer_mini.train import resolve_amp  # noqa: E402

CASES = ("without", "with")


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed activations for reuse; return whether it could be told.

    By default glibc returns every freed block above its mmap threshold (128 KiB, adapting up to
    32 MiB) to the kernel, so each training step on a CPU faults its activations' pages in afresh
    (``tests/test_benchmarks.py`` counts the faults). Raising the mmap and trim thresholds
    (``mallopt``, the same as the ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_``
    environment variables) keeps those pages in the process. A no-op without glibc (Windows,
    macOS, musl).
    """
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None) if os.name == "posix" else None
    if mallopt is None:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 1 << 30))


def measure(config_name: str, batch: Optional[int], iters: int, warmup: int, keep: bool) -> dict[str, Any]:
    """Return this process's fastest train step (s) and its minor page faults per step.

    ``keep``: call :func:`keep_freed_memory` first.
    """
    told = keep_freed_memory() if keep else False
    config = get_train_config(config_name)
    device = torch.device("cpu")
    amp = resolve_amp(config, device)
    batch = batch or config.micro_batch or config.batch_size
    num_classes = config.num_classes or (10 if config.dataset == "cifar10" else 1000)
    torch.manual_seed(0)
    model = build_model(config, num_classes)
    images = torch.randn(batch, 3, config.img_size, config.img_size)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, num_classes, (batch,))
    step = train_step(model, images, labels, bf16=amp == "bf16")
    for _ in range(warmup):
        step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    seconds = time_alternately({"step": step}, iters, 0, device)["step"]
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return {"mallopt": told, "step_s": seconds, "page_faults_per_step": faults / iters,
            "setting": {"batch": batch, "img_size": config.img_size, "amp": amp,
                        "channels_last": config.channels_last}}


def run_case(case: str, args: argparse.Namespace) -> dict[str, Any]:
    """Return :func:`measure` run in a fresh process of this script for ``case`` ('with' or 'without')."""
    command = [sys.executable, __file__, "--case", case, "--config", args.config, "--iters", str(args.iters),
               "--warmup", str(args.warmup), "--threads", str(args.threads)]
    if args.batch:
        command += ["--batch", str(args.batch)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}  # glibc's defaults
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: Optional[list[str]] = None) -> None:
    """Run both cases alternately in fresh processes, print the table, write it as JSON."""
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="cifar10-quick", help=f"the train config: {', '.join(list_configs())}")
    p.add_argument("--batch", type=flag("[1, inf)"), default=None,
                   help="images per step (default: the config's micro_batch, else its batch_size)")
    p.add_argument("--iters", type=flag("[1, inf)"), default=10, help="timed steps per process")
    p.add_argument("--warmup", type=flag("[0, inf)"), default=3, help="untimed steps per process first")
    p.add_argument("--rounds", type=flag("[1, inf)"), default=3, help="processes per case, alternating")
    p.add_argument("--threads", type=flag("[1, inf)"), default=torch.get_num_threads(),
                   help="torch.set_num_threads in every process")
    p.add_argument("--out", default=str(ROOT / "results" / "keep_freed_memory.json"), help="the JSON to write")
    p.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # one measuring process
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.case:
        print(json.dumps(measure(args.config, args.batch, args.iters, args.warmup, args.case == "with")))
        return

    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict[str, Any]]] = {case: [] for case in CASES}
    for _ in range(args.rounds):
        for case in CASES:
            runs[case].append(run_case(case, args))
    setting = [r.pop("setting") for rs in runs.values() for r in rs][0]
    cases = {case: {"step_s": min(r["step_s"] for r in rs),
                    "page_faults_per_step": statistics.median(r["page_faults_per_step"] for r in rs),
                    "mallopt": rs[0]["mallopt"], "rounds": rs} for case, rs in runs.items()}
    without, with_ = cases["without"], cases["with"]
    result = {
        "command": shlex.join(["python", "benchmarks/keep_freed_memory.py", *argv]),
        "date": time.strftime("%Y-%m-%d"), "cpu": cpu_name(), "cores": os.cpu_count(),
        "torch": torch.__version__, "config": args.config, "threads": args.threads,
        "iters": args.iters, "warmup": args.warmup, "rounds": args.rounds,
        **setting,
        "load": [round(load_before, 2), round(os.getloadavg()[0], 2)], "cases": cases,
        "speedup": without["step_s"] / with_["step_s"],
        "page_faults_removed": 1 - with_["page_faults_per_step"] / max(without["page_faults_per_step"], 1e-9)}

    print(f"{args.config} train step on {result['cpu']}: batch {setting['batch']}, "
          f"{setting['img_size']}x{setting['img_size']}, amp {setting['amp']}, "
          f"{'channels_last' if setting['channels_last'] else 'contiguous'}, {args.threads} threads, "
          f"fastest of {args.rounds} processes x {args.iters} steps per case, torch {torch.__version__}")
    print(f"{'case':8} {'step ms':>8} {'page faults/step':>17}")
    for case in CASES:
        print(f"{case:8} {cases[case]['step_s'] * 1e3:8.1f} {cases[case]['page_faults_per_step']:17.0f}")
    if not with_["mallopt"]:
        print("mallopt is not available here (no glibc): both cases ran with the allocator's defaults")
    print(f"keep_freed_memory(): step {result['speedup']:.2f}x as fast, "
          f"{100 * result['page_faults_removed']:.0f}% of its page faults gone "
          f"(load {result['load'][0]} -> {result['load'][1]})")
    print(f"wrote {write_json(args.out, result)}")


if __name__ == "__main__":
    main()
