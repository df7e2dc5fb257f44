"""The training loop and its command line; one file, read top to bottom.

    python -m metaformer_mini.train --config cifar10-quick --data-dir ../shared/data/cifar10 --out runs/quick
    python -m metaformer_mini.train --config cifar10-quick --data-dir ... --out runs/quick --resume
    python -m metaformer_mini.train --config cifar10-quick --time-budget-min 5 --set model.dims=(32,64,128,256) ...
    torchrun --nproc_per_node=8 -m metaformer_mini.train --config imagenet-s12 --data-dir /data/imagenet --out runs/s12

Several machines: start the same command on each with ``torchrun --nnodes=2 --node_rank=<0 or 1>
--rdzv_backend=c10d --rdzv_endpoint=<host of node 0>:29500 --nproc_per_node=8``. Under torchrun
every process trains on its shard of each epoch (DistributedSampler) and rank 0 alone prints,
logs and writes checkpoints. Put ``--out`` on a filesystem every node sees (NFS, Lustre, a
mounted bucket): with ``--resume`` each process reads ``last.pt`` from there. ``batch_size`` is
always the global batch of one optimizer step; ``micro_batch`` sets how much of it one process
pushes through the model at a time, the rest is gradient accumulation.

A run folder holds ``metrics.jsonl`` (one line per epoch), ``last.pt``/``best.pt`` and, at the
end, ``summary.json``.
"""
from __future__ import annotations

import argparse
import dataclasses
import contextlib
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from . import __version__
from ._names import flag
from .checkpoint import (LoopState, build_model, restore_training, rng_state, save_checkpoint,
                         training_state)
from .configs import (RANGES, TrainConfig, apply_overrides, format_config, get_train_config,
                      list_configs)
from .data import mixup_cutmix, train_and_test_batches
from .embedding import whiten_
from .evaluate import autocast, evaluate
from .optim import Muon, muon_params


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


# --- processes and devices ---------------------------------------------------------------

@dataclass
class Processes:
    """Where this process stands under torchrun (rank 0 of 1 when run directly)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(config: TrainConfig) -> tuple[Processes, torch.device]:
    """Start torch.distributed when launched by torchrun; return the processes and this one's device."""
    procs = Processes(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                      int(os.environ.get("LOCAL_RANK", 0)))
    want = config.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but torch sees no CUDA GPU; use device=cpu")
    device = torch.device(f"cuda:{procs.local_rank}" if want == "cuda" else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    if procs.world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if config.threads:
        torch.set_num_threads(config.threads)
    return procs, device


def cpu_has_bf16() -> bool:
    """Return whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX tiles).

    Elsewhere (AVX2 and plain AVX-512 CPUs) bf16 autocast wraps fp32 arithmetic in conversions
    and is slower than fp32; ``benchmarks/throughput.py --amp none bf16`` measures both.
    """
    return any(getattr(torch.cpu, check, lambda: False)()
               for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def resolve_amp(config: TrainConfig, device: torch.device) -> str:
    """Return the autocast mode: 'auto' is bf16 where the hardware has it, else fp16 (CUDA) or none (CPU)."""
    if config.amp != "auto":
        return config.amp
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_bf16() else "none"


def describe_device(device: torch.device) -> str:
    """Return a human-readable name of the device."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


# --- the schedule ------------------------------------------------------------------------

class WarmupCosine:
    """LR multiplier at a step: linear warm-up to 1, then a cosine down to ``min_ratio`` at ``total_steps``.

    A callable object (not a lambda), so LambdaLR saves ``total_steps`` in its state_dict and a
    resumed run keeps the schedule a time budget fitted.
    """

    def __init__(self, warmup_steps: int, total_steps: int, min_ratio: float):
        self.warmup_steps, self.total_steps, self.min_ratio = warmup_steps, total_steps, min_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def train_size(config: TrainConfig, step: int, total_steps: int) -> int:
    """Return the image side for ``step``: progressive resizing grows it in steps of 4 pixels."""
    if not config.progressive_start:
        return config.img_size
    ramp = config.progressive_until * total_steps
    frac = 1.0 if ramp <= 0 else min(1.0, step / ramp)
    size = config.progressive_start + frac * (config.img_size - config.progressive_start)
    return min(config.img_size, int(size) // 4 * 4)


def train_sizes(config: TrainConfig) -> list[int]:
    """Return every image side that progressive resizing visits, smallest first."""
    if not config.progressive_start:
        return [config.img_size]
    first = config.progressive_start // 4 * 4
    return sorted({*range(first, config.img_size, 4), config.img_size})


def fit_total_steps(seconds_left: float, step: int, step_time: dict[int, float],
                    config: TrainConfig) -> int:
    """Return the total step count whose remaining steps take ``seconds_left`` at the measured speeds."""
    def cost(total: int) -> float:
        return sum(step_time[train_size(config, s, total)] for s in range(step, total))

    lo, hi = step + 1, step + 2
    while cost(hi) < seconds_left:
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # cost grows with total: bisect for the last total that fits
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if cost(mid) <= seconds_left else (lo, mid)
    return lo


class TimeBudget:
    """Fit ``total_steps`` to a wall-clock budget: time a few steps at each train size, solve, re-solve.

    The first calibration step at each size is discarded (it builds the kernels for the shape);
    the median of the others is that size's step time. A few steps are a noisy sample, and a
    long run also spends time between steps (epoch boundaries), so at each epoch end the rest of
    the schedule is solved again with what the run has measured since: each size's mean step
    time once it has run ``MIN_STEPS`` steps (the calibration's median scaled by the run's
    measured / calibrated ratio before that), plus the seconds spent outside the steps, spread
    over every step. A 3-minute budget ends near 3 minutes, not 10% earlier or later.
    """

    MIN_STEPS = 20

    def __init__(self, config: TrainConfig, start_step: int, calibrated: bool = False,
                 device: Optional[torch.device] = None):
        sizes = train_sizes(config)
        per_size = max(3, 12 // len(sizes))
        self.config, self.device = config, device
        self.active = bool(config.time_budget_min) and not calibrated
        self.plan = [s for s in sizes for _ in range(per_size + 1)] if self.active else []
        self.start, self.end = start_step, start_step + len(self.plan)
        self.times: dict[int, list[float]] = {s: [] for s in sizes}
        self.speed: dict[int, float] = {}
        self.run_times: dict[int, list[float]] = {s: [] for s in sizes}  # steps after calibration
        self.calibrated_at = 0.0    # train seconds spent when calibration ended

    def train_size(self, step: int, total_steps: int) -> int:
        """Return the image side of ``step``: a calibration size, else the progressive-resizing one."""
        if self.start <= step < self.end:
            return self.size(step)
        return train_size(self.config, step, total_steps)

    def after_step(self, step: int, size: int, started: float) -> bool:
        """Time the step begun at ``started`` that brought the run to ``step``; return whether calibration just ended."""
        if not self.active:
            return False
        if step <= self.end and self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize()  # a calibration step is timed to its end, not to its launch
        self.record(size, time.perf_counter() - started)
        return step == self.end

    def after_epoch(self, step: int, seconds_spent: float, total_steps: int) -> Optional[int]:
        """Return the total re-fitted with what the run has measured, or None when there is nothing to re-fit."""
        if not self.active or step < self.end or step >= total_steps:
            return None
        return self.fit(step, seconds_spent)

    def fitted_message(self, total: int, step: int, steps_per_epoch: int, lr: float) -> str:
        """Return what the first fit decided, and a warning when the calibration spent the budget."""
        speeds = ", ".join(f"{s}px {t * 1e3:.0f} ms" for s, t in self.speed.items())
        message = (f"time budget {self.config.time_budget_min} min: measured {speeds} per step "
                   f"-> {total} steps ({total / steps_per_epoch:.1f} epochs)")
        if total == step:
            message += (f"\nthe {step} calibration steps alone spent the budget, so the run ends "
                        f"here with the lr at {lr:.2e}; give it more minutes to fit a whole schedule")
        return message

    def spent_message(self, step: int, planned: int, lr: float) -> str:
        """Return the notice that a re-fit found the budget spent ``planned - step`` steps early."""
        return (f"time budget spent at step {step}, {planned - step} steps before the planned end "
                f"(the steps ran slower than measured); the lr stopped at {lr:.2e}")

    def size(self, step: int) -> int:
        """Return the train size of calibration step ``step``."""
        return self.plan[step - self.start]

    def record(self, size: int, seconds: float) -> None:
        """Note a finished step's time: a calibration sample, or a measurement of the run."""
        (self.run_times if self.speed else self.times)[size].append(seconds)

    def step_times(self, seconds_since: float) -> dict[int, float]:
        """Return the expected seconds per step at each size, ``seconds_since`` calibration spent."""
        done = [(s, t) for s, times in self.run_times.items() for t in times]
        if not done:
            return dict(self.speed)
        measured = sum(t for _, t in done)
        ratio = measured / sum(self.speed[s] for s, _ in done) if measured else 1.0
        between = max(0.0, seconds_since - measured) / len(done)
        return {s: (sum(self.run_times[s]) / len(self.run_times[s])
                    if len(self.run_times[s]) >= self.MIN_STEPS else self.speed[s] * ratio) + between
                for s in self.speed}

    def fit(self, step: int, seconds_spent: float) -> int:
        """Return the total step count that ends the budget, given the train seconds spent by ``step``."""
        if not self.speed:
            self.speed = {s: sorted(t[1:])[len(t[1:]) // 2] for s, t in self.times.items()}
            self.calibrated_at = seconds_spent
        left = self.config.time_budget_min * 60 - seconds_spent
        if left <= 0:
            return step
        return fit_total_steps(left, step, self.step_times(seconds_spent - self.calibrated_at),
                               self.config)


class LossMeter:
    """Sums the loss on the device; reading it is the only sync, done every few steps."""

    def __init__(self, device: torch.device):
        self.window, self.window_steps = torch.zeros((), device=device), 0
        self.epoch_sum, self.epoch_steps = 0.0, 0

    def add(self, loss: torch.Tensor) -> None:
        self.window += loss.detach()

    def step(self) -> None:
        self.window_steps += 1

    def read(self) -> float:
        """Return the mean loss since the last read (NaN/inf when training diverged)."""
        total, steps = self.window.item(), self.window_steps
        self.epoch_sum, self.epoch_steps = self.epoch_sum + total, self.epoch_steps + steps
        self.window.zero_()
        self.window_steps = 0
        return total / max(1, steps)

    def epoch_mean(self) -> float:
        """Return the mean loss of the epoch so far and start a new epoch."""
        mean = self.epoch_sum / max(1, self.epoch_steps)
        self.epoch_sum, self.epoch_steps = 0.0, 0
        return mean


def param_groups(model: nn.Module, weight_decay: float,
                 exclude: Iterable[nn.Parameter] = ()) -> list[dict[str, Any]]:
    """Return AdamW groups: weight decay on weight matrices/kernels, none on biases, norms and scales.

    Parameters in ``exclude`` (those another optimizer trains) are left out.
    """
    skip = {id(p) for p in exclude}
    params = [p for p in model.parameters() if p.requires_grad and id(p) not in skip]
    return [{"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]


def make_optimizers(model: nn.Module, config: TrainConfig, device: torch.device,
                    amp: str) -> list[torch.optim.Optimizer]:
    """Return AdamW, and with ``optimizer="muon"`` first a Muon for the stages' weight matrices.

    Both take the config's learning rate and weight decay (Muon scales its update to AdamW's RMS).
    Muon orthogonalizes in bf16 when the run computes in bf16 (``amp``, resolved), else in fp32.
    """
    matrices = muon_params(model) if config.optimizer == "muon" else []
    # fused: one kernel updates every parameter, instead of a few small ops per parameter
    adamw = torch.optim.AdamW(param_groups(model, config.weight_decay, exclude=matrices),
                              lr=config.peak_lr(), betas=config.betas,
                              fused=device.type in ("cpu", "cuda"))
    if not matrices:
        return [adamw]
    return [Muon(matrices, lr=config.peak_lr(), weight_decay=config.weight_decay,
                 ns_dtype=torch.bfloat16 if amp == "bf16" else torch.float32), adamw]


# --- the run --------------------------------------------------------------------------------

def _versions() -> dict[str, str]:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "metaformer_mini": __version__}


def whitening_images(batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                     count: int = 4096) -> torch.Tensor:
    """Return the first ``count`` or so training images, (N, C, H, W), as the model sees them."""
    images, seen = [], 0
    for x, _ in batches:
        images.append(x.float())
        seen += len(x)
        if seen >= count:
            break
    return torch.cat(images)


def batch_split(config: TrainConfig, world: int) -> tuple[int, int]:
    """Return (micro_batch, accumulation steps) that make up the global batch."""
    micro = config.micro_batch or config.batch_size // world
    if micro <= 0 or config.batch_size % (micro * world):
        raise ValueError(f"batch_size={config.batch_size} must be a multiple of micro_batch "
                         f"({micro}) x processes ({world}); change batch_size or micro_batch")
    return micro, config.batch_size // (micro * world)


def make_schedule(config: TrainConfig, optimizers: list[torch.optim.Optimizer],
                  steps_per_epoch: int) -> tuple[WarmupCosine, list[Any]]:
    """Return the warm-up + cosine schedule of ``config`` and one LambdaLR per optimizer following it."""
    total_steps = max(1, round(config.epochs * steps_per_epoch))
    warmup_steps = round(config.warmup_fraction * total_steps if config.warmup_fraction
                         else config.warmup_epochs * steps_per_epoch)
    schedule = WarmupCosine(warmup_steps, total_steps, config.min_lr / config.peak_lr())
    return schedule, [torch.optim.lr_scheduler.LambdaLR(o, schedule) for o in optimizers]


def set_total_steps(schedule: WarmupCosine, total: int, step: int, config: TrainConfig,
                    procs: Processes, device: torch.device, first_fit: bool) -> int:
    """Set the schedule's total steps to rank 0's ``total`` on every process; return it.

    The first fit of a time budget also fixes a warm-up given as a fraction of the run.
    """
    if procs.world > 1:
        total_t = torch.tensor(total, device=device)
        dist.broadcast(total_t, 0)
        total = int(total_t)
    schedule.total_steps = total
    if config.warmup_fraction and first_fit:
        schedule.warmup_steps = max(step, round(config.warmup_fraction * total))
    return total


def check_finite(loss: float, loop: LoopState, lr: float, amp: str, out: Optional[Path]) -> float:
    """Return ``loss``, or raise TrainingDiverged if it is NaN or infinite."""
    if not math.isfinite(loss):
        raise TrainingDiverged(
            f"the training loss became {loss} by step {loop.step} (epoch {loop.epoch}, lr "
            f"{lr:.2e}, amp {amp}); stopped without saving, so "
            f"{out / 'last.pt' if out else 'no checkpoint'} keeps the last good state. Try a lower lr, "
            f"grad_clip=1.0, amp=bf16 instead of fp16, or amp=none.")
    return loss


def test_record(model: nn.Module, ema: Optional[AveragedModel], test: Iterable,
                device: torch.device, amp: str, config: TrainConfig) -> dict[str, Any]:
    """Return the test metrics of an epoch record: of the EMA weights when kept, and then of the raw ones."""
    result = evaluate(ema.module if ema is not None else model, test, device, amp,
                      config.tta_flip, tta_shift=config.tta_shift)
    record = {"test_top1": result["top1"], "test_top5": result["top5"],
              "test_loss": result["loss"], "test_images": result["images"]}
    if ema is not None:
        raw = evaluate(model, test, device, amp, config.tta_flip, tta_shift=config.tta_shift)
        record.update(raw_test_top1=raw["top1"], raw_test_top5=raw["top5"])
    return record


def gather_rng_states(procs: Processes) -> list[dict[str, Any]]:
    """Return every process's RNG state (rank 0 saves them; each process resumes its own stream)."""
    rngs = [rng_state()] * procs.world
    if procs.world > 1:
        dist.all_gather_object(rngs, rng_state())
    return rngs


def run_folder(out: Optional[str | os.PathLike], resume: bool, main: bool) -> Optional[Path]:
    """Return the run folder as a Path, created by the main process; it may hold a run only to ``resume``."""
    if out is None:
        return None
    out = Path(out)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        if (out / "last.pt").exists() and not resume:
            raise ValueError(f"{out} already holds a run (last.pt); pass --resume to continue it "
                             f"or choose another --out")
    return out


def count_steps(config: TrainConfig, train_batches: Any, num_classes: int, micro: int,
                accum: int, world: int) -> int:
    """Return the optimizer steps per epoch; raise ValueError when the data does not fit the config."""
    if config.num_classes and config.num_classes != num_classes:
        raise ValueError(f"num_classes={config.num_classes} but the data has {num_classes} classes")
    steps = len(train_batches) // accum
    if steps == 0:
        raise ValueError(f"the training set has {len(train_batches) * micro * world} images "
                         f"per epoch, fewer than one batch of {config.batch_size}; lower batch_size")
    return steps


def make_model(config: TrainConfig, num_classes: int, device: torch.device,
               train_batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> nn.Module:
    """Return the config's freshly initialized model on ``device`` (its stem whitened when asked)."""
    torch.manual_seed(config.seed)
    model = build_model(config, num_classes).to(device)
    if config.whiten_stem:  # under DDP, rank 0's filters reach every process when DDP wraps the model
        whiten_(model.stem, whitening_images(train_batches))
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def optimizer_step(model: nn.Module, optimizers: list[torch.optim.Optimizer], schedulers: list[Any],
                   scaler: torch.amp.GradScaler, ema: Optional[AveragedModel],
                   grad_clip: float) -> None:
    """Clip the accumulated gradients, step every optimizer and LR scheduler, update the EMA."""
    if grad_clip:
        for o in optimizers:
            scaler.unscale_(o)
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    for o in optimizers:
        scaler.step(o)
    scaler.update()
    for o, s in zip(optimizers, schedulers):
        o.zero_grad(set_to_none=True)
        s.step()
    if ema is not None:
        ema.update_parameters(model)


def describe_run(model: nn.Module, num_classes: int, device: torch.device, procs: Processes,
                 amp: str, micro: int, accum: int, steps_per_epoch: int) -> str:
    """Return one line on the model, the machine and how a batch is split."""
    return (f"{sum(p.numel() for p in model.parameters()):,} parameters, {num_classes} classes | "
            f"device {describe_device(device)} x {procs.world} | amp {amp} | batch "
            f"{micro * accum * procs.world} = {procs.world} x {micro} x {accum} accumulation | "
            f"{steps_per_epoch} steps/epoch")


def start_loop(config: TrainConfig, out: Optional[Path], resume: bool, procs: Processes,
               device: torch.device, model: nn.Module, optimizers: list[torch.optim.Optimizer],
               schedulers: list[Any], scaler: torch.amp.GradScaler,
               ema: Optional[AveragedModel]) -> LoopState:
    """Return a fresh loop state, or with ``resume`` the one ``out/last.pt`` holds, restoring the rest.

    The run folder's metrics file is cut back to the epochs the checkpoint saw.
    """
    loop, last_path = LoopState(calibrated=not config.time_budget_min), out and out / "last.pt"
    if resume and last_path and last_path.exists():
        loop = restore_training(last_path, config, model, optimizers, schedulers, scaler, ema,
                                procs.rank, map_location=device)
        if procs.main:
            total = schedulers[-1].lr_lambdas[0].total_steps
            print(f"resuming {last_path}: epoch {loop.epoch}, step {loop.step}/{total}")
    elif resume and procs.main:
        print(f"--resume: no checkpoint in {out}, starting from scratch")
    if out and procs.main:  # the metrics file always matches the checkpoint it continues
        (out / "metrics.jsonl").write_text("".join(json.dumps(h) + "\n" for h in loop.history))
    return loop


def save_epoch(out: Path, state: dict[str, Any], improved: bool) -> None:
    """Write last.pt (and best.pt when the test accuracy ``improved``), then the epoch's metrics line."""
    save_checkpoint(out / "last.pt", state)
    if improved:
        save_checkpoint(out / "best.pt", state)
    with open(out / "metrics.jsonl", "a") as f:
        f.write(json.dumps(state["history"][-1]) + "\n")


def train(config: TrainConfig, data_dir: Optional[str | os.PathLike] = None,
          out: Optional[str | os.PathLike] = None, resume: bool = False,
          progress: bool = True) -> dict[str, Any]:
    """Train a model as ``config`` says; return the summary (accuracies, timings, ``history``).

    ``out`` is the run folder for metrics.jsonl, last.pt, best.pt and summary.json (None: keep
    nothing on disk). ``resume`` continues from ``out/last.pt``.
    """
    wall_start = time.perf_counter()
    procs, device = setup(config)
    amp = resolve_amp(config, device)
    out = run_folder(out, resume, procs.main)
    micro, accum = batch_split(config, procs.world)
    train_batches, test, num_classes = train_and_test_batches(
        config, data_dir, device, micro, procs.rank, procs.world)
    steps_per_epoch = count_steps(config, train_batches, num_classes, micro, accum, procs.world)

    # the model, its optimizers, their schedule, the EMA of its weights
    model = make_model(config, num_classes, device, train_batches)
    optimizers = make_optimizers(model, config, device, amp)
    schedule, schedulers = make_schedule(config, optimizers, steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
    ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
           if config.ema_decay else None)
    mixup_cutmix_ = mixup_cutmix(num_classes, config.mixup, config.cutmix)
    lr = lambda: schedulers[-1].get_last_lr()[0]  # noqa: E731  (AdamW's; Muon's is the same)

    # the loop's state: fresh, or as the last checkpoint left it
    torch.manual_seed(config.seed * 1009 + procs.rank)  # drop path differs per process
    loop = start_loop(config, out, resume, procs, device, model, optimizers, schedulers, scaler, ema)
    wall_before = loop.history[-1]["wall_seconds"] if loop.history else 0.0
    if procs.main:
        print(f"config {config.name}:\n{format_config(config)}\nmodel {config.model}: "
              f"{describe_run(model, num_classes, device, procs, amp, micro, accum, steps_per_epoch)}")
    ddp = (nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)
        if procs.world > 1 else None)
    net = torch.compile(ddp or model) if config.compile else (ddp or model)
    budget = TimeBudget(config, loop.step, calibrated=loop.calibrated, device=device)
    if budget.active:  # the calibration steps run inside the schedule
        schedule.total_steps = max(schedule.total_steps, budget.end + 1)
    bar = tqdm(total=schedule.total_steps, initial=loop.step, disable=not (procs.main and progress),
               desc="training", unit="step", mininterval=1.0, dynamic_ncols=True)
    losses = LossMeter(device)

    while loop.step < schedule.total_steps:
        train_batches.set_epoch(loop.epoch)
        batches = iter(train_batches)
        epoch_start, epoch_first_step = time.perf_counter(), loop.step
        net.train()
        for _ in range(steps_per_epoch):
            if loop.step >= schedule.total_steps:  # a time budget can end the run mid-epoch
                break
            started = time.perf_counter()
            # the batch: at the size the time budget or progressive resizing asks for
            size = train_batches.size = budget.train_size(loop.step, schedule.total_steps)
            # forward and backward, accumulating gradients over the micro-batches
            for micro_step in range(accum):
                x, y = next(batches)
                if mixup_cutmix_ is not None:
                    x, y = mixup_cutmix_(x, y)
                sync = (ddp.no_sync() if ddp is not None and micro_step < accum - 1
                        else contextlib.nullcontext())  # all-reduce only on the last micro-batch
                with sync:
                    with autocast(device, amp):
                        loss = F.cross_entropy(net(x).float(), y, label_smoothing=config.label_smoothing)
                    scaler.scale(loss / accum).backward()
                losses.add(loss / accum)
            # the step: clip, update every optimizer, advance the schedule and the EMA
            optimizer_step(model, optimizers, schedulers, scaler, ema, config.grad_clip)
            loop.step += 1
            losses.step()
            bar.update()
            if loop.step % 25 == 0:
                loss_now = check_finite(losses.read(), loop, lr(), amp, out)
                bar.set_postfix(epoch=loop.epoch, loss=f"{loss_now:.3f}", size=size,
                                lr=f"{lr():.2e}", refresh=False)
            # the time budget: its calibration's end fixes the length of the schedule
            if budget.after_step(loop.step, size, started):
                total = budget.fit(loop.step, loop.train_seconds + time.perf_counter() - epoch_start)
                bar.total = set_total_steps(schedule, total, loop.step, config, procs, device, True)
                loop.calibrated = True
                if procs.main:
                    tqdm.write(budget.fitted_message(bar.total, loop.step, steps_per_epoch, lr()))
        check_finite(losses.read(), loop, lr(), amp, out)
        epoch_seconds = time.perf_counter() - epoch_start
        loop.train_seconds += epoch_seconds
        loop.epoch += 1
        # the time budget: re-fit the rest of the schedule to the speed the run has measured
        planned = schedule.total_steps
        refit = budget.after_epoch(loop.step, loop.train_seconds, planned)
        if refit is not None:
            bar.total = set_total_steps(schedule, refit, loop.step, config, procs, device, False)
            if bar.total == loop.step and procs.main:
                tqdm.write(budget.spent_message(loop.step, planned, lr()))
        # evaluate and log the epoch
        record: dict[str, Any] = {
            "epoch": loop.epoch, "step": loop.step, "lr": lr(), "train_loss": losses.epoch_mean(),
            "train_size": size, "train_seconds": loop.train_seconds,
            "images_per_s": (loop.step - epoch_first_step) * config.batch_size / epoch_seconds}
        if loop.step >= schedule.total_steps or (config.eval_every and loop.epoch % config.eval_every == 0):
            record.update(test_record(model, ema, test, device, amp, config))
        record["wall_seconds"] = wall_before + time.perf_counter() - wall_start
        loop.history.append(record)
        improved = record.get("test_top1", -1.0) > loop.best
        loop.best = max(loop.best, record.get("test_top1", -1.0))
        # checkpoint: last.pt every epoch, best.pt when the test accuracy improved
        rngs = gather_rng_states(procs)
        if procs.main:
            tqdm.write(" | ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                  for k, v in record.items()))
            if out:
                save_epoch(out, training_state(loop, model, optimizers, schedulers, scaler, ema,
                                               rngs, config, num_classes), improved)
    bar.close()
    summary = run_summary(loop, model, config, steps_per_epoch, num_classes, device, procs, amp,
                          wall_before + time.perf_counter() - wall_start)
    if out and procs.main:
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def run_summary(loop: LoopState, model: nn.Module, config: TrainConfig, steps_per_epoch: int,
                num_classes: int, device: torch.device, procs: Processes, amp: str,
                wall_seconds: float) -> dict[str, Any]:
    """Return the summary of a finished run: accuracies, timings, the machine and the history."""
    last = loop.history[-1]
    return {
        "best_test_acc": loop.best, "final_test_acc": last.get("test_top1"),
        "final_test_top5": last.get("test_top5"), "epochs_completed": loop.step / steps_per_epoch,
        "steps": loop.step, "train_seconds": loop.train_seconds, "wall_seconds": wall_seconds,
        "images_per_s": loop.step * config.batch_size / max(loop.train_seconds, 1e-9),
        "num_params": sum(p.numel() for p in model.parameters()), "num_classes": num_classes,
        "device": describe_device(device), "processes": procs.world, "amp": amp,
        "versions": _versions(), "config": dataclasses.asdict(config), "history": loop.history}


# --- command line ---------------------------------------------------------------------------

def main(argv: Optional[list[str]] = None) -> dict[str, Any]:
    """Run the CLI (see the module docstring); return the summary."""
    p = argparse.ArgumentParser(prog="python -m metaformer_mini.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="cifar10-quick", help=f"one of: {', '.join(list_configs())}")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override config fields, e.g. epochs=5 lr=2e-3 model.dims=(32,64,128,256)")
    p.add_argument("--data-dir", help="CIFAR-10 folder {train,test}/<class>/*.jpg, or ImageNet {train,val}/")
    p.add_argument("--download", action="store_true", help="CIFAR-10: download torchvision's copy")
    p.add_argument("--out", help="run folder for metrics, checkpoints and summary")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--time-budget-min", type=flag(RANGES["time_budget_min"], float),
                   help="fit the schedule to this many minutes (0: off)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    try:
        config = get_train_config(args.config, args.set)
        extra = {}
        if args.time_budget_min is not None:
            extra["time_budget_min"] = args.time_budget_min
        if args.download:
            extra["download"] = True
        config = apply_overrides(config, extra)
        if config.dataset == "cifar10" and not (args.data_dir or config.download):
            p.error("give --data-dir (a CIFAR-10 image folder) or --download")
        summary = train(config, args.data_dir, args.out, resume=args.resume,
                        progress=not args.no_progress)
    except (ValueError, FileNotFoundError, TrainingDiverged) as err:
        sys.exit(f"error: {err}")
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps({k: v for k, v in summary.items() if k in (
            "best_test_acc", "final_test_acc", "epochs_completed", "train_seconds", "wall_seconds")}))
    return summary


if __name__ == "__main__":
    main()
