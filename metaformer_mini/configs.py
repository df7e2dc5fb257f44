"""Named training configs: one small dataclass, a few named instances, ``--set key=value`` overrides.

``get_train_config("imagenet-s12")`` is the paper's recipe for PoolFormer-S12 (Appendix A:
AdamW, lr 1e-3 x batch/1024, weight decay 0.05, 300 epochs with 5 of warm-up, cosine to 1e-5,
label smoothing 0.1, MixUp/CutMix, RandAugment, random erasing, drop path and layer scale per
model size). ``cifar10-quick`` is tuned to train a PoolFormer on a 2-core CPU in minutes.
"""
from __future__ import annotations

import ast
import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Iterable

from ._names import check_range, lookup, unknown_message


# the values each numeric TrainConfig field may take
RANGES = {
    **{name: "(0, inf)" for name in ("batch_size", "epochs", "img_size", "lr", "lr_batch")},
    **{name: "[0, inf)" for name in (
        "num_classes", "train_subset", "test_subset", "crop_padding", "progressive_start",
        "color_jitter", "mixup", "cutmix", "workers", "micro_batch", "min_lr",
        "warmup_epochs", "weight_decay", "grad_clip", "threads", "eval_every", "time_budget_min")},
    "random_erasing": "[0, 1]", "crop_pct": "(0, 1]", "warmup_fraction": "[0, 1)",
    "label_smoothing": "[0, 1)", "ema_decay": "[0, 1)", "progressive_until": "[0, 1]",
    "rand_magnitude": "[0, 30]",  # torchvision's RandAugment has 31 magnitude bins
}


@dataclass
class TrainConfig:
    """Everything a training run depends on; printed at the start and saved in every checkpoint."""

    name: str = "custom"
    # the model: a registry name and overrides of its MetaFormerConfig fields
    model: str = "cifar_poolformer"
    model_overrides: dict = field(default_factory=dict)
    num_classes: int = 0              # 0: from the data (10 for CIFAR-10, the class folders otherwise)
    whiten_stem: bool = False         # start the stem as a patch-whitening filter bank (embedding.whiten_)
    # data
    dataset: str = "cifar10"          # "cifar10" (image folder or download) or "imagenet" (image folder)
    download: bool = False            # CIFAR-10 from torchvision's archive instead of an image folder
    img_size: int = 32
    train_subset: int = 0             # train on this many random images (0: all)
    test_subset: int = 0              # evaluate on this many random images (0: all)
    crop_padding: int = 4             # CIFAR random crop: pad by this much, crop back
    progressive_start: int = 0        # progressive resizing: first train size (0: off) ...
    progressive_until: float = 0.5    # ... growing to img_size over this fraction of the steps
    rand_magnitude: int = 0           # RandAugment magnitude (0: off)
    color_jitter: float = 0.0         # ImageNet only
    random_erasing: float = 0.0       # ImageNet only
    mixup: float = 0.0                # MixUp alpha (0: off)
    cutmix: float = 0.0               # CutMix alpha (0: off); with both, each batch picks one
    label_smoothing: float = 0.1
    crop_pct: float = 0.9             # eval: resize to img_size / crop_pct, center crop img_size
    workers: int = 4                  # DataLoader processes per GPU (image folders only)
    # optimization
    epochs: float = 30
    batch_size: int = 256             # global batch per optimizer step, all processes together
    micro_batch: int = 0              # images per forward pass and process (0: no accumulation)
    lr: float = 1e-3                  # learning rate at a global batch of lr_batch, scaled linearly
    lr_batch: int = 1024
    min_lr: float = 1e-5
    warmup_epochs: float = 5
    warmup_fraction: float = 0.0      # warm-up as a fraction of all steps instead (when > 0)
    weight_decay: float = 0.05
    betas: tuple = (0.9, 0.999)
    optimizer: str = "adamw"          # adamw; muon: Muon for the stages' matrices, AdamW for the rest
    grad_clip: float = 0.0            # clip the gradient norm to this (0: off)
    ema_decay: float = 0.0            # keep an exponential moving average of the weights (0: off)
    # speed
    amp: str = "auto"                 # auto (bf16 where supported; else fp16 / fp32), bf16, fp16, none
    channels_last: bool = True
    compile: bool = False
    threads: int = 0                  # torch.set_num_threads (0: leave the default)
    # evaluation, budget, reproducibility
    eval_every: int = 1               # evaluate every N epochs (and always at the end)
    tta_flip: bool = False            # test-time augmentation: average the logits of x and flip(x)
    tta_shift: int = 0                # ... and of copies translated by this many pixels (0: off)
    time_budget_min: float = 0.0      # fit the schedule to this many minutes of training (0: off)
    seed: int = 0
    device: str = "auto"              # auto, cpu, cuda

    def __post_init__(self) -> None:
        lookup("dataset", self.dataset, {"cifar10": 0, "imagenet": 0})
        lookup("amp mode", self.amp, {"auto": 0, "bf16": 0, "fp16": 0, "none": 0})
        lookup("optimizer", self.optimizer, {"adamw": 0, "muon": 0})
        lookup("device", self.device, {"auto": 0, "cpu": 0, "cuda": 0})
        self.betas = tuple(self.betas)
        for name, interval in RANGES.items():
            check_range(name, getattr(self, name), interval)
        for i, beta in enumerate(self.betas):
            check_range(f"betas[{i}]", beta, "[0, 1)")
        # the shifted test views reflect-pad the image, by less than its side
        check_range("tta_shift", self.tta_shift, f"[0, {self.img_size})")
        if self.progressive_start > self.img_size:
            raise ValueError(f"progressive_start={self.progressive_start} is larger than "
                             f"img_size={self.img_size}; resizing grows toward img_size")

    def peak_lr(self) -> float:
        """Return the learning rate scaled to this batch size: lr x batch_size / lr_batch."""
        return self.lr * self.batch_size / self.lr_batch


# --- the named configs -------------------------------------------------------------------

SUITE_EPOCHS = 15

# The results suite's recipe (``python -m metaformer_mini.experiments``): the paper's block on
# the registry's CIFAR skeleton (GroupNorm, GELU, 3x3 pooling, depths 1-1-3-1), trained by the
# same optimisation for every token mixer, for a fixed number of epochs, so that a row's accuracy
# depends on its mixer and seed only, never on the machine or its load.
# - whiten_stem: the stem starts as a patch-whitening filter bank, so the first block already
#   sees decorrelated tokens instead of spending epochs learning them (airbench's trick).
# - optimizer="muon": the stages' weight matrices (channel MLP, downsampling, the attention and
#   spatial-MLP matrices) step with orthogonalized momentum, every direction at the same speed;
#   the stem, head, norms and biases keep AdamW. In short runs it is worth several points.
# - batch 128 at lr 8e-3, half an epoch of warm-up, then a cosine to 0: many steps per epoch
#   and a schedule that ends annealed at whatever epoch count is chosen.
# - label smoothing 0.2: the small model is fitted in a few epochs, and the softer targets keep
#   it from becoming over-confident on the training images.
# - crop_padding=2 and flips: airbench's augmentation for short runs; translations of two pixels
#   are enough at 32x32 and do not slow the early epochs down.
# - tta_flip, tta_shift=1: the test score averages the logits of each image, its mirror image
#   and their one-pixel diagonal translations, as cheap at test time as it is reliable.
# - always 32x32 (no progressive resizing): the spatial MLP and random mixing fix the grid.
# - bf16 autocast, channels_last: the fast path of a GPU and of a CPU with bf16 instructions,
#   fixed so that every row computes alike on every machine (a CPU without bf16 units
#   emulates it: slower than fp32, at the same bf16 precision).
# - SUITE_EPOCHS: one epoch count for every row, so that rows differ only in what they declare;
#   the count at which the pooling baseline clears 85% test top-1 (results/README.md says how it
#   was chosen).
CIFAR10_SUITE = TrainConfig(
    name="cifar10-suite",
    model="cifar_poolformer",
    model_overrides={},
    whiten_stem=True, optimizer="muon", epochs=SUITE_EPOCHS, batch_size=128, lr=8e-3,
    lr_batch=128, warmup_epochs=0.5, min_lr=0.0, weight_decay=0.05, label_smoothing=0.2,
    crop_padding=2, progressive_start=0, amp="bf16", channels_last=True,
    tta_flip=True, tta_shift=1, eval_every=0,
)

# The 2-core CPU's config (benchmarks/cifar_quick.py, --time-budget-min 3 and 10): the suite's
# optimisation on a model and data pipeline chosen for speed per second. BatchNorm and ReLU are
# cheaper per step than GroupNorm and GELU, BatchNorm before each downsampling convolution is
# where MetaFormer Baselines put a norm, progressive resizing from 16 px buys more epochs, and a
# second stage-2 block and flips alone (no crops) suit runs of a few epochs, in which a network
# this small underfits rather than overfits. Its precision is the machine's fast one (amp="auto"):
# bf16 on a CPU with bf16 units, fp32 on one without, where emulated bf16 is the slower path.
CIFAR10_QUICK = dataclasses.replace(
    CIFAR10_SUITE,
    name="cifar10-quick",
    model_overrides={"depths": (1, 2, 3, 1), "norm": "batch", "act": "relu",
                     "layer_scale_init": 1e-5, "downsample_norm": "batch"},
    epochs=10, crop_padding=0, progressive_start=16, amp="auto",
)

# The GPU config: the book's model, a PoolFormer (the paper's block: GroupNorm(1), GELU, 3x3
# pooling), at S12's 2-2-6-2 depths and twice the CPU widths, with the regularization of the
# paper's ImageNet recipe (DeiT-style): RandAugment, MixUp/CutMix, label smoothing, drop path,
# AdamW, 200 epochs.
CIFAR10_FULL = TrainConfig(
    name="cifar10-full",
    model="cifar_poolformer",
    model_overrides={"dims": (64, 128, 256, 512), "depths": (2, 2, 6, 2),
                     "layer_scale_init": 1e-5, "drop_path_rate": 0.1},
    epochs=200, batch_size=512, lr=2e-3, lr_batch=512, warmup_epochs=10, weight_decay=0.05,
    rand_magnitude=9, mixup=0.8, cutmix=1.0, label_smoothing=0.1, tta_flip=True, amp="auto",
    eval_every=5,
)

# (model, drop path, eval crop_pct); layer scale 1e-5 (S12, S24) / 1e-6 comes with the model
_PAPER_MODELS = {
    "s12": ("poolformer_s12", 0.1, 0.9),
    "s24": ("poolformer_s24", 0.1, 0.9),
    "s36": ("poolformer_s36", 0.2, 0.9),
    "m36": ("poolformer_m36", 0.3, 0.95),
    "m48": ("poolformer_m48", 0.4, 0.95),
}


def _imagenet(size: str) -> TrainConfig:
    model, drop_path, crop_pct = _PAPER_MODELS[size]
    return TrainConfig(
        name=f"imagenet-{size}", model=model, model_overrides={"drop_path_rate": drop_path},
        dataset="imagenet", img_size=224, crop_pct=crop_pct,
        rand_magnitude=9, color_jitter=0.4, random_erasing=0.25, mixup=0.8, cutmix=1.0,
        label_smoothing=0.1, epochs=300, batch_size=4096, micro_batch=128, lr=1e-3,
        lr_batch=1024, min_lr=1e-5, warmup_epochs=5, weight_decay=0.05, amp="auto",
        workers=8, eval_every=1)


CONFIGS: dict[str, TrainConfig] = {
    "cifar10-quick": CIFAR10_QUICK,
    "cifar10-suite": CIFAR10_SUITE,
    "cifar10-full": CIFAR10_FULL,
    **{f"imagenet-{size}": _imagenet(size) for size in _PAPER_MODELS},
}


def list_configs() -> list[str]:
    """Return the names ``get_train_config`` accepts."""
    return sorted(CONFIGS)


def get_train_config(name: str, overrides: Iterable[str] | dict[str, Any] = ()) -> TrainConfig:
    """Return a copy of the named config with overrides applied.

    ``overrides`` is a dict or a list of ``"key=value"`` strings (the CLI's ``--set``); keys are
    TrainConfig fields, or ``model.<field>`` for a field of the model's config
    (``model.dims=(48,96,192,384)``). Values are Python literals; strings may go unquoted.
    """
    base = lookup("train config", name, CONFIGS)
    return apply_overrides(dataclasses.replace(base, model_overrides=dict(base.model_overrides)),
                           overrides)


def apply_overrides(config: TrainConfig, overrides: Iterable[str] | dict[str, Any]) -> TrainConfig:
    """Return ``config`` with ``overrides`` applied (see :func:`get_train_config`)."""
    pairs = overrides.items() if isinstance(overrides, dict) else map(_split, overrides)
    hints = typing.get_type_hints(TrainConfig)
    changes: dict[str, Any] = {}
    model_overrides = dict(config.model_overrides)
    for key, value in pairs:
        if key.startswith("model."):
            model_overrides[key[len("model."):]] = _parse(value) if isinstance(value, str) else value
            continue
        if key not in hints or key == "model_overrides":
            raise ValueError(unknown_message("config key", key, [*hints, "model.<field>"]))
        changes[key] = _convert(key, value, hints[key])
    return dataclasses.replace(config, model_overrides=model_overrides, **changes)


def _split(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ValueError(f"--set expects key=value, got {item!r} (e.g. --set epochs=5)")
    key, value = item.split("=", 1)
    return key.strip(), value.strip()


def _parse(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word: a string


def _convert(key: str, value: Any, hint: Any) -> Any:
    """Return ``value`` (a string from the command line, or any object) as the field's type."""
    kind = typing.get_origin(hint) or hint
    if isinstance(value, str) and kind is not str:
        if kind is bool and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.lower() in ("true", "yes", "on")
        value = _parse(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is tuple and isinstance(value, list):
        value = tuple(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"config key {key!r} expects {getattr(kind, '__name__', kind)}, "
                         f"got {value!r} ({type(value).__name__})")
    return value


def config_from_dict(data: dict) -> TrainConfig:
    """Return the TrainConfig saved as a dict in a checkpoint or summary (unknown keys are an error)."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown train config keys {sorted(unknown)}; this metaformer_mini "
                         f"knows {sorted(known)}")
    return TrainConfig(**data)


def format_config(config: TrainConfig) -> str:
    """Return the config as aligned 'key: value' lines, for the start of a run."""
    return "\n".join(f"  {k:<18} {v}" for k, v in dataclasses.asdict(config).items())
