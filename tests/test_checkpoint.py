"""Tests for metaformer_mini/checkpoint.py: atomic saves, clear errors, load_checkpoint."""
import dataclasses

import pytest
import torch

from metaformer_mini import checkpoint
from metaformer_mini.configs import TrainConfig

TINY = {"dims": (8, 8, 16, 16), "depths": (1, 1, 1, 1)}


def tiny_config(**changes) -> TrainConfig:
    return TrainConfig(**{"name": "tiny", "model": "cifar_poolformer", "model_overrides": dict(TINY),
                          **changes})


def write_run(path, config: TrainConfig, ema: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    model = checkpoint.build_model(config, 10)
    ema_state = {k: v + 1 for k, v in model.state_dict().items()} if ema else None
    checkpoint.save_checkpoint(path, {"model": model.state_dict(), "ema": ema_state,
                                      "num_classes": 10, "epoch": 3,
                                      "config": dataclasses.asdict(config)})
    return model


def test_save_is_atomic_and_round_trips(tmp_path):
    path = tmp_path / "last.pt"
    checkpoint.save_checkpoint(path, {"epoch": 1, "x": torch.arange(3)})
    checkpoint.save_checkpoint(path, {"epoch": 2, "x": torch.arange(4)})
    state = checkpoint.read_checkpoint(path)
    assert state["epoch"] == 2 and torch.equal(state["x"], torch.arange(4))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_truncated_checkpoint_gives_clear_error(tmp_path):
    path = tmp_path / "last.pt"
    write_run(path, tiny_config())
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        checkpoint.read_checkpoint(path)


def test_foreign_and_missing_files(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "official.pth")
    with pytest.raises(ValueError, match="not a metaformer_mini training checkpoint.*load_pretrained"):
        checkpoint.read_checkpoint(tmp_path / "official.pth")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        checkpoint.read_checkpoint(tmp_path / "nothing.pt")


def test_load_checkpoint_rebuilds_the_same_model(tmp_path):
    config = tiny_config(epochs=7)
    model = write_run(tmp_path / "best.pt", config)
    loaded, loaded_config = checkpoint.load_checkpoint(tmp_path / "best.pt")
    assert loaded_config == config and not loaded.training
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(loaded(x), model.eval()(x))


def test_load_checkpoint_prefers_ema_weights(tmp_path):
    model = write_run(tmp_path / "last.pt", tiny_config(), ema=True)
    ema_model, _ = checkpoint.load_checkpoint(tmp_path / "last.pt")
    raw_model, _ = checkpoint.load_checkpoint(tmp_path / "last.pt", use_ema=False)
    assert torch.equal(ema_model.head.bias, model.head.bias + 1)
    assert torch.equal(raw_model.head.bias, model.head.bias)


def test_weights_of_another_model_are_refused(tmp_path):
    write_run(tmp_path / "last.pt", tiny_config())
    state = checkpoint.read_checkpoint(tmp_path / "last.pt")
    other = checkpoint.build_model(tiny_config(model_overrides={"dims": (8, 8, 16, 32),
                                                               "depths": (1, 1, 1, 1)}), 10)
    with pytest.raises(ValueError, match=r"holds a different model \('cifar_poolformer'\).*dims \[8, 8, 16, 32\]"):
        checkpoint.load_model_state(other, state["model"], tmp_path / "last.pt", "cifar_poolformer")


def test_check_resumable_names_the_difference(tmp_path):
    config = tiny_config()
    write_run(tmp_path / "last.pt", config)
    state = checkpoint.read_checkpoint(tmp_path / "last.pt")
    checkpoint.check_resumable(state, dataclasses.replace(config, epochs=99), "last.pt")
    with pytest.raises(ValueError, match="model='cifar_poolformer'.*model='cifar_identityformer'"):
        checkpoint.check_resumable(state, dataclasses.replace(config, model="cifar_identityformer"),
                                   "last.pt")


def test_rng_state_round_trip():
    state = checkpoint.rng_state()
    a = torch.rand(3)
    checkpoint.set_rng_state(state)
    assert torch.equal(torch.rand(3), a)


def test_unwrap_reaches_the_plain_model():
    model = checkpoint.build_model(tiny_config(), 10)
    assert checkpoint.unwrap(model) is model

    class Compiled(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self._orig_mod = inner

    assert checkpoint.unwrap(Compiled(model)) is model
