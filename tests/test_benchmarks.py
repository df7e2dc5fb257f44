"""Tests for benchmarks/*.py: every numeric flag is range-checked; keep_freed_memory.py and throughput.py run end to end."""
import ctypes
import importlib
import json
import resource
from pathlib import Path

import pytest
import torch

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
    ("keep_freed_memory", ["--batch", "0"], "argument --batch: must be 1 or more, got 0"),
    ("keep_freed_memory", ["--iters", "0"], "argument --iters: must be 1 or more, got 0"),
    ("keep_freed_memory", ["--warmup", "-1"], "argument --warmup: must be 0 or more, got -1"),
    ("keep_freed_memory", ["--rounds", "0"], "argument --rounds: must be 1 or more, got 0"),
    ("keep_freed_memory", ["--threads", "0"], "argument --threads: must be 1 or more, got 0"),
])
def test_out_of_range_flags_name_the_flag_value_and_range(bench, capsys, script, argv, message):
    with pytest.raises(SystemExit):
        bench(script).main(argv)
    assert message in capsys.readouterr().err


def test_keep_freed_memory_measures_both_cases_in_their_own_processes(bench, tmp_path, capsys):
    out = tmp_path / "keep_freed_memory.json"
    argv = ["--batch", "2", "--iters", "1", "--warmup", "0", "--rounds", "1", "--threads", "1",
            "--out", str(out)]
    bench("keep_freed_memory").main(argv)
    result = json.loads(out.read_text())
    assert result["command"] == "python benchmarks/keep_freed_memory.py " + " ".join(argv)
    assert result["batch"] == 2 and result["img_size"] == 32 and result["config"] == "cifar10-quick"
    assert not result["cases"]["without"]["mallopt"]
    assert result["cases"]["with"]["mallopt"] == hasattr(ctypes.CDLL(None), "mallopt")  # glibc
    for case in result["cases"].values():
        assert case["step_s"] > 0 and case["page_faults_per_step"] >= 0 and len(case["rounds"]) == 1
    assert result["speedup"] == pytest.approx(result["cases"]["without"]["step_s"]
                                              / result["cases"]["with"]["step_s"])
    assert "page faults" in capsys.readouterr().out


def test_throughput_writes_one_row_per_amp_layout_and_step(bench, tmp_path, capsys):
    out = tmp_path / "throughput.json"
    argv = ["--device", "cpu", "--batch", "1", "--img-size", "32", "--iters", "1", "--warmup", "0",
            "--threads", "1", "--amp", "none", "bf16", "--out", str(out)]
    bench("throughput").main(argv)
    result = json.loads(out.read_text())
    assert result["command"] == "python benchmarks/throughput.py " + " ".join(argv)
    assert [(r["amp"], r["format"], r["step"]) for r in result["rows"]] == [
        (amp, fmt, step) for amp in ("none", "bf16") for fmt in ("contiguous", "channels_last")
        for step in ("forward", "train")]
    for r in result["rows"]:
        assert r["ours_over_timm"] == pytest.approx(r["ours_img_s"] / r["timm_img_s"])
    assert "ours/timm" in capsys.readouterr().out


def test_keep_freed_memory_stops_refaulting_activation_pages(bench):
    if not bench("keep_freed_memory").keep_freed_memory():
        pytest.skip("mallopt needs glibc")
    torch.empty(2 << 20).fill_(1.0)  # the first step faults its pages in
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):  # an 8 MiB activation, written and freed as each training step does
        torch.empty(2 << 20).fill_(1.0)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    # glibc's defaults fault ~18,000 pages in here (2,048 per step, less what it happens to keep)
    assert faults < 4 * 2048, f"{faults} page faults in 20 steps of 2,048 pages"
