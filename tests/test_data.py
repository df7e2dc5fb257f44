"""Tests for metaformer_mini/data.py: layout checks, the CIFAR cache, batch augmentation, ImageNet transforms."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from metaformer_mini import data

CIFAR_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cifar10"


def write_folder(root: Path, splits=("train", "test"), classes=("a", "b"), per_class=2,
                 size=(32, 32), ext="png", seed=0) -> dict:
    """Write an image folder of random images; return {path: uint8 array (H, W, 3)}."""
    rng = np.random.default_rng(seed)
    written = {}
    for split in splits:
        for name in classes:
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                path = root / split / name / f"{i:04d}.{ext}"
                Image.fromarray(pixels).save(path)
                written[path] = pixels
    return written


# --- layout checks -----------------------------------------------------------------------

def test_check_layout_returns_sorted_classes(tmp_path):
    write_folder(tmp_path, classes=("zebra", "ant"))
    assert data.check_layout(tmp_path, ("train", "test"), "L") == ["ant", "zebra"]


def test_missing_data_folder_names_path_and_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nope'}.*expected <layout>"):
        data.check_layout(tmp_path / "nope", ("train",), "<layout>")


def test_missing_split_lists_what_is_there(tmp_path):
    write_folder(tmp_path, splits=("train", "validation"))
    with pytest.raises(FileNotFoundError, match=r"missing split folder .*test.*'validation'"):
        data.check_layout(tmp_path, ("train", "test"), "L")


def test_empty_class_folder_is_named(tmp_path):
    write_folder(tmp_path)
    (tmp_path / "test" / "c").mkdir()
    (tmp_path / "train" / "c").mkdir()
    (tmp_path / "train" / "c" / "x.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match=r"test/c holds no images"):
        data.check_layout(tmp_path, ("train", "test"), "L")


def test_split_without_class_folders(tmp_path):
    write_folder(tmp_path, splits=("train",))
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "img.JPEG").write_bytes(b"")  # the flat val folder of the ImageNet tarball
    with pytest.raises(ValueError, match=r"val has no class folders"):
        data.check_layout(tmp_path, ("train", "val"), "L")


def test_val_classes_differing_from_train(tmp_path):
    write_folder(tmp_path, splits=("train",), classes=("a", "b", "c"))
    write_folder(tmp_path, splits=("val",), classes=("a", "b", "d"))
    with pytest.raises(ValueError, match=r"differ.*only in train: \['c'\], only in val: \['d'\]"):
        data.check_layout(tmp_path, ("train", "val"), "L")


# --- CIFAR-10 decoding and caching ---------------------------------------------------------

def test_decode_folder_gives_exact_pixels_and_labels(tmp_path):
    written = write_folder(tmp_path, classes=("a", "b"), per_class=3)
    images, labels = data.decode_folder(tmp_path / "train", ["a", "b"], size=32, workers=2)
    assert images.dtype == torch.uint8 and images.shape == (6, 3, 32, 32)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    expected = written[tmp_path / "train" / "b" / "0001.png"]
    assert torch.equal(images[4], torch.from_numpy(expected).permute(2, 0, 1))


def test_corrupt_image_names_its_path(tmp_path):
    write_folder(tmp_path)
    bad = tmp_path / "train" / "b" / "0001.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=f"cannot decode image {bad}"):
        data.decode_folder(tmp_path / "train", ["a", "b"], size=32, workers=1)


def test_wrong_image_size_is_named(tmp_path):
    write_folder(tmp_path, size=(32, 30))
    with pytest.raises(ValueError, match=r"0000.png is 32x30, expected 32x32"):
        data.decode_folder(tmp_path / "train", ["a", "b"], size=32, workers=1)


def test_load_cifar10_caches_and_notices_changes(tmp_path, monkeypatch):
    classes = tuple(f"c{i}" for i in range(10))
    write_folder(tmp_path / "d", classes=classes, per_class=1)
    first = data.load_cifar10(tmp_path / "d", "test", cache_dir=tmp_path / "cache")
    cached = data.cifar10_cache_file(tmp_path / "d", "test", cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").glob("cifar10-test-*.pt")) == [cached]

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although the cache is valid")

    monkeypatch.setattr(data, "decode_folder", no_decoding)
    second = data.load_cifar10(tmp_path / "d", "test", cache_dir=tmp_path / "cache")
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "d" / "test" / "c3" / "new.png")
    with pytest.raises(AssertionError, match="decoded again"):  # a new file changes the key
        data.load_cifar10(tmp_path / "d", "test", cache_dir=tmp_path / "cache")
    monkeypatch.undo()
    third = data.load_cifar10(tmp_path / "d", "test", cache_dir=tmp_path / "cache")
    assert len(third[1]) == len(first[1]) + 1
    renewed = data.cifar10_cache_file(tmp_path / "d", "test", cache_dir=tmp_path / "cache")
    assert renewed != cached and list((tmp_path / "cache").glob("cifar10-*.pt")) == [renewed]


def test_load_cifar10_needs_ten_classes(tmp_path):
    write_folder(tmp_path, classes=("a", "b"))
    with pytest.raises(ValueError, match=r"needs 10 class folders.*found 2"):
        data.load_cifar10(tmp_path, "train", cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        data.load_cifar10(tmp_path, "val")


@pytest.mark.skipif(not CIFAR_DIR.is_dir(), reason="CIFAR-10 folder not next to the repo")
def test_real_cifar10_test_split():
    images, labels = data.load_cifar10(CIFAR_DIR, "test")
    assert images.shape == (10000, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.bincount().tolist() == [1000] * 10
    mean = images.float().mean((0, 2, 3)) / 255
    assert torch.allclose(mean, torch.tensor(data.CIFAR10_MEAN), atol=0.01)


# --- batch augmentation ----------------------------------------------------------------

def test_random_crop_flip_takes_windows_of_the_padded_image():
    images = torch.arange(2 * 3 * 6 * 6, dtype=torch.uint8).view(2, 3, 6, 6)
    out = data.random_crop_flip(images, 2, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for i in range(2):
        windows = [padded[i, :, dy:dy + 6, dx:dx + 6] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(-1)) for w in windows)
    no_pad = data.random_crop_flip(images, 0, torch.Generator().manual_seed(1))
    for i in range(2):
        assert torch.equal(no_pad[i], images[i]) or torch.equal(no_pad[i], images[i].flip(-1))


def test_random_crop_flip_flips_about_half():
    images = torch.arange(32, dtype=torch.uint8).repeat(400, 3, 32, 1)
    out = data.random_crop_flip(images, 0, torch.Generator().manual_seed(0))
    flipped = (out[:, 0, 0, 0] == 31).float().mean().item()
    assert 0.4 < flipped < 0.6


def test_cifar_batches_cover_each_image_once_and_normalize():
    labels = torch.arange(100)
    images = torch.full((100, 3, 8, 8), 128, dtype=torch.uint8)
    train = data.CifarBatches(images, labels, 16, train=True, seed=3)
    train.set_epoch(0)
    seen = torch.cat([y for _, y in train])
    assert len(train) == 6 and len(seen) == 96 and len(set(seen.tolist())) == 96
    train.set_epoch(1)
    assert not torch.equal(seen, torch.cat([y for _, y in train]))  # reshuffled
    shards = [data.CifarBatches(images, labels, 16, train=False, rank=r, world=2) for r in (0, 1)]
    ys = torch.cat([y for s in shards for _, y in s])
    assert sorted(ys.tolist()) == list(range(100))
    x, _ = next(iter(shards[0]))
    expected = (128 - 255 * torch.tensor(data.CIFAR10_MEAN)) / (255 * torch.tensor(data.CIFAR10_STD))
    assert torch.allclose(x[0, :, 3, 3], expected)


def test_cifar_batches_resize_for_progressive_training():
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    batches = data.CifarBatches(images, torch.zeros(8, dtype=torch.long), 4, train=True,
                                channels_last=True)
    batches.set_epoch(0)
    batches.size = 16
    x, _ = next(iter(batches))
    assert x.shape == (4, 3, 16, 16) and x.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cifar_batches_on_a_gpu_never_wait_for_it():
    """After an epoch's first batch (which copies the order once), no batch synchronizes."""
    images = torch.randint(0, 256, (256, 3, 32, 32), dtype=torch.uint8)
    batches = data.CifarBatches(images, torch.arange(256) % 10, 32, train=True, device="cuda",
                                padding=4, channels_last=True)
    batches.set_epoch(0)
    stream = iter(batches)
    next(stream)
    torch.cuda.set_sync_debug_mode("error")  # a synchronizing call raises
    try:
        rest = [x for x, _ in stream]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(rest) == len(batches) - 1 and rest[0].device.type == "cuda"


# --- ImageNet folders -----------------------------------------------------------------

def test_imagenet_eval_transform_resizes_then_center_crops():
    # a 100x50 image whose left half is black and right half white
    pixels = np.zeros((50, 100, 3), np.uint8)
    pixels[:, 50:] = 255
    t = data.imagenet_transform(False, img_size=32, crop_pct=0.8)
    x = t(Image.fromarray(pixels))
    assert x.shape == (3, 32, 32)  # short side resized to 32 / 0.8 = 40, then a 32x32 crop
    mean, std = torch.tensor(data.IMAGENET_MEAN), torch.tensor(data.IMAGENET_STD)
    assert torch.allclose(x[:, 0, 0], -mean / std, atol=1e-3)
    assert torch.allclose(x[:, 31, 31], (1 - mean) / std, atol=1e-3)


def test_imagenet_train_transform_makes_varied_crops():
    t = data.imagenet_transform(True, img_size=24)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8))
    torch.manual_seed(0)
    a, b = t(image), t(image)
    assert a.shape == b.shape == (3, 24, 24) and a.dtype == torch.float32
    assert not torch.equal(a, b)


def test_mixup_cutmix_gives_soft_labels():
    assert data.mixup_cutmix(5, 0.0, 0.0) is None
    mix = data.mixup_cutmix(5, 0.8, 1.0)
    x, y = mix(torch.rand(8, 3, 16, 16), torch.arange(8) % 5)
    assert y.shape == (8, 5)
    assert torch.allclose(y.sum(1), torch.ones(8))
    assert (y.max(1).values < 1).any()  # some labels are mixed


def test_imagenet_datasets_and_corrupt_image(tmp_path):
    write_folder(tmp_path, splits=("train", "val"), classes=("n01", "n02"), size=(40, 30), ext="jpg")
    train, val, classes = data.imagenet_datasets(tmp_path, img_size=16, crop_pct=0.9)
    assert classes == ["n01", "n02"] and len(train) == len(val) == 4
    x, y = val[3]
    assert x.shape == (3, 16, 16) and y == 1
    bad = tmp_path / "val" / "n02" / "0001.jpg"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated
    with pytest.raises(ValueError, match=f"cannot read image {bad}"):
        val[3]


def test_imagenet_val_dataset_accepts_root_or_val(tmp_path):
    write_folder(tmp_path, splits=("val",), classes=("n01", "n02", "n03"), size=(20, 20), ext="jpg")
    assert len(data.imagenet_val_dataset(tmp_path, img_size=16)) == 6
    assert len(data.imagenet_val_dataset(tmp_path / "val", img_size=16)) == 6
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.imagenet_val_dataset(tmp_path / "missing")


def test_cifar_batches_randaugment_changes_pixels_not_labels():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(32)
    plain = data.CifarBatches(images, labels, 32, train=True, padding=0)
    augmented = data.CifarBatches(images, labels, 32, train=True, padding=0, rand_magnitude=9)
    for b in (plain, augmented):
        b.set_epoch(0)
    (x0, y0), (x1, y1) = next(iter(plain)), next(iter(augmented))
    assert torch.equal(y0, y1) and x1.shape == x0.shape
    assert not torch.allclose(x0, x1)


IMAGES, LABELS = torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.arange(4)


@pytest.mark.parametrize("call, message", [
    (lambda: data.worker_count(-1), "workers must be 0 or more, got -1"),
    (lambda: data.decode_folder(Path("unused"), [], workers=0), "workers must be 1 or more, got 0"),
    (lambda: data.decode_folder(Path("unused"), [], size=0), "size must be 1 or more, got 0"),
    (lambda: data.random_crop_flip(IMAGES, -1, torch.Generator()), "padding must be 0 or more, got -1"),
    (lambda: data.CifarBatches(IMAGES, LABELS, 0, train=True), "batch_size must be 1 or more, got 0"),
    (lambda: next(iter(data.CifarBatches(IMAGES, LABELS, 2, train=True, padding=-2))),
     "padding must be 0 or more, got -2"),
    (lambda: data.CifarBatches(IMAGES, LABELS, 2, train=True, rand_magnitude=31),
     r"rand_magnitude must be in \[0, 30\], got 31"),
    (lambda: data.imagenet_transform(False, img_size=0), "img_size must be 1 or more, got 0"),
    (lambda: data.imagenet_transform(False, crop_pct=0.0), r"crop_pct must be in \(0, 1\], got 0.0"),
    (lambda: data.imagenet_transform(True, rand_magnitude=-1), r"rand_magnitude must be in \[0, 30\], got -1"),
    (lambda: data.imagenet_transform(True, color_jitter=-0.4), "color_jitter must be 0 or more, got -0.4"),
    (lambda: data.imagenet_transform(True, erase_prob=1.5), r"erase_prob must be in \[0, 1\], got 1.5"),
    (lambda: data.mixup_cutmix(0, 0.8, 1.0), "num_classes must be 1 or more, got 0"),
    (lambda: data.mixup_cutmix(10, -0.8, 1.0), "mixup must be 0 or more, got -0.8"),
    (lambda: data.mixup_cutmix(10, 0.8, -1.0), "cutmix must be 0 or more, got -1.0"),
    (lambda: data.random_subset(IMAGES, LABELS, -1, seed=0), "count must be 0 or more, got -1"),
])
def test_out_of_range_arguments_name_the_argument_value_and_range(call, message):
    with pytest.raises(ValueError, match=message):
        call()
