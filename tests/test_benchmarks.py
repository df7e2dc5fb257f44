"""Tests for benchmarks/*.py: every numeric flag is range-checked."""
import importlib
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    """Return a function importing ``benchmarks/<name>.py`` (they import each other by name)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module


@pytest.mark.parametrize("script, argv, message", [
    ("throughput", ["--batch", "0"], "argument --batch: must be 1 or more, got 0"),
    ("throughput", ["--iters", "-1"], "argument --iters: must be 1 or more, got -1"),
    ("throughput", ["--warmup", "-1"], "argument --warmup: must be 0 or more, got -1"),
    ("throughput", ["--img-size", "16"], "argument --img-size: must be in [32, inf), got 16"),
    ("throughput", ["--threads", "0"], "argument --threads: must be 1 or more, got 0"),
    ("cifar_quick", ["--budgets", "3", "0"], "argument --budgets: must be positive, got 0.0"),
    ("cifar_full", ["--time-budget-min", "-1"], "argument --time-budget-min: must be 0 or more, got -1.0"),
    ("recipe_ablation", ["--epochs", "0"], "argument --epochs: must be 1 or more, got 0"),
    ("recipe_ablation", ["--threads", "-2"], "argument --threads: must be 0 or more, got -2"),
    ("browser_speed", ["--images", "0"], "argument --images: must be 1 or more, got 0"),
])
def test_out_of_range_flags_name_the_flag_value_and_range(bench, capsys, script, argv, message):
    with pytest.raises(SystemExit):
        bench(script).main(argv)
    assert message in capsys.readouterr().err

