"""Tests for metaformer_mini/export.py: ONNX Runtime gives torch's logits, int8 weights, clear refusals."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from metaformer_mini import book
from metaformer_mini import export as ex
from metaformer_mini.data import CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD
from metaformer_mini.experiments import default_checkpoint_dir, get_row, read_suite_checkpoint
from metaformer_mini.registry import create_model

ort = pytest.importorskip("onnxruntime")
SAMPLES = Path(__file__).resolve().parent.parent / "book" / "_static" / "tryit" / "samples"


def samples() -> tuple[np.ndarray, list[dict]]:
    """Return the page's bundled CIFAR-10 test images as float (N, 3, 32, 32) in [0, 1], and their index."""
    index = json.loads((SAMPLES / ex.SAMPLES_INDEX).read_text())
    images = [np.asarray(Image.open(SAMPLES / s["file"]).convert("RGB")) for s in index]
    return np.stack(images).transpose(0, 3, 1, 2).astype(np.float32) / 255, index


def suite_model(row: str) -> tuple[torch.nn.Module, bool]:
    """Return (the row's committed checkpoint model, True), or (a freshly built model of the row, False)."""
    path = default_checkpoint_dir() / f"{row}.pt"
    if path.is_file():
        return read_suite_checkpoint(path)[0], True
    torch.manual_seed(0)
    return create_model(get_row(row).model).eval(), False


@pytest.fixture(scope="module", params=["pooling", "identity", "attention", "random"])
def exported(request, tmp_path_factory):
    """(row, torch model, whether it is trained, ONNX Runtime session) for one suite row."""
    model, trained = suite_model(request.param)
    path = tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx"
    ex.export_onnx(model, path)
    return request.param, model, trained, ort.InferenceSession(str(path))


def test_onnxruntime_gives_torch_logits_on_cifar10_test_images(exported):
    row, model, _, session = exported
    images, index = samples()
    normalized = (torch.from_numpy(images) - torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)) / (
        torch.tensor(CIFAR10_STD).view(1, 3, 1, 1))
    with torch.no_grad():
        expected = model(normalized).numpy()
    got = np.concatenate([session.run(["logits"], {"image": image[None]})[0] for image in images])
    assert np.abs(got - expected).max() < 1e-4, f"{row}: onnxruntime and torch logits differ"
    assert len(index) >= 20 and {s["class"] for s in index} == set(CIFAR10_CLASSES)


def test_mixer_outputs_are_the_stage1_token_grid_around_the_mixer(exported):
    row, model, _, session = exported
    image = samples()[0][:1]
    tokens, mixed = session.run(["mixer_input", "mixer_output"], {"image": image})
    grid = model.config.grids[0]
    assert tokens.shape == mixed.shape == (1, model.config.dims[0], grid, grid)
    mixer = model.stages[0].blocks[0].token_mixer
    with torch.no_grad():
        expected = mixer(torch.from_numpy(tokens)).numpy()
    assert np.abs(mixed - expected).max() < 1e-4
    if row == "pooling":  # eq. (4): AvgPool(x) - x, padding not counted
        x = torch.from_numpy(tokens)
        pooled = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        assert np.abs(mixed - (pooled - x).numpy()).max() < 1e-5
    if row == "identity":
        assert np.array_equal(mixed, tokens)


def test_a_checkpoints_weights_stay_int8_in_the_file(exported, tmp_path):
    _, model, trained, _ = exported
    params = sum(p.numel() for p in model.parameters())
    path = tmp_path / "model.onnx"
    size = ex.export_onnx(model, path)
    if trained:
        assert size < 1.2 * params, f"{size} bytes for {params} int8 weights"
    else:
        assert size > 4 * params * 0.9, "a model that was never quantized must stay fp32"


def test_store_int8_finds_the_axis_and_rebuilds_the_exact_weight():
    rng = np.random.default_rng(0)
    q = rng.integers(-127, 128, size=(6, 5)).astype(np.float32)
    q[:, 0] = 127  # each output channel reaches the end of the int8 range, as quantize_weights' do
    scale = rng.uniform(1e-3, 1e-2, size=6).astype(np.float32)
    weight = (q * scale[:, None]).astype(np.float32)
    assert ex._int8_axis(weight) == 0
    assert ex._int8_axis(np.ascontiguousarray(weight.T)) == 1
    assert ex._int8_axis(rng.normal(size=(6, 5)).astype(np.float32)) is None


def test_a_fixed_grid_mixer_at_another_size_is_refused(tmp_path):
    model = create_model("cifar_mlpformer")
    with pytest.raises(ValueError, match="spatial_mlp mixer has weights for the token grid of a 32x32"):
        ex.export_onnx(model, tmp_path / "m.onnx", img_size=64)
    with pytest.raises(ValueError, match="too small"):
        ex.export_onnx(create_model("cifar_poolformer"), tmp_path / "m.onnx", img_size=4)
    with pytest.raises(TypeError, match="expected a metaformer_mini MetaFormer"):
        ex.export_onnx(torch.nn.Linear(3, 3), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_pooling_exports_at_another_size(tmp_path):
    torch.manual_seed(0)
    model = create_model("cifar_poolformer").eval()
    path = tmp_path / "m.onnx"
    ex.export_onnx(model, path, img_size=48)
    image = np.random.default_rng(0).random((1, 3, 48, 48), dtype=np.float32)
    logits, tokens, _ = ort.InferenceSession(str(path)).run(None, {"image": image})
    assert logits.shape == (1, 10) and tokens.shape[-1] == 24


def test_page_rows_are_suite_rows_and_the_manifest_keeps_the_size_limit(tmp_path):
    assert ex.PAGE_ROWS[0] == "pooling" and all(get_row(row) for row in ex.PAGE_ROWS)
    found = ex.page_checkpoints(tmp_path)
    assert found == []
    for row in ("identity", "pooling"):
        (tmp_path / f"{row}.pt").write_bytes(b"")
    assert [p.stem for p in ex.page_checkpoints(tmp_path)] == ["pooling", "identity"]
    manifest = json.loads(ex.write_manifest(tmp_path, [{"row": "pooling", "bytes": 1000}]).read_text())
    assert manifest["classes"] == list(CIFAR10_CLASSES) and manifest["input"]["mean"] == list(CIFAR10_MEAN)
    with pytest.raises(ValueError, match="over its 8 MB"):
        ex.write_manifest(tmp_path, [{"row": "pooling", "bytes": 9_000_000}])


def test_the_cli_exports_a_checkpoint(tmp_path, capsys):
    path = default_checkpoint_dir() / "pooling.pt"
    if not path.is_file():
        pytest.skip("no committed pooling checkpoint")
    ex.main([str(path), "-o", str(tmp_path / "p.onnx")])
    assert "row pooling" in capsys.readouterr().out and (tmp_path / "p.onnx").is_file()
    with pytest.raises(SystemExit):
        ex.main([])
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "pooling.pt").write_bytes(path.read_bytes())
    ex.main(["--page", str(tmp_path / "page"), "--checkpoint-dir", str(tmp_path / "checkpoints")])
    manifest = json.loads((tmp_path / "page" / ex.MANIFEST).read_text())
    assert [m["row"] for m in manifest["models"]] == ["pooling"] and (tmp_path / "page" / "pooling.onnx").is_file()


@pytest.mark.skipif(book.cifar10_dir() is None, reason="no CIFAR-10 folder")
def test_the_bundled_samples_are_the_test_images_they_name(tmp_path):
    index = json.loads((SAMPLES / ex.SAMPLES_INDEX).read_text())
    for sample in index:
        source = np.asarray(Image.open(book.cifar10_dir() / sample["source"]).convert("RGB"))
        assert np.array_equal(np.asarray(Image.open(SAMPLES / sample["file"])), source), sample["file"]
        assert CIFAR10_CLASSES[sample["label"]] == sample["class"]
    with pytest.raises(FileNotFoundError, match="expected CIFAR-10 test images"):
        ex.write_samples(tmp_path, tmp_path / "out")


@pytest.mark.parametrize("call, message", [
    (lambda path: ex.export_onnx(create_model("cifar_poolformer"), path, img_size=0), "img_size=0 is too small"),
    (lambda path: ex.export_onnx(create_model("cifar_poolformer"), path, std=(0.25, 0.0, 0.25)),
     r"std\[1\] must be positive, got 0.0"),
    (lambda path: ex.write_samples(path, path, per_class=0), "per_class must be 1 or more, got 0"),
])
def test_out_of_range_arguments_name_the_argument_value_and_range(tmp_path, call, message):
    with pytest.raises(ValueError, match=message):
        call(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
