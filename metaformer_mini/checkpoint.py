"""Checkpoints that survive a kill: atomic writes, every piece of state, clear errors on bad files.

A checkpoint is one ``torch.save`` dict: the model's weights (and their EMA), the optimizer,
LR scheduler and gradient scaler states, the RNG states, epoch/step, and the TrainConfig that
made it. It is written to a temporary file in the same folder and then renamed over the old one,
so a kill at any moment leaves either the old or the new checkpoint, never half of one.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from ._io import atomic_write, plain
from .configs import TrainConfig, config_from_dict
from .model import MetaFormer
from .registry import create_model

FORMAT = "metaformer_mini.checkpoint/1"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (:func:`~metaformer_mini._io.atomic_write`)."""
    atomic_write(path, lambda f: torch.save({"format": FORMAT, **state}, f))


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Return the dict stored at ``path``; a missing, truncated or foreign file raises a clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable checkpoint: it is truncated or corrupt "
                         f"({type(err).__name__}: {str(err).splitlines()[0][:120]}). "
                         f"A run keeps last.pt and best.pt; try the other one, or retrain.") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a metaformer_mini training checkpoint (expected a dict "
                         f"with format={FORMAT!r}); official PoolFormer weights load with "
                         f"metaformer_mini.weights.load_pretrained")
    return state


def unwrap(model: nn.Module) -> nn.Module:
    """Return the plain model inside DistributedDataParallel and/or torch.compile wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def build_model(config: TrainConfig, num_classes: int) -> MetaFormer:
    """Return a fresh model for a TrainConfig: ``create_model(config.model, num_classes, **overrides)``."""
    return create_model(config.model, num_classes, **config.model_overrides)


def load_model_state(model: nn.Module, weights: dict[str, torch.Tensor], path: str | os.PathLike,
                     saved_model: str) -> None:
    """Load ``weights`` into ``model``; a mismatch names both models instead of listing keys."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        ours = unwrap(model).config
        raise ValueError(f"checkpoint {path} holds a different model ({saved_model!r}) than the "
                         f"one being loaded into (depths {list(ours.depths)}, dims {list(ours.dims)}, "
                         f"mixers {list(ours.token_mixers)}, {ours.num_classes} classes): "
                         f"{str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else err}"
                         ) from None


def load_checkpoint(path: str | os.PathLike, use_ema: bool = True,
                    map_location: str | torch.device = "cpu") -> tuple[MetaFormer, TrainConfig]:
    """Return (model in eval mode, TrainConfig) from a training checkpoint.

    With ``use_ema`` the EMA weights are loaded when the run kept them.
    """
    state = read_checkpoint(path, map_location)
    config = config_from_dict(state["config"])
    model = build_model(config, state["num_classes"])
    weights = state["ema"] if use_ema and state.get("ema") is not None else state["model"]
    load_model_state(model, weights, path, state["config"]["model"])
    return model.eval(), config


def check_resumable(state: dict[str, Any], config: TrainConfig, path: str | os.PathLike) -> None:
    """Raise ValueError if the checkpoint at ``path`` was made by a different model, dataset or optimizer."""
    saved = config_from_dict(state["config"])
    for key in ("model", "model_overrides", "dataset", "optimizer"):
        a, b = getattr(saved, key), getattr(config, key)
        if plain(a) != plain(b):
            raise ValueError(f"cannot resume from {path}: it was trained with {key}={a!r}, this "
                             f"run asks for {key}={b!r}; use a new --out folder, or the same config")


def rng_state() -> dict[str, Any]:
    """Return the torch CPU and CUDA RNG states."""
    return {"cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore RNG states saved by :func:`rng_state`."""
    torch.set_rng_state(state["cpu"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --- the training state, saved and restored side by side ----------------------------------

@dataclass
class LoopState:
    """What the training loop carries from one epoch to the next and a resumed run starts from."""

    step: int = 0
    epoch: int = 0
    best: float = -1.0           # the best test top-1 so far (-1: not evaluated yet)
    history: list[dict[str, Any]] = field(default_factory=list)   # one record per epoch
    train_seconds: float = 0.0   # time spent in the epochs, not in evaluation or saving
    calibrated: bool = True      # False while a time budget still has its speeds to measure


def training_state(loop: LoopState, model: nn.Module, optimizers: list[torch.optim.Optimizer],
                   schedulers: list[Any], scaler: torch.amp.GradScaler,
                   ema: Optional[AveragedModel], rngs: list[dict[str, Any]], config: TrainConfig,
                   num_classes: int) -> dict[str, Any]:
    """Return every piece of training state as the dict a checkpoint stores.

    ``optimizers`` end with AdamW; a Muon before it (``optimizer="muon"``) is saved under
    ``"muon"`` with its scheduler. ``rngs`` holds one RNG state per process.
    """
    muon = len(optimizers) > 1
    return {"model": model.state_dict(), "optimizer": optimizers[-1].state_dict(),
            "scheduler": schedulers[-1].state_dict(), "scaler": scaler.state_dict(),
            "muon": ({"optimizer": optimizers[0].state_dict(),
                      "scheduler": schedulers[0].state_dict()} if muon else None),
            "ema": ema.module.state_dict() if ema is not None else None,
            "ema_updates": int(ema.n_averaged) if ema is not None else 0,
            "rng": rngs, "num_classes": num_classes, "config": dataclasses.asdict(config),
            **dataclasses.asdict(loop)}


def restore_training(path: str | os.PathLike, config: TrainConfig, model: nn.Module,
                     optimizers: list[torch.optim.Optimizer], schedulers: list[Any],
                     scaler: torch.amp.GradScaler, ema: Optional[AveragedModel], rank: int = 0,
                     map_location: str | torch.device = "cpu") -> LoopState:
    """Load what :func:`training_state` saved at ``path`` into the given objects; return the loop state.

    Process ``rank`` continues its own random stream.
    """
    state = read_checkpoint(path, map_location=map_location)
    check_resumable(state, config, path)
    load_model_state(model, state["model"], path, state["config"]["model"])
    optimizers[-1].load_state_dict(state["optimizer"])
    schedulers[-1].load_state_dict(state["scheduler"])
    if len(optimizers) > 1:  # check_resumable made sure that the run had a Muon too
        optimizers[0].load_state_dict(state["muon"]["optimizer"])
        schedulers[0].load_state_dict(state["muon"]["scheduler"])
    scaler.load_state_dict(state["scaler"])
    if ema is not None and state.get("ema") is not None:
        ema.module.load_state_dict(state["ema"])
        ema.n_averaged.fill_(state["ema_updates"])
    set_rng_state(state["rng"][rank % len(state["rng"])])
    return LoopState(**{f.name: state[f.name] for f in dataclasses.fields(LoopState)})


# --- the small format: int8 weights for shipping trained models ---------------------------

SUITE_WEIGHTS_FORMAT = "metaformer_mini.suite-weights/1"


def quantize_weights(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Return a state dict with every float matrix/kernel as int8 per output channel, the rest as fp16.

    A weight W (out, ...) becomes ``{"int8": round(W / s), "scale": s}`` with one fp32 scale
    ``s = max|W[o]| / 127`` per output channel o: a quarter of fp32's bytes, about 0.4% error per weight.
    """
    out: dict[str, Any] = {}
    for key, value in state.items():
        if value.is_floating_point() and value.ndim >= 2:
            rows = value.detach().float().reshape(value.shape[0], -1)
            scale = rows.abs().amax(dim=1).clamp_min(1e-12) / 127
            q = torch.round(rows / scale[:, None]).to(torch.int8).reshape(value.shape)
            out[key] = {"int8": q, "scale": scale}
        elif value.is_floating_point():
            out[key] = value.detach().half()
        else:
            out[key] = value.detach()
    return out


def dequantize_weights(weights: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Return the fp32 state dict that :func:`quantize_weights` compressed."""
    state = {}
    for key, value in weights.items():
        if isinstance(value, dict):
            scale = value["scale"].float().view(-1, *([1] * (value["int8"].ndim - 1)))
            state[key] = value["int8"].float() * scale
        else:
            state[key] = value.float() if value.is_floating_point() else value
    return state


def save_suite_checkpoint(run_checkpoint: str | os.PathLike, path: str | os.PathLike,
                          extra: dict[str, Any]) -> int:
    """Write a training checkpoint's model as int8 weights with its config and ``extra``; return bytes.

    The optimizer state is dropped; :func:`read_suite_checkpoint` reads the file back.
    """
    state = read_checkpoint(run_checkpoint)
    small = {"format": SUITE_WEIGHTS_FORMAT, "weights": quantize_weights(state["model"]),
             "num_classes": state["num_classes"], "config": state["config"], **extra}
    atomic_write(path, lambda f: torch.save(small, f))
    return Path(path).stat().st_size


def read_suite_checkpoint(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """Return (model in eval mode with fp32 weights, the stored dict) from a suite checkpoint file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; make it with `python -m metaformer_mini.experiments "
                                f"run {path.stem} --data-dir <cifar10 folder>`")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != SUITE_WEIGHTS_FORMAT:
        raise ValueError(f"{path} is not a suite checkpoint (expected format {SUITE_WEIGHTS_FORMAT!r}); "
                         f"training checkpoints load with metaformer_mini.checkpoint.load_checkpoint")
    config = config_from_dict(state["config"])
    model = build_model(config, state["num_classes"])
    model.load_state_dict(dequantize_weights(state["weights"]))
    return model.eval(), state
