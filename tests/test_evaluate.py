"""Tests for metaformer_mini/evaluate.py: top-1/top-5 values, flip and shift TTA, the CLI."""
import dataclasses
import json
import re
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from metaformer_mini import checkpoint, data, evaluate
from metaformer_mini.configs import TrainConfig


class ReadsLogits(nn.Module):
    """A 'model' whose logits are the first ``k`` pixels of channel 0: tests choose the ranking."""

    def __init__(self, k=None):
        super().__init__()
        self.k = k

    def forward(self, x):
        return x[:, 0, 0, :self.k]


def test_top1_top5_and_loss_are_exact():
    logits = torch.tensor([[9., 1, 2, 3, 4, 5, 0],    # label 0: top-1 hit
                           [1., 9, 8, 7, 6, 5, 0],    # label 6: ranked last, miss
                           [5., 9, 8, 7, 6, 0, 1],    # label 0: rank 5 -> top-5 hit only
                           [0., 1, 2, 3, 4, 5, 9]])   # label 6: top-1 hit
    labels = torch.tensor([0, 6, 0, 6])
    x = logits[:, None, None, :].expand(4, 3, 7, 7).contiguous()
    batches = [(x[:2], labels[:2]), (x[2:], labels[2:])]
    result = evaluate.evaluate(ReadsLogits(), batches)
    assert result["top1"] == 50.0 and result["top5"] == 75.0 and result["images"] == 4
    expected = nn.functional.cross_entropy(logits, labels).item()
    assert result["loss"] == pytest.approx(expected, rel=1e-6)


def test_flip_tta_averages_the_mirror_image():
    # logits [3, 0, 2] for the image, [0, 0, 4] for its mirror; their mean [1.5, 0, 3] picks class 2
    row = torch.tensor([3., 0, 2, 4, 0, 0])
    x = row.expand(1, 3, 6, 6).contiguous()
    plain = evaluate.evaluate(ReadsLogits(3), [(x, torch.tensor([2]))])
    tta = evaluate.evaluate(ReadsLogits(3), [(x, torch.tensor([2]))], tta_flip=True)
    assert plain["top1"] == 0.0 and tta["top1"] == 100.0
    expected = nn.functional.cross_entropy(torch.tensor([[1.5, 0, 3]]), torch.tensor([2])).item()
    assert tta["loss"] == pytest.approx(expected, rel=1e-6)


def test_shift_tta_views_are_diagonal_translations_and_their_mirrors():
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    views = evaluate.tta_views(x, flip=True, shift=1)
    assert len(views) == 6 and all(v.shape == x.shape for v in views)
    torch.testing.assert_close(views[0], x)
    torch.testing.assert_close(views[1][..., 1:, 1:], x[..., :-1, :-1])  # moved down and right
    torch.testing.assert_close(views[1][..., 0, 1:], x[..., 1, :-1])     # the edge reflected
    torch.testing.assert_close(views[2][..., :-1, :-1], x[..., 1:, 1:])  # moved up and left
    torch.testing.assert_close(views[3], x.flip(-1))
    torch.testing.assert_close(views[4], views[1].flip(-1))
    assert len(evaluate.tta_views(x)) == 1 and len(evaluate.tta_views(x, shift=2)) == 3


def test_shift_tta_averages_the_logits_of_every_view():
    torch.manual_seed(0)
    x, y = torch.randn(4, 3, 6, 6), torch.tensor([0, 1, 2, 3])
    result = evaluate.evaluate(ReadsLogits(), [(x, y)], tta_flip=True, tta_shift=1)
    mean = torch.stack([v[:, 0, 0, :] for v in evaluate.tta_views(x, True, 1)]).mean(0)
    expected = nn.functional.cross_entropy(mean, y).item()
    assert result["loss"] == pytest.approx(expected, rel=1e-6)
    plain = evaluate.evaluate(ReadsLogits(), [(x, y)])["loss"]
    assert plain != pytest.approx(expected, rel=1e-3)


def test_evaluate_restores_training_mode_and_rejects_empty():
    model = ReadsLogits().train()
    x = torch.zeros(1, 3, 2, 2)
    evaluate.evaluate(model, [(x, torch.tensor([0]))])
    assert model.training
    with pytest.raises(ValueError, match="no batches"):
        evaluate.evaluate(model, [])


def write_cifar_like(root, per_class=2):
    rng = np.random.default_rng(0)
    for c in range(10):
        d = root / "test" / f"class{c}"
        d.mkdir(parents=True)
        (root / "train" / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.png")
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                root / "train" / f"class{c}" / f"{i}.png")


def test_cli_evaluates_a_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("METAFORMER_CACHE", str(tmp_path / "cache"))
    write_cifar_like(tmp_path / "cifar")
    config = TrainConfig(model="cifar_poolformer", model_overrides={"dims": (8, 8, 16, 16),
                                                                    "depths": (1, 1, 1, 1)})
    torch.manual_seed(0)
    model = checkpoint.build_model(config, 10)
    checkpoint.save_checkpoint(tmp_path / "best.pt", {
        "model": model.state_dict(), "num_classes": 10, "config": dataclasses.asdict(config)})
    result = evaluate.main(["--checkpoint", str(tmp_path / "best.pt"), "--data-dir",
                            str(tmp_path / "cifar"), "--device", "cpu"])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == result and result["images"] == 20
    batches = evaluate.test_batches(config, str(tmp_path / "cifar"), torch.device("cpu"))
    assert result == evaluate.evaluate(model, batches)


def test_cli_pretrained_on_an_imagenet_val_folder(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    for c in range(3):
        d = tmp_path / "imagenet" / "val" / f"n0{c}"
        d.mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(d / f"{i}.JPEG")
    calls = []

    def fake_load_pretrained(name, path=None):  # stands in for the download of official weights
        calls.append((name, path))
        return checkpoint.create_model(name, 3, dims=(8, 8, 8, 8), depths=(1, 1, 1, 1))

    monkeypatch.setitem(sys.modules, "metaformer_mini.weights",
                        types.SimpleNamespace(load_pretrained=fake_load_pretrained))
    monkeypatch.setattr(data, "imagenet_val_dataset", _small_val(data.imagenet_val_dataset))
    result = evaluate.main(["--model", "poolformer_s12", "--pretrained", "--weights", "w.pth",
                            "--data-dir", str(tmp_path / "imagenet"), "--device", "cpu"])
    assert calls == [("poolformer_s12", "w.pth")]
    assert result["images"] == 6 and 0 <= result["top1"] <= 100 and result["top5"] == 100.0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result


def _small_val(original):
    def small(data_dir, img_size=224, crop_pct=0.9):
        assert (img_size, crop_pct) == (224, 0.9)  # S12's evaluation crop
        return original(data_dir, 32, crop_pct)
    return small


def test_cli_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        evaluate.main(["--model", "poolformer_s12", "--data-dir", str(tmp_path)])
    assert "--model needs --pretrained" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="error: no checkpoint at"):
        evaluate.main(["--checkpoint", str(tmp_path / "x.pt"), "--data-dir", str(tmp_path)])


@pytest.mark.parametrize("flag, value, message", [
    ("--batch-size", "0", "argument --batch-size: must be 1 or more, got 0"),
    ("--crop-pct", "1.5", r"argument --crop-pct: must be in \(0, 1\], got 1.5"),
    ("--crop-pct", "0", r"argument --crop-pct: must be in \(0, 1\], got 0.0"),
    ("--tta-shift", "-1", "argument --tta-shift: must be 0 or more, got -1"),
])
def test_cli_rejects_out_of_range_flags(tmp_path, capsys, flag, value, message):
    with pytest.raises(SystemExit):
        evaluate.main(["--checkpoint", str(tmp_path / "x.pt"), "--data-dir", str(tmp_path), flag, value])
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.parametrize("call, message", [
    (lambda: evaluate.tta_views(torch.zeros(1, 3, 8, 8), shift=-1), r"shift must be in \[0, 8\), got -1"),
    (lambda: evaluate.tta_views(torch.zeros(1, 3, 8, 8), shift=8), r"shift must be in \[0, 8\), got 8"),
    (lambda: evaluate.evaluate(ReadsLogits(), [(torch.zeros(1, 3, 4, 4), torch.zeros(1).long())], tta_shift=4),
     r"shift must be in \[0, 4\), got 4"),
    (lambda: evaluate.autocast(torch.device("cpu"), "fp8"), "unknown amp mode 'fp8'"),
])
def test_out_of_range_arguments_name_the_argument_value_and_range(call, message):
    with pytest.raises(ValueError, match=message):
        call()
