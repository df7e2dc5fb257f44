"""Tests for metaformer_mini/analysis/compare.py: the mixer comparison table and its Figure-1 plots."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from torch import nn  # noqa: E402

from metaformer_mini.analysis import compare  # noqa: E402
from metaformer_mini.analysis.plots import MIXER_COLORS  # noqa: E402

SMALL = {"dims": (8, 16, 16, 16), "depths": (1, 1, 1, 1)}
SPECS = [{"name": name, "model": "cifar_poolformer", "overrides": dict(SMALL, token_mixer=name)}
         for name in ("pooling", "identity", "attention")]


def test_compare_counts_params_and_macs_per_mixer():
    rows = compare.compare_mixers(SPECS, results=[{"name": "pooling", "top1": 80.0},
                                                  {"name": "attention", "top1": 82.5}],
                                  measure_speed=False)
    by = {r["name"]: r for r in rows}
    models = {s["name"]: compare.build_spec(s) for s in SPECS}
    for name, row in by.items():
        assert row["params"] == sum(p.numel() for p in models[name].parameters())
        assert row["mixer"] == name and row["img_size"] == 32
    # pooling has no weights and fvcore leaves element-wise ops out: it costs what identity costs
    assert by["pooling"]["params"] == by["identity"]["params"]
    assert by["pooling"]["macs"] == by["identity"]["macs"]
    # attention adds qkv (3C^2) and proj (C^2) per token and block, and N^2 C for the maps
    assert by["attention"]["macs"] > by["pooling"]["macs"]
    assert (by["pooling"]["top1"], by["attention"]["top1"]) == (80.0, 82.5)
    assert "top1" not in by["identity"]


def test_compare_takes_accuracy_from_train_fn_and_measures_speed():
    seen = []

    def train_fn(spec):
        seen.append(spec["name"])
        return {"top1": 50.0 + len(seen), "train_seconds": 1.0} if len(seen) == 1 else 70.0

    rows = compare.compare_mixers(SPECS[:2], train_fn=train_fn, batch_size=2, iters=1)
    assert seen == ["pooling", "identity"]
    assert [r["top1"] for r in rows] == [51.0, 70.0] and rows[0]["train_seconds"] == 1.0
    assert all(r["throughput_cpu"] > 0 and r["activation_mb"] > 0 for r in rows)


def test_compare_rejects_bad_arguments():
    with pytest.raises(ValueError, match="not both"):
        compare.compare_mixers(SPECS, train_fn=lambda s: 1.0, results=[])
    with pytest.raises(ValueError, match="'name' and 'model'"):
        compare.compare_mixers([{"model": "cifar_poolformer"}], measure_speed=False)


def test_activation_memory_counts_the_tensors_saved_for_backward():
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    # the input (4 x 10) for the first weight's gradient, the ReLU output (4 x 20) for ReLU and
    # the second layer; the weights themselves are not counted
    expected = (4 * 10 + 4 * 20) * 4 / 2 ** 20
    assert compare.activation_memory_mb(model, (10,), batch_size=4) == pytest.approx(expected)


def test_measure_throughput_is_images_per_second():
    assert compare.measure_throughput(nn.Identity(), (3, 4, 4), batch_size=8, iters=2) > 0


def test_engine_train_fn_builds_the_training_config(monkeypatch):
    import metaformer_mini.train as engine

    captured = {}

    def fake_train(config, data_dir=None, progress=True):
        captured.update(config=config, data_dir=data_dir)
        return {"final_test_acc": 61.5, "train_seconds": 12.0}

    monkeypatch.setattr(engine, "train", fake_train)
    train_fn = compare.engine_train_fn("cifar10-quick", data_dir="somewhere", epochs=2)
    result = train_fn(SPECS[2])
    config = captured["config"]
    assert result == {"top1": 61.5, "train_seconds": 12.0}
    assert (config.model, config.epochs, captured["data_dir"]) == ("cifar_poolformer", 2.0, "somewhere")
    assert config.model_overrides["token_mixer"] == "attention"


def test_figure_one_plots_accuracy_against_cost():
    rows = [{"name": "S12", "mixer": "pooling", "params": 12e6, "macs": 1.8e9, "top1": 77.2},
            {"name": "S24", "mixer": "pooling", "params": 21e6, "macs": 3.4e9, "top1": 80.3},
            {"name": "DeiT-S", "mixer": "attention", "params": 22e6, "macs": 4.6e9, "top1": 79.8},
            {"name": "none", "mixer": "identity", "params": 12e6, "macs": 1.8e9, "top1": None}]
    fig = compare.plot_mixer_comparison(rows)
    left, right = fig.axes
    pooling = left.lines[0]
    assert list(pooling.get_xdata()) == [1.8, 3.4] and list(pooling.get_ydata()) == [77.2, 80.3]
    assert pooling.get_color() == MIXER_COLORS["pooling"]
    assert left.lines[1].get_marker() == "^" and len(left.lines) == 2  # no accuracy, no point
    assert list(right.lines[1].get_xdata()) == [22.0]
    assert (left.get_xlabel(), right.get_xlabel()) == ("MACs (G)", "parameters (M)")
    assert left.get_ylabel() == "top-1 accuracy (%)"
    assert {t.get_text() for t in left.texts} == {"S12", "S24", "DeiT-S"}
    with pytest.raises(ValueError, match="'macs' or 'params'"):
        compare.plot_accuracy_vs_cost(rows, x="flops")
    with pytest.raises(ValueError, match="no row has a 'top1'"):
        compare.plot_accuracy_vs_cost(rows[3:])
    table = compare.format_table(rows)
    assert "12.00" in table and "1.800" in table and "77.20" in table and table.count("\n") == 4


@pytest.mark.parametrize("call, message", [
    (lambda: compare.measure_throughput(nn.Identity(), (3, 4, 4), batch_size=0), "batch_size must be 1 or more, got 0"),
    (lambda: compare.measure_throughput(nn.Identity(), (3, 4, 4), iters=0), "iters must be 1 or more, got 0"),
    (lambda: compare.measure_throughput(nn.Identity(), (3, 4, 4), warmup=-1), "warmup must be 0 or more, got -1"),
    (lambda: compare.activation_memory_mb(nn.Identity(), (3, 4, 4), batch_size=-2), "batch_size must be 1 or more, got -2"),
    (lambda: compare.peak_gpu_memory_mb(nn.Identity(), (3, 4, 4), batch_size=0), "batch_size must be 1 or more, got 0"),
    (lambda: compare.compare_mixers(SPECS[:1], iters=0), "iters must be 1 or more, got 0"),
    (lambda: compare.build_spec(SPECS[0], num_classes=0), "num_classes must be 1 or more, got 0"),
])
def test_out_of_range_arguments_name_the_argument_value_and_range(call, message):
    with pytest.raises(ValueError, match=message):
        call()
