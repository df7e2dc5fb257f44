"""Tests for metaformer_mini/book.py: the quick/full switch and finding CIFAR-10 images."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from metaformer_mini import book

ROOT = Path(__file__).resolve().parent.parent


def test_mode_follows_the_environment_variable(monkeypatch):
    monkeypatch.setenv("METAFORMER_MODE", "full")
    assert book.mode() == "full" and not book.is_quick()
    monkeypatch.setenv("METAFORMER_MODE", " Quick ")
    assert book.mode() == "quick" and book.is_quick()


def test_mode_default_depends_on_cuda(monkeypatch):
    monkeypatch.delenv("METAFORMER_MODE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert book.mode() == "full"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert book.mode() == "quick"
    assert book.device() == torch.device("cpu")


def test_bad_mode_names_the_value(monkeypatch):
    monkeypatch.setenv("METAFORMER_MODE", "fast")
    with pytest.raises(ValueError, match="'fast'.*quick"):
        book.mode()


def test_describe_prints_mode_and_how_to_switch(monkeypatch, capsys):
    monkeypatch.setenv("METAFORMER_MODE", "quick")
    book.describe()
    out = capsys.readouterr().out
    assert "mode:            quick" in out
    assert torch.__version__ in out
    assert "METAFORMER_MODE=quick|full" in out


def test_repo_root_is_this_checkout():
    assert book.repo_root() == ROOT


def _fake_cifar(folder: Path, per_class: int = 3) -> None:
    """Write tiny JPEG folders whose pixel value encodes (class, index)."""
    for label, name in enumerate(["airplane", "bird", "cat"]):
        (folder / "test" / name).mkdir(parents=True)
        for i in range(per_class):
            value = 40 * label + 10 * i
            array = np.full((32, 32, 3), value, dtype=np.uint8)
            Image.fromarray(array).save(folder / "test" / name / f"{i:04d}.jpg", quality=100)


def test_cifar10_dir_prefers_the_environment_variable(monkeypatch, tmp_path):
    _fake_cifar(tmp_path)
    monkeypatch.setenv("METAFORMER_CIFAR10", str(tmp_path))
    assert book.cifar10_dir() == tmp_path


def test_cifar10_dir_rejects_a_folder_without_splits(monkeypatch, tmp_path):
    monkeypatch.setenv("METAFORMER_CIFAR10", str(tmp_path))
    with pytest.raises(ValueError, match="no train/ or test/"):
        book.cifar10_dir()


def test_cifar10_dir_falls_back_to_local_data_then_none(monkeypatch, tmp_path):
    monkeypatch.delenv("METAFORMER_CIFAR10", raising=False)
    monkeypatch.setattr(book, "repo_root", lambda: None)
    monkeypatch.chdir(tmp_path)
    assert book.cifar10_dir() is None
    _fake_cifar(tmp_path / "data" / "cifar10")
    assert book.cifar10_dir() == (tmp_path / "data" / "cifar10").resolve()


def test_cifar10_samples_from_a_folder(monkeypatch, tmp_path):
    _fake_cifar(tmp_path)
    monkeypatch.setenv("METAFORMER_CIFAR10", str(tmp_path))
    images, labels, classes = book.cifar10_samples(9)
    assert classes == ["airplane", "bird", "cat"]
    assert images.dtype == torch.uint8 and images.shape == (9, 3, 32, 32)
    assert sorted(labels.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    # Each image is flat; its value tells which class it was written for (JPEG is near-lossless here).
    values = images.float().mean(dim=(1, 2, 3))
    assert torch.all((values // 40).long() == labels)
    again, again_labels, _ = book.cifar10_samples(9)
    assert torch.equal(images, again) and torch.equal(labels, again_labels)
    other, _, _ = book.cifar10_samples(9, seed=1)
    assert not torch.equal(images, other)


def test_cifar10_samples_rejects_bad_arguments(monkeypatch, tmp_path):
    _fake_cifar(tmp_path)
    monkeypatch.setenv("METAFORMER_CIFAR10", str(tmp_path))
    with pytest.raises(ValueError, match="'val'"):
        book.cifar10_samples(2, split="val")
    with pytest.raises(ValueError, match="n=10 images.*only 9"):
        book.cifar10_samples(10)
    with pytest.raises(ValueError, match="positive int, got 0"):
        book.cifar10_samples(0)


def test_cifar10_samples_from_the_shared_data():
    if book.cifar10_dir() is None:
        pytest.skip("no CIFAR-10 folder beside the repo (expected at ../shared/data/cifar10)")
    images, labels, classes = book.cifar10_samples(4, seed=3)
    assert len(classes) == 10 and classes[0] == "airplane" and classes[-1] == "truck"
    assert images.shape == (4, 3, 32, 32) and images.float().std() > 10
    assert labels.min() >= 0 and labels.max() <= 9


def test_stored_run_seconds_spans_the_first_start_to_the_last_end(tmp_path):
    import nbformat

    def cell(start: str, end: str):
        code = nbformat.v4.new_code_cell("pass")
        code.metadata["execution"] = {"iopub.execute_input": start, "shell.execute_reply": end}
        return code

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 1. T"),
                                         cell("2025-01-01T10:00:00.500Z", "2025-01-01T10:00:01Z"),
                                         nbformat.v4.new_code_cell("never run"),
                                         cell("2025-01-01T10:00:30Z", "2025-01-01T10:01:02.500Z")])
    nbformat.write(nb, tmp_path / "run.ipynb")
    assert book.stored_run_seconds(tmp_path / "run.ipynb") == 62.0
    nb.cells = nb.cells[:1]
    nbformat.write(nb, tmp_path / "run.ipynb")
    assert book.stored_run_seconds(tmp_path / "run.ipynb") is None
    assert book.stored_run_seconds(ROOT / "chapters" / "06_training_cifar10.ipynb") > 0
