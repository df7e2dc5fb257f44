"""Tests for metaformer_mini/experiments.py: the declared suite, committed results, resume, checkpoints."""
import dataclasses
import json
import re
import shlex
import statistics

import pytest
import torch

from metaformer_mini import experiments as ex
from metaformer_mini.checkpoint import build_model, save_checkpoint
from metaformer_mini.configs import SUITE_EPOCHS, get_train_config
from metaformer_mini.registry import get_config
from metaformer_mini.train import TrainingDiverged, cpu_has_bf16

RESULTS = ex.default_results_dir()
README = RESULTS.parent / "README.md"


class FakeTrain:
    """Stands in for metaformer_mini.train.train: records calls, writes last.pt, can fail on a seed."""

    def __init__(self, fail_seed=None, diverge=False):
        self.calls, self.fail_seed, self.diverge = [], fail_seed, diverge

    def __call__(self, config, data_dir=None, out=None, resume=False, progress=True):
        self.resumed = getattr(self, "resumed", []) + [resume]
        if config.seed == self.fail_seed:
            raise RuntimeError("killed")
        if self.diverge:
            raise TrainingDiverged("the training loss became nan by step 3")
        self.calls.append((config.model, dict(config.model_overrides), config.seed))
        torch.manual_seed(config.seed)
        model = build_model(config, 10)
        out.mkdir(parents=True, exist_ok=True)  # the engine makes its run folder
        save_checkpoint(out / "last.pt", {"model": model.state_dict(), "num_classes": 10,
                                           "config": dataclasses.asdict(config)})
        return {"final_test_acc": 40.0 + config.seed, "final_test_top5": 90.0, "epochs_completed": 1.0,
                "steps": 10, "train_seconds": 1.0, "wall_seconds": 2.0, "images_per_s": 100.0,
                "device": "fake CPU", "amp": "bf16"}


def run(names, tmp_path, fake):
    return ex.run_suite(names, results_dir=tmp_path / "r", checkpoint_dir=tmp_path / "ck",
                        train_fn=fake, check_checkpoints=False, progress=False, command="pytest",
                        work_dir=tmp_path / "w")


# --- the declaration ----------------------------------------------------------------------------

def test_paper_numbers_are_those_of_table_5():
    paper = {r.name: r.paper.top1 for r in ex.SUITE if r.paper is not None}
    assert paper == {"pooling": 77.2, "identity": 74.3, "random": 75.8, "sepconv": 78.1,
                     "pool5": 77.2, "pool7": 77.1, "pool9": 76.8, "norm_layer": 76.5,
                     "norm_batch": 76.4, "norm_none": 46.1, "act_relu": 76.4, "act_silu": 77.2,
                     "hybrid_attention": 81.0, "hybrid_spatial_mlp": 77.9, "no_channel_mlp": 5.7,
                     "no_residual": 0.1}
    assert {r.paper.table for r in ex.SUITE if r.paper} == {"Table 5"}
    assert {r.name for r in ex.SUITE if r.paper is None} == {"attention", "spatial_mlp", "act_starrelu"}


def test_rows_differ_from_the_pooling_row_in_the_declared_choice_only():
    base = get_config("cifar_poolformer").to_dict()
    expected = {"pool5": {"pool_size": 5}, "norm_none": {"norm": "none"}, "act_silu": {"act": "silu"},
                "no_residual": {"residual": False}, "no_channel_mlp": {"channel_mlp": False},
                "hybrid_attention": {"token_mixers": ["pooling", "pooling", "attention", "attention"]},
                "attention": {"token_mixers": ["attention"] * 4},
                "sepconv": {"token_mixers": ["sepconv"] * 4}}
    for name, diff in expected.items():
        row = ex.get_row(name)
        config = get_config(row.model, **row.overrides).to_dict()
        assert {k: v for k, v in config.items() if base[k] != v} == diff, name
    mixer_rows = [r for r in ex.SUITE if r.group == "mixer"]
    assert len(mixer_rows) == 6 and all(len(r.seeds) >= 3 for r in mixer_rows)
    assert all(len(r.seeds) >= 3 for r in ex.SUITE if r.group == "hybrid")
    assert all(len(r.seeds) >= 1 for r in ex.SUITE) and len(ex.SUITE) == 19
    assert ex.BASELINE == "pooling" and set(ex.CHECKPOINT_ROWS) == {r.name for r in mixer_rows}


def test_every_row_trains_the_same_fixed_epochs_with_no_time_budget():
    configs = [r.train_config(0) for r in ex.SUITE]
    for config, row in zip(configs, ex.SUITE):
        assert (config.name, config.time_budget_min, config.seed) == ("cifar10-suite", 0.0, 0)
        assert config.epochs == SUITE_EPOCHS and ex.row_config(row)["epochs"] == SUITE_EPOCHS
        recipe = get_train_config("cifar10-suite", {"model": row.model})
        assert dataclasses.asdict(config) == dataclasses.asdict(recipe) | {"model_overrides": dict(row.overrides)}


def test_the_quick_recipe_is_the_suite_recipe_with_a_faster_model_and_pipeline():
    quick, suite = get_train_config("cifar10-quick"), get_train_config("cifar10-suite")
    assert suite.model_overrides == {} and quick.model == suite.model
    different = {k for k, v in dataclasses.asdict(quick).items() if dataclasses.asdict(suite)[k] != v}
    assert different == {"name", "model_overrides", "progressive_start", "crop_padding", "epochs", "amp"}
    assert (quick.amp, suite.amp) == ("auto", "bf16")  # the machine's fast precision; the suite's fixed one
    assert quick.epochs == 10 and suite.epochs == SUITE_EPOCHS  # the quick run stays short
    assert (suite.whiten_stem, suite.optimizer, suite.tta_flip, suite.tta_shift, suite.label_smoothing,
            suite.crop_padding, suite.time_budget_min) == (True, "muon", True, 1, 0.2, 2, 0.0)
    assert suite.progressive_start == 0  # fixed-grid mixers (spatial MLP, random) need 32x32 throughout
    pooling = ex.get_row("pooling").train_config(0)
    model = build_model(pooling, 10)
    assert (model.config.norm, model.config.act, model.config.token_mixers[0]) == ("group", "gelu", "pooling")


def test_train_command_repeats_the_run():
    row = ex.get_row("hybrid_spatial_mlp")
    config = row.train_config(1)
    words = shlex.split(ex.train_command(config, row, "../shared/data/cifar10"))
    assert "--time-budget-min" not in words
    sets = words[words.index("--set") + 1:words.index("--data-dir")]
    again = get_train_config(words[words.index("--config") + 1], sets)
    assert dataclasses.asdict(again) == dataclasses.asdict(config)


def test_bad_row_names_give_a_clear_error(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown suite row 'poolng'; did you mean 'pooling'"):
        ex.get_row("poolng")
    with pytest.raises(ValueError, match="unknown suite row 'nope'"):
        run(["nope"], tmp_path, FakeTrain())
    with pytest.raises(SystemExit, match="did you mean 'act_relu'"):
        ex.main(["run", "act_rel", "--results-dir", str(tmp_path)])
    with pytest.raises(ValueError, match="no trained checkpoint for 'pool5'"):
        ex.load_suite_model("pool5")


# --- running and resuming --------------------------------------------------------------------

def test_resume_skips_finished_runs_and_reruns_changed_ones(tmp_path):
    fake = FakeTrain()
    (result,) = run(["pool5"], tmp_path, fake)
    assert fake.calls == [("cifar_poolformer", {"pool_size": 5}, 0), ("cifar_poolformer", {"pool_size": 5}, 1)]
    assert result["top1_mean"] == 40.5 and result["complete"] and result["params"] > 1e6
    assert result["runs"][0]["train_config"]["model_overrides"] == {"pool_size": 5}
    run(["pool5"], tmp_path, fake)
    assert len(fake.calls) == 2  # finished: skipped
    path = tmp_path / "r" / "pool5.json"
    saved = json.loads(path.read_text())
    saved["config"]["epochs"] = 3  # another epoch count is another config: re-run
    path.write_text(json.dumps(saved))
    run(["pool5"], tmp_path, fake)
    assert len(fake.calls) == 4  # both declared seeds again
    saved = json.loads(path.read_text())
    assert saved["config"]["epochs"] == SUITE_EPOCHS and len(saved["runs"]) == 2


def test_runs_go_seed_by_seed_across_rows(tmp_path):
    fake = FakeTrain()
    run(["pool5", "identity"], tmp_path, fake)
    assert [(c[0], c[2]) for c in fake.calls] == [
        ("cifar_poolformer", 0), ("cifar_identityformer", 0), ("cifar_poolformer", 1),
        ("cifar_identityformer", 1), ("cifar_identityformer", 2)]


def test_an_interrupted_row_resumes_at_its_missing_seed(tmp_path):
    with pytest.raises(RuntimeError, match="killed"):
        run(["random"], tmp_path, FakeTrain(fail_seed=1))
    partial = json.loads((tmp_path / "r" / "random.json").read_text())
    assert [r["seed"] for r in partial["runs"]] == [0] and not partial["complete"]
    fake = FakeTrain()
    (result,) = run(["random"], tmp_path, fake)
    assert [c[2] for c in fake.calls] == [1, 2]
    assert result["top1_seeds"] == [40.0, 41.0, 42.0] and result["top1_mean"] == 41.0
    assert result["complete"] and result["top1_std"] == pytest.approx(statistics.stdev([40.0, 41.0, 42.0]))


class StoppedAfterEpochs(FakeTrain):
    """Leaves last.pt as the engine does after ``epochs`` epochs, then dies (the session ended)."""

    def __init__(self, epochs, config_of=lambda config: config):
        super().__init__()
        self.epochs, self.config_of = epochs, config_of

    def __call__(self, config, data_dir=None, out=None, resume=False, progress=True):
        out.mkdir(parents=True, exist_ok=True)
        save_checkpoint(out / "last.pt", {"config": dataclasses.asdict(self.config_of(config)),
                                          "epoch": self.epochs, "step": 10 * self.epochs,
                                          "history": [{"wall_seconds": 30.0 * self.epochs}]})
        raise RuntimeError("killed")


def test_a_seed_stopped_in_training_resumes_from_its_last_epoch(tmp_path, capsys):
    with pytest.raises(RuntimeError, match="killed"):
        run(["random"], tmp_path, StoppedAfterEpochs(4))
    folder = tmp_path / "w" / "random-seed0"
    assert (folder / "last.pt").is_file() and not (tmp_path / "r" / "random.json").exists()
    fake = FakeTrain()
    (result,) = run(["random"], tmp_path, fake)
    assert fake.resumed == [True, False, False]
    assert f"random seed 0: resuming after epoch 4 from {folder}" in capsys.readouterr().out
    run0, run1, _ = result["runs"]
    assert run0["resumed_from_epoch"] == 4 and run0["suite_wall_seconds"] >= 120.0
    assert "resumed_from_epoch" not in run1
    assert not any((tmp_path / "w").iterdir())  # recorded seeds leave no folder behind


def test_a_stopped_seed_of_another_config_starts_afresh(tmp_path):
    other_epochs = lambda config: dataclasses.replace(config, epochs=config.epochs + 1)
    with pytest.raises(RuntimeError, match="killed"):
        run(["random"], tmp_path, StoppedAfterEpochs(2, other_epochs))
    fake = FakeTrain(fail_seed=1)
    with pytest.raises(RuntimeError, match="killed"):
        run(["random"], tmp_path, fake)
    assert fake.resumed == [False, False]  # seed 0 afresh, then seed 1 (which dies)
    run0, = json.loads((tmp_path / "r" / "random.json").read_text())["runs"]
    assert "resumed_from_epoch" not in run0 and not (tmp_path / "w" / "random-seed0").exists()


def test_a_diverged_run_is_recorded_not_fatal(tmp_path, capsys):
    (result,) = run(["no_residual"], tmp_path, FakeTrain(diverge=True))
    assert result["top1_seeds"] == [None, None] and result["top1_mean"] is None and result["complete"]
    assert "nan" in result["runs"][0]["diverged"]
    (row,) = ex.results_table([result])
    assert "| no_residual | component | diverged | - | diverged / diverged | - |" in ex.format_results_table([row])


def test_checkpoint_rows_leave_small_int8_checkpoints_that_load(tmp_path):
    fake = FakeTrain()
    (result,) = run(["identity"], tmp_path, fake)
    first = result["runs"][0]
    path = tmp_path / "ck" / "identity.pt"
    assert first["checkpoint"] == "../ck/identity.pt" and result["runs"][1]["checkpoint"] is None
    assert path.stat().st_size == first["checkpoint_bytes"] < 0.3 * 4 * result["params"] + 2e5
    model = ex.load_suite_model("identity", tmp_path / "ck")
    torch.manual_seed(0)
    reference = build_model(ex.get_row("identity").train_config(0), 10).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        a, b = model(x), reference(x)
    assert not model.training and (a - b).abs().max() < 0.05 * b.abs().max()
    path.unlink()  # a lost checkpoint makes its seed unfinished again
    run(["identity"], tmp_path, fake)
    assert [c[2] for c in fake.calls] == [0, 1, 2, 0] and path.is_file()


def test_checkpoint_accuracy_evaluates_as_the_run_did(tmp_path, monkeypatch):
    run(["identity"], tmp_path, FakeTrain())
    path = tmp_path / "ck" / "identity.pt"
    seen = {}

    def fake_evaluate(model, batches, device, amp, tta_flip, tta_shift):
        seen.update(amp=amp, flip=tta_flip, shift=tta_shift)
        return {"top1": 12.5}
    monkeypatch.setattr("metaformer_mini.data.test_batches", lambda config, data_dir, device: [])
    monkeypatch.setattr("metaformer_mini.evaluate.evaluate", fake_evaluate)
    assert ex.checkpoint_accuracy(path, None) == 12.5
    assert seen == {"amp": "bf16", "flip": True, "shift": 1}
    state = torch.load(path, weights_only=True)
    state["config"]["amp"] = "auto"  # a config that leaves the choice to the device
    torch.save(state, path)
    ex.checkpoint_accuracy(path, None)
    assert seen["amp"] == ("bf16" if cpu_has_bf16() else "none")  # what this CPU would train with


def test_quantize_roundtrip_error_is_half_a_step():
    state = {"w": torch.randn(8, 4, 3, 3), "b": torch.randn(8), "n": torch.tensor(3)}
    q = ex.quantize_weights(state)
    assert q["w"]["int8"].dtype == torch.int8 and q["b"].dtype == torch.float16
    back = ex.dequantize_weights(q)
    step = state["w"].abs().amax(dim=(1, 2, 3), keepdim=True) / 127
    assert ((back["w"] - state["w"]).abs() <= step / 2 + 1e-7).all()
    assert torch.allclose(back["b"], state["b"], atol=2e-3) and back["n"] == 3


# --- the committed results ------------------------------------------------------------------

def test_every_committed_result_matches_its_declared_row():
    results = {r["name"]: r for r in ex.load_results()}
    assert ex.BASELINE in results and set(results) <= set(ex.list_rows())
    for name, result in results.items():
        row = ex.get_row(name)
        assert result["config"] == ex.row_config(row), name  # the same recipe and fixed epochs
        seeds = [r["seed"] for r in result["runs"]]
        assert ex.finished_seeds(result, row, RESULTS) == set(seeds) <= set(row.seeds), name
        assert result["complete"] == (set(seeds) == set(row.seeds))
        for run_ in result["runs"]:
            assert run_["git_commit"]
            assert run_["command"].startswith("python -m metaformer_mini.experiments run")
            assert run_["train_command"].startswith("python -m metaformer_mini.train")
            assert 0 <= run_["top1"] <= 100 and run_["load_avg_start"][0] >= 0
            assert run_["epochs"] == pytest.approx(SUITE_EPOCHS) and run_["wall_seconds"] > 0


def test_loader_reproduces_the_committed_table():
    rows = ex.results_table()
    assert [r["name"] for r in rows] == [n for n in ex.list_rows() if ex.result_path(RESULTS, n).is_file()]
    for r, result in zip(rows, ex.load_results()):
        assert r["top1_seeds"] == [run_["top1"] for run_ in result["runs"]]
        assert r["top1"] == pytest.approx(statistics.fmean(r["top1_seeds"]))
        paper = ex.ROWS[r["name"]].paper
        assert r["paper_top1"] == (None if paper is None else paper.top1)
    table = ex.format_results_table(rows)
    committed = re.search(r"<!-- table -->\n(.*?)\n<!-- /table -->", README.read_text(), re.S)
    assert committed and committed.group(1).strip() == table.strip()


def test_committed_checkpoints_load_and_are_small():
    results = {r["name"]: r for r in ex.load_results()}
    kept = [n for n in ex.CHECKPOINT_ROWS if n in results]
    sizes = [(ex.default_checkpoint_dir() / f"{n}.pt").stat().st_size for n in kept]
    assert ex.BASELINE in kept and sum(sizes) < 20e6 and max(sizes) < 5e6
    model = ex.load_suite_model(ex.BASELINE)
    assert model.config.token_mixers == ("pooling",) * 4 and model.config.num_classes == 10
    for name in kept:
        run_ = results[name]["runs"][0]
        assert abs(run_["checkpoint_top1"] - run_["top1"]) < 1.0  # int8 weights cost little


def test_list_and_table_commands(tmp_path, capsys):
    run(["pool9"], tmp_path, FakeTrain())
    capsys.readouterr()
    ex.main(["list", "--results-dir", str(tmp_path / "r")])
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listing] == ex.list_rows()
    assert [line.split()[-1] for line in listing if line.startswith("pool9")] == ["done"]
    ex.main(["table", "--results-dir", str(tmp_path / "r")])
    table = capsys.readouterr().out
    assert "| pool9 | pool size | 40.50 | 0.71 | 40.00 / 41.00 | - |" in table and "76.8 (Table 5)" in table


def test_a_seed_run_reads_and_writes_the_keys_of_the_committed_results():
    runs = [run for result in ex.load_results() for run in result["runs"]]
    assert runs
    for run in runs:
        typed = ex.SeedRun.from_dict(run)
        assert typed.to_dict() == run and typed.seed == run["seed"] and typed.top1 == run["top1"]
    bare = ex.SeedRun(seed=0, top1=None).to_dict()
    assert "checkpoint_bytes" not in bare and "checkpoint_top1" not in bare and bare["checkpoint"] is None


def test_the_suite_names_its_baseline_row():
    assert ex.BASELINE == ex.SUITE[0].name == "pooling" and ex.ROWS[ex.BASELINE].paper is not None
