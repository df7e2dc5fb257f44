"""Tests for metaformer_mini/train.py and configs.py: schedules, configs, short runs, kill -9 and resume."""
import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from metaformer_mini import configs, data, train
from metaformer_mini.checkpoint import build_model, read_checkpoint
from metaformer_mini.optim import Muon

ROOT = Path(__file__).resolve().parent.parent
CIFAR_DIR = ROOT.parent / "shared" / "data" / "cifar10"
needs_cifar = pytest.mark.skipif(not CIFAR_DIR.is_dir(), reason="CIFAR-10 folder not next to the repo")
# a small PoolFormer and CIFAR subset: seconds per run on 2 cores
SMALL = ["model.dims=(16,32,64,128)", "model.depths=(1,1,2,1)", "threads=1", "eval_every=1",
         "test_subset=500", "batch_size=128", "lr=4e-3", "lr_batch=128", "warmup_epochs=0.5"]


# --- schedule, sizes, budget ----------------------------------------------------------------

def test_warmup_cosine_values():
    s = train.WarmupCosine(warmup_steps=10, total_steps=110, min_ratio=0.01)
    assert s(0) == pytest.approx(0.1) and s(9) == pytest.approx(1.0)
    assert s(10) == pytest.approx(1.0)
    assert s(60) == pytest.approx(0.01 + 0.99 * 0.5)  # half way down the cosine
    assert s(110) == pytest.approx(0.01) and s(500) == pytest.approx(0.01)
    assert train.WarmupCosine(0, 4, 0.0)(0) == pytest.approx(1.0)


def test_progressive_sizes_grow_to_img_size():
    c = configs.TrainConfig(img_size=32, progressive_start=16, progressive_until=0.5)
    sizes = [train.train_size(c, s, 100) for s in range(100)]
    assert sizes[0] == 16 and sizes[49] == 28 and sizes[50:] == [32] * 50
    assert sizes == sorted(sizes) and set(sizes) == set(train.train_sizes(c)) == {16, 20, 24, 28, 32}
    assert train.train_sizes(configs.TrainConfig(img_size=32)) == [32]


def test_fit_total_steps_fills_the_budget_exactly():
    c = configs.TrainConfig(img_size=32, progressive_start=16, progressive_until=0.5)
    speed = {16: 0.1, 20: 0.15, 24: 0.2, 28: 0.3, 32: 0.4}
    total = train.fit_total_steps(60.0, 10, speed, c)
    cost = lambda t: sum(speed[train.train_size(c, s, t)] for s in range(10, t))  # noqa: E731
    assert cost(total) <= 60.0 < cost(total + 1)
    flat = configs.TrainConfig(img_size=32)
    assert train.fit_total_steps(10.0, 0, {32: 0.5}, flat) == 20


def test_param_groups_skip_decay_on_norms_and_biases():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.GroupNorm(1, 4))
    decay, no_decay = train.param_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and [p.shape for p in decay["params"]] == [(4, 3, 3, 3)]
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 3


def test_muon_and_adamw_split_the_parameters():
    config = small_config()
    model = build_model(config, 10)
    muon, adamw = train.make_optimizers(model, config, torch.device("cpu"), "none")
    trained = [[id(p) for g in o.param_groups for p in g["params"]] for o in (muon, adamw)]
    assert sorted(trained[0] + trained[1]) == sorted(id(p) for p in model.parameters())  # each once
    assert isinstance(muon, Muon) and isinstance(adamw, torch.optim.AdamW)
    assert muon.param_groups[0]["lr"] == adamw.param_groups[0]["lr"] == config.peak_lr()
    assert id(model.head.weight) in trained[1] and id(model.stem.proj.weight) in trained[1]
    assert muon.ns_dtype == torch.float32  # a float32 run orthogonalizes in float32 ...
    bf16_muon = train.make_optimizers(model, config, torch.device("cpu"), "bf16")[0]
    assert bf16_muon.ns_dtype == torch.bfloat16  # ... a bf16 run in bf16
    alone = train.make_optimizers(model, dataclasses.replace(config, optimizer="adamw"),
                                  torch.device("cpu"), "none")
    assert len(alone) == 1 and len(alone[0].param_groups[0]["params"]) == sum(
        p.ndim > 1 for p in model.parameters())


def test_batch_split_into_micro_batches():
    c = configs.TrainConfig(batch_size=4096, micro_batch=128)
    assert train.batch_split(c, 8) == (128, 4)  # 8 GPUs x 128 x 4 accumulation = 4096
    assert train.batch_split(configs.TrainConfig(batch_size=256), 2) == (128, 1)
    with pytest.raises(ValueError, match="multiple of micro_batch"):
        train.batch_split(configs.TrainConfig(batch_size=100, micro_batch=64), 1)


# --- configs and --set ------------------------------------------------------------------------

def test_paper_recipes():
    s12, m48 = configs.get_train_config("imagenet-s12"), configs.get_train_config("imagenet-m48")
    assert s12.peak_lr() == pytest.approx(4e-3) and s12.batch_size == 4096
    assert (s12.weight_decay, s12.epochs, s12.warmup_epochs, s12.min_lr) == (0.05, 300, 5, 1e-5)
    assert (s12.mixup, s12.cutmix, s12.label_smoothing, s12.random_erasing) == (0.8, 1.0, 0.1, 0.25)
    assert s12.model_overrides["drop_path_rate"] == 0.1 and s12.crop_pct == 0.9
    assert m48.model == "poolformer_m48" and m48.model_overrides["drop_path_rate"] == 0.4
    assert m48.crop_pct == 0.95
    drop = [configs.get_train_config(f"imagenet-{s}").model_overrides["drop_path_rate"]
            for s in ("s12", "s24", "s36", "m36", "m48")]
    assert drop == [0.1, 0.1, 0.2, 0.3, 0.4]


def test_set_overrides_parse_types():
    c = configs.get_train_config("cifar10-quick", [
        "epochs=3", "lr=1e-2", "tta_flip=false", "amp=none", "model.dims=(8,16,32,64)",
        "model.token_mixer=attention", "betas=[0.9,0.95]", "warmup_epochs=1"])
    assert c.epochs == 3.0 and c.lr == 0.01 and c.tta_flip is False and c.amp == "none"
    assert c.model_overrides["dims"] == (8, 16, 32, 64)
    assert c.model_overrides["token_mixer"] == "attention" and c.betas == (0.9, 0.95)
    assert configs.CONFIGS["cifar10-quick"].model_overrides.get("token_mixer") is None  # a copy


def test_bad_config_names_and_values():
    with pytest.raises(ValueError, match="unknown train config 'cifar-quick'; did you mean 'cifar10-quick'"):
        configs.get_train_config("cifar-quick")
    with pytest.raises(ValueError, match="unknown config key 'epoch'; did you mean 'epochs'"):
        configs.get_train_config("cifar10-quick", ["epoch=3"])
    with pytest.raises(ValueError, match="'batch_size' expects int, got 'big'"):
        configs.get_train_config("cifar10-quick", ["batch_size=big"])
    with pytest.raises(ValueError, match="key=value"):
        configs.get_train_config("cifar10-quick", ["epochs"])
    with pytest.raises(ValueError, match="unknown amp mode 'fp8'"):
        configs.get_train_config("cifar10-quick", ["amp=fp8"])
    with pytest.raises(ValueError, match="unknown optimizer 'moun'; did you mean 'muon'"):
        configs.get_train_config("cifar10-quick", ["optimizer=moun"])
    with pytest.raises(ValueError, match="lr must be positive"):
        configs.get_train_config("cifar10-quick", ["lr=0"])


@pytest.mark.parametrize("avx512_bf16, amx, expected", [
    (False, False, "none"), (True, False, "bf16"), (False, True, "bf16")])
def test_auto_amp_on_a_cpu_is_bf16_only_with_bf16_units(monkeypatch, avx512_bf16, amx, expected):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    cpu = torch.device("cpu")
    assert train.resolve_amp(configs.get_train_config("cifar10-quick"), cpu) == expected
    assert train.resolve_amp(configs.get_train_config("cifar10-suite"), cpu) == "bf16"  # fixed
    assert train.resolve_amp(configs.get_train_config("cifar10-quick", ["amp=none"]), cpu) == "none"

# --- short runs --------------------------------------------------------------------------------

def small_config(*sets: str) -> configs.TrainConfig:
    return configs.get_train_config("cifar10-quick", [*SMALL, *sets])


@needs_cifar
def test_short_cifar_run_learns(tmp_path):
    summary = train.train(small_config("train_subset=5000", "epochs=4"), CIFAR_DIR, tmp_path,
                          progress=False)
    history = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert {"lr", "train_loss", "test_top1", "test_top5", "images_per_s", "wall_seconds"} <= set(history[0])
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert summary["final_test_acc"] > 20  # chance is 10%; 4 short epochs of a tiny model reach ~23-35
    assert summary["steps"] == 4 * (5000 // 128)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["best_test_acc"] == max(h["test_top1"] for h in history)
    assert saved["config"]["model_overrides"]["dims"] == [16, 32, 64, 128]
    assert {"torch", "torchvision", "python"} <= set(saved["versions"]) and saved["device"]
    assert read_checkpoint(tmp_path / "best.pt")["best"] == saved["best_test_acc"]


class SimulatedClock:
    """Stands in for train's ``time``: a step at side s takes (s/16)^2 / 16 seconds, nothing else takes any.

    The budget's arithmetic then runs on exact binary fractions, the same on every machine.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.now, self.size = 0.0, 0
        step, train_size = train.optimizer_step, train.TimeBudget.train_size

        def sized(budget, step_: int, total: int) -> int:
            self.size = train_size(budget, step_, total)
            return self.size

        def timed_step(*args, **kwargs) -> None:
            step(*args, **kwargs)
            self.now += self.seconds(self.size)

        monkeypatch.setattr(train, "time", self)
        monkeypatch.setattr(train.TimeBudget, "train_size", sized)
        monkeypatch.setattr(train, "optimizer_step", timed_step)

    @staticmethod
    def seconds(size: int) -> float:
        return (size / 16) ** 2 / 16

    def perf_counter(self) -> float:
        return self.now


@needs_cifar
def test_time_budget_fixes_the_step_count(tmp_path, capsys, monkeypatch):
    clock = SimulatedClock(monkeypatch)
    config = small_config("train_subset=640", "batch_size=64", "time_budget_min=0.1",  # 6 s
                          "progressive_start=16", "warmup_fraction=0.1", "epochs=100", "eval_every=0")
    summary = train.train(config, CIFAR_DIR, tmp_path, progress=False)
    out = capsys.readouterr().out
    assert "time budget 0.1 min: measured 16px 62 ms, 20px 98 ms, 24px 141 ms, 28px 191 ms, 32px 250 ms" in out
    planned = int(out.split(" steps (")[0].rsplit("-> ", 1)[1])
    calibration = train.TimeBudget(config, 0).plan
    spent = sum(clock.seconds(size) for size in calibration)
    speed = {size: clock.seconds(size) for size in train.train_sizes(config)}
    assert planned == train.fit_total_steps(6 - spent, len(calibration), speed, config) < 100 * 10
    final = read_checkpoint(tmp_path / "last.pt")["scheduler"]["lr_lambdas"][0]["total_steps"]
    assert summary["steps"] == final == planned  # each epoch's re-fit measured the same speeds
    assert len(summary["history"]) == -(-planned // 10)  # ten steps an epoch, the last one cut short
    assert 6 - clock.seconds(32) < summary["train_seconds"] <= 6  # the budget, to within a step
    assert summary["history"][-1]["lr"] == pytest.approx(0.0, abs=1e-7)  # the cosine finished
    assert "time budget spent" not in out


@needs_cifar
def test_time_budget_spent_early_stops_at_the_epoch_end_and_says_so(tmp_path, capsys, monkeypatch):
    fit = train.TimeBudget.fit
    calls = []

    def fit_then_time_up(self, step, seconds_spent):  # the first fit plans; then time is up
        calls.append(step)
        return fit(self, step, seconds_spent) if len(calls) == 1 else step

    monkeypatch.setattr(train.TimeBudget, "fit", fit_then_time_up)
    config = small_config("train_subset=1280", "time_budget_min=5", "epochs=100")
    summary = train.train(config, CIFAR_DIR, None, progress=False)
    out = capsys.readouterr().out
    assert len(calls) == 2 and summary["steps"] == calls[1]  # the first epoch end after the plan
    assert summary["steps"] % (1280 // 128) == 0 and summary["steps"] < 100 * (1280 // 128)
    assert f"time budget spent at step {calls[1]}" in out
    assert summary["history"][-1]["lr"] > 0 and summary["final_test_acc"] is not None


@needs_cifar
def test_time_budget_spent_by_the_calibration_ends_the_run_and_says_so(tmp_path, capsys):
    config = small_config("train_subset=1280", "time_budget_min=0.001", "epochs=100")  # 0.06 s
    summary = train.train(config, CIFAR_DIR, None, progress=False)
    out = capsys.readouterr().out
    calibration = len(train.TimeBudget(config, 0).plan)
    assert summary["steps"] == calibration and summary["final_test_acc"] is not None
    assert f"the {calibration} calibration steps alone spent the budget" in out


def test_time_budget_refits_to_the_measured_speed():
    config = configs.TrainConfig(time_budget_min=1.0)  # 60 s at one train size
    budget = train.TimeBudget(config, start_step=0)
    for step in range(budget.end):
        budget.record(config.img_size, 0.125)
    assert budget.fit(budget.end, seconds_spent=0.0) == budget.end + 480  # 60 s / 0.125 s
    for _ in range(100):  # predicted 100 x 0.125 = 12.5 s, but the steps took 20 s and the time
        budget.record(config.img_size, 0.2)  # between them 5 s more: 0.25 s per step in all
    assert budget.fit(budget.end + 100, seconds_spent=25.0) == budget.end + 100 + 140  # 35 s / 0.25 s
    assert budget.fit(budget.end + 200, seconds_spent=61.0) == budget.end + 200  # over: stop now


def test_time_budget_trusts_the_run_over_a_noisy_calibration():
    # calibration timed 32 px at twice its real cost; the ramp is empty, so every later step is 32 px
    config = configs.TrainConfig(time_budget_min=1.0, progressive_start=16, progressive_until=0.0)
    budget = train.TimeBudget(config, start_step=0)
    for step in range(budget.end):
        size = budget.size(step)
        budget.record(size, 0.5 if size == 32 else 0.125)
    start = budget.end
    assert budget.fit(start, seconds_spent=0.0) == start + 120  # 60 s / 0.5 s
    for _ in range(100):  # the run so far: 16 px steps as calibrated, then 32 px at 0.25 s
        budget.record(16, 0.125)
    for _ in range(budget.MIN_STEPS):
        budget.record(32, 0.25)
    done, spent = 100 + budget.MIN_STEPS, 100 * 0.125 + budget.MIN_STEPS * 0.25
    # each size's own mean: 42.5 s left / 0.25 s; one ratio for all sizes (17.5 s measured
    # against 22.5 s calibrated) would have planned 0.39 s per 32 px step, 109 steps
    assert budget.fit(start + done, seconds_spent=spent) == start + done + 170


@needs_cifar
def test_kill_9_then_resume_continues_exactly(tmp_path):
    sets = [*SMALL, "train_subset=1024", "epochs=6"]
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "metaformer_mini.train", "--config", "cifar10-quick",
           "--data-dir", str(CIFAR_DIR), "--out", str(run), "--no-progress", "--set", *sets]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics = run / "metrics.jsonl"
    while proc.poll() is None and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    killed_at = read_checkpoint(run / "last.pt")["epoch"]
    assert 2 <= killed_at < 6

    done = subprocess.run([*cmd, "--resume"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming {run / 'last.pt'}: epoch {killed_at}" in done.stdout
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 6 * 8 and summary["epochs_completed"] == 6
    resumed = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [h["epoch"] for h in resumed] == [1, 2, 3, 4, 5, 6]

    # an uninterrupted run of the same config reaches the same losses and accuracies
    straight = train.train(configs.get_train_config("cifar10-quick", sets), CIFAR_DIR, None,
                           progress=False)
    for a, b in zip(resumed, straight["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["test_top1"] == b["test_top1"]


@needs_cifar
def test_run_folder_errors(tmp_path):
    config = small_config("train_subset=256", "epochs=1")
    train.train(config, CIFAR_DIR, tmp_path, progress=False)
    with pytest.raises(ValueError, match="already holds a run.*--resume"):
        train.train(config, CIFAR_DIR, tmp_path, progress=False)
    other = dataclasses.replace(config, model="cifar_identityformer")
    with pytest.raises(ValueError, match="cannot resume.*model='cifar_poolformer'.*cifar_identityformer"):
        train.train(other, CIFAR_DIR, tmp_path, resume=True, progress=False)
    other = dataclasses.replace(config, optimizer="adamw")
    with pytest.raises(ValueError, match="cannot resume.*optimizer='muon'.*'adamw'"):
        train.train(other, CIFAR_DIR, tmp_path, resume=True, progress=False)
    (tmp_path / "last.pt").write_bytes((tmp_path / "last.pt").read_bytes()[:5000])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        train.train(config, CIFAR_DIR, tmp_path, resume=True, progress=False)
    with pytest.raises(ValueError, match="fewer than one batch"):
        train.train(small_config("train_subset=100"), CIFAR_DIR, None, progress=False)


@needs_cifar
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    class PoisonedAfterFirstEpoch(data.CifarBatches):
        poison = False  # clean for the whitened stem, which reads images before the first epoch

        def set_epoch(self, epoch):
            super().set_epoch(epoch)
            self.poison = epoch >= 1

        def __iter__(self):
            for x, y in super().__iter__():
                yield (x * float("nan") if self.poison else x), y

    monkeypatch.setattr(data, "CifarBatches", PoisonedAfterFirstEpoch)
    with pytest.raises(train.TrainingDiverged, match=r"loss became nan .*epoch 1.*last.pt keeps the last good"):
        train.train(small_config("train_subset=512", "epochs=3"), CIFAR_DIR, tmp_path, progress=False)
    state = read_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 1 and all(torch.isfinite(v).all() for v in state["model"].values())


def test_cli_reports_errors_without_a_traceback(capsys):
    with pytest.raises(SystemExit, match="unknown train config 'nope'"):
        train.main(["--config", "nope", "--data-dir", "x"])
    with pytest.raises(SystemExit, match="data folder .*missing-folder does not exist"):
        train.main(["--config", "cifar10-quick", "--data-dir", "missing-folder"])


def test_imagenet_layout_runs_with_the_paper_recipe(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        for c in ("n01", "n02", "n03"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
                    tmp_path / split / c / f"{i}.JPEG")
    config = configs.get_train_config("imagenet-s12", [
        "model.dims=(8,8,8,8)", "model.depths=(1,1,1,1)", "img_size=32", "batch_size=4",
        "micro_batch=2", "epochs=1", "workers=0", "threads=1"])
    assert (config.rand_magnitude, config.mixup, config.cutmix) == (9, 0.8, 1.0)
    summary = train.train(config, tmp_path, tmp_path / "run", progress=False)
    assert summary["steps"] == 3 and summary["num_classes"] == 3  # 12 images, 4 per step
    assert summary["history"][0]["test_top5"] == 100.0  # 3 classes: always in the top 5
    assert math.isfinite(summary["history"][0]["train_loss"])
    assert read_checkpoint(tmp_path / "run" / "last.pt")["step"] == 3


@pytest.mark.parametrize("setting, message", [
    ("batch_size=0", "batch_size must be positive, got 0"),
    ("epochs=-1", "epochs must be positive, got -1.0"),
    ("lr_batch=0", "lr_batch must be positive, got 0"),
    ("workers=-1", "workers must be 0 or more, got -1"),
    ("train_subset=-5", "train_subset must be 0 or more, got -5"),
    ("time_budget_min=-1", "time_budget_min must be 0 or more, got -1.0"),
    ("label_smoothing=1", r"label_smoothing must be in \[0, 1\), got 1.0"),
    ("ema_decay=1", r"ema_decay must be in \[0, 1\), got 1.0"),
    ("warmup_fraction=1.5", r"warmup_fraction must be in \[0, 1\), got 1.5"),
    ("random_erasing=2", r"random_erasing must be in \[0, 1\], got 2.0"),
    ("crop_pct=0", r"crop_pct must be in \(0, 1\], got 0.0"),
    ("betas=(0.9,1.5)", r"betas\[1\] must be in \[0, 1\), got 1.5"),
    ("device=tpu", "unknown device 'tpu'"),
])
def test_out_of_range_config_values_name_the_field_value_and_range(setting, message):
    with pytest.raises(ValueError, match=message):
        configs.get_train_config("cifar10-quick", [setting])


def test_every_named_config_is_in_range():
    for name in configs.list_configs():
        configs.get_train_config(name)  # raises if a declared value left its range


def _outside(interval: str, kind: type) -> list:
    """Return the values just outside ``interval`` ("[0, 1)", "(0, inf)"), as ``kind``."""
    low, high = (float(end) for end in interval[1:-1].split(","))
    values = []
    if math.isfinite(low):
        values.append(low if interval[0] == "(" else low - 1)
    if math.isfinite(high):
        values.append(high if interval[-1] == ")" else high + 1)
    return [kind(v) for v in values]


HINTS = {f.name: f.type for f in dataclasses.fields(configs.TrainConfig)}


@pytest.mark.parametrize("name, value, interval", [
    (name, value, interval) for name, interval in configs.RANGES.items()
    for value in _outside(interval, {"int": int, "float": float}[HINTS[name]])])
def test_every_ranged_config_field_refuses_values_outside_its_range(name, value, interval):
    allowed = {"(0, inf)": "positive", "[0, inf)": "0 or more"}.get(interval, f"in {interval}")
    with pytest.raises(ValueError) as err:
        configs.TrainConfig(**{name: value})
    assert str(err.value) == f"{name} must be {allowed}, got {value!r}"


@pytest.mark.parametrize("changes, message", [
    (dict(img_size=32, tta_shift=32), r"tta_shift must be in \[0, 32\), got 32"),
    (dict(progressive_until=1.5), r"progressive_until must be in \[0, 1\], got 1.5"),
    (dict(rand_magnitude=31), r"rand_magnitude must be in \[0, 30\], got 31"),
    (dict(img_size=32, progressive_start=48), "progressive_start=48 is larger than img_size=32"),
])
def test_config_fields_that_depend_on_each_other_or_on_torchvision(changes, message):
    with pytest.raises(ValueError, match=message):
        configs.TrainConfig(**changes)


def test_cli_time_budget_flag_is_range_checked(capsys):
    with pytest.raises(SystemExit):
        train.main(["--time-budget-min", "-1", "--download"])
    assert "argument --time-budget-min: must be 0 or more, got -1.0" in capsys.readouterr().err
