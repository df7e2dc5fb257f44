"""DistributedDataParallel on CPU: 2 processes under torchrun (gloo) on a CIFAR-10 subset."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CIFAR_DIR = ROOT.parent / "shared" / "data" / "cifar10"


@pytest.mark.skipif(not CIFAR_DIR.is_dir(), reason="CIFAR-10 folder not next to the repo")
def test_two_processes_train_and_rank_0_logs(tmp_path):
    run = tmp_path / "ddp"
    sets = ["model.dims=(16,32,64,128)", "model.depths=(1,1,2,1)", "model.layer_scale_init=1e-5",
            "threads=1", "train_subset=1024", "test_subset=500", "batch_size=128",
            "micro_batch=32", "lr=8e-3", "lr_batch=128", "warmup_epochs=0.5", "epochs=3",
            "eval_every=1"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "metaformer_mini.train", "--config", "cifar10-quick", "--data-dir",
           str(CIFAR_DIR), "--out", str(run), "--no-progress", "--set", *sets]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # 2 processes x micro-batch 32 x 2 accumulation steps = the global batch of 128
    assert "batch 128 = 2 x 32 x 2 accumulation | 8 steps/epoch" in done.stdout
    assert done.stdout.count("config cifar10-quick:") == 1  # only rank 0 prints
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3] and [h["step"] for h in history] == [8, 16, 24]
    assert {"epoch", "step", "lr", "train_loss", "test_top1", "test_top5", "images_per_s",
            "train_seconds", "wall_seconds"} <= set(history[0])
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 24
    assert summary["final_test_acc"] == history[-1]["test_top1"]
    assert history[-1]["test_images"] == 500  # each process evaluates half, the counts are summed
