"""Checkpoints that survive a kill: atomic writes, every piece of state, clear errors on bad files.

A checkpoint is one ``torch.save`` dict: the model's weights (and their EMA), the optimizer,
LR scheduler and gradient scaler states, the RNG states, epoch/step, and the TrainConfig that
made it. It is written to a temporary file in the same folder and then renamed over the old one,
so a kill at any moment leaves either the old or the new checkpoint, never half of one.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .configs import TrainConfig, config_from_dict
from .model import MetaFormer
from .registry import create_model

FORMAT = "metaformer_mini.checkpoint/1"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: a temp file in the same folder, fsync, rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save({"format": FORMAT, **state}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
        if _normalize(a) != _normalize(b):
            raise ValueError(f"cannot resume from {path}: it was trained with {key}={a!r}, this "
                             f"run asks for {key}={b!r}; use a new --out folder, or the same config")


def _normalize(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalize(v) for v in value]
    return value


def rng_state() -> dict[str, Any]:
    """Return the torch CPU and CUDA RNG states."""
    return {"cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore RNG states saved by :func:`rng_state`."""
    torch.set_rng_state(state["cpu"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def config_dict(config: TrainConfig) -> dict[str, Any]:
    """Return the config as a plain dict (what checkpoints and summaries store)."""
    return dataclasses.asdict(config)
