"""Training data: CIFAR-10 as cached uint8 tensors, ImageNet-1K image folders with the paper's recipe.

CIFAR-10 is small enough to live in memory: the 60k JPEGs are decoded once into a uint8 tensor
cache on disk, and :class:`CifarBatches` augments whole batches (random crop with padding,
horizontal flip) on the training device, so a 2-core CPU spends its time in the model.
ImageNet-1K goes through ``torchvision.datasets.ImageFolder`` and ``transforms.v2`` with the
recipe of the PoolFormer paper (Appendix A, the DeiT recipe).
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, DistributedSampler
from torchvision.transforms import v2
from tqdm.auto import tqdm

from ._io import atomic_write
from ._names import check_range
from .configs import RANGES, TrainConfig

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".JPEG")
CIFAR_LAYOUT = "<data-dir>/{train,test}/<class>/*.jpg (10 class folders of 32x32 images)"
IMAGENET_LAYOUT = "<data-dir>/{train,val}/<class>/*.JPEG (the same class folders in both splits)"


def default_cache_dir() -> Path:
    """Return where decoded datasets are cached: $METAFORMER_CACHE or ~/.cache/metaformer_mini."""
    return Path(os.environ.get("METAFORMER_CACHE", Path.home() / ".cache" / "metaformer_mini"))


# --- layout checks ------------------------------------------------------------------------

def worker_count(wanted: int) -> int:
    """Return ``wanted`` DataLoader workers, at most one per CPU core."""
    check_range("workers", wanted, "[0, inf)")
    return min(wanted, os.cpu_count() or 1)


def list_images(class_dir: Path) -> list[Path]:
    """Return the image files of one class folder, sorted by name."""
    return sorted(p for p in class_dir.iterdir() if p.suffix in IMAGE_EXTENSIONS or
                  p.suffix.lower() in IMAGE_EXTENSIONS)


def check_layout(root: str | os.PathLike, splits: Sequence[str], layout: str) -> list[str]:
    """Return the class names of an image-folder dataset after checking its layout.

    Raises FileNotFoundError for a missing folder and ValueError for a split without class
    folders, an empty class, or splits whose classes differ; each message names the path and
    the expected ``layout``.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist; expected {layout}")
    classes: dict[str, list[str]] = {}
    for split in splits:
        split_dir = root / split
        if not split_dir.is_dir():
            found = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise FileNotFoundError(f"missing split folder {split_dir} (found folders: {found}); "
                                    f"expected {layout}")
        names = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
        if not names:
            raise ValueError(f"{split_dir} has no class folders; expected {layout}")
        for name in names:
            if not list_images(split_dir / name):
                raise ValueError(f"class folder {split_dir / name} holds no images "
                                 f"({', '.join(IMAGE_EXTENSIONS[:5])}); expected {layout}")
        classes[split] = names
    first, *rest = splits
    for split in rest:
        if classes[split] != classes[first]:
            only_first = sorted(set(classes[first]) - set(classes[split]))[:5]
            only_other = sorted(set(classes[split]) - set(classes[first]))[:5]
            raise ValueError(
                f"the classes of {root / split} differ from those of {root / first}: "
                f"only in {first}: {only_first}, only in {split}: {only_other} "
                f"({len(classes[first])} vs {len(classes[split])} classes); both splits need "
                f"the same class folders ({layout}). A flat val folder with a label file "
                f"must first be sorted into class folders.")
    return classes[first]


# --- CIFAR-10: decode once, cache uint8 tensors --------------------------------------------

def _decode(path: Path, size: Optional[int]) -> torch.Tensor:
    try:
        with Image.open(path) as image:
            pixels = np.array(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as err:  # PIL's errors for broken files
        raise ValueError(f"cannot decode image {path} ({err}); replace or delete it") from None
    if size is not None and pixels.shape[:2] != (size, size):
        raise ValueError(f"image {path} is {pixels.shape[1]}x{pixels.shape[0]}, expected "
                         f"{size}x{size} like every CIFAR-10 image")
    return torch.from_numpy(pixels).permute(2, 0, 1)


def decode_folder(split_dir: Path, classes: Sequence[str], size: Optional[int] = None,
                  workers: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (uint8 images (N, 3, H, W), int64 labels (N,)) decoded from ``split_dir/<class>/*``."""
    check_range("workers", workers, "[1, inf)")
    if size is not None:
        check_range("size", size, "[1, inf)")
    files = [(path, label) for label, name in enumerate(classes)
             for path in list_images(split_dir / name)]
    with ThreadPoolExecutor(workers) as pool:  # PIL's decoders release the GIL
        images = list(tqdm(pool.map(lambda f: _decode(f[0], size), files, chunksize=256),
                           total=len(files), desc=f"decoding {split_dir}", unit="img"))
    return torch.stack(images), torch.tensor([label for _, label in files])


def _cache_file(split_dir: Path, classes: Sequence[str], cache_dir: Optional[str | os.PathLike]) -> Path:
    """Return the cache file of a split folder: ``cifar10-<split>-<path hash>-<contents hash>.pt``.

    The contents hash fingerprints the class folders' file counts and modification times, so an
    edit makes a new file; the path hash names the folder, so the new file can replace the old.
    """
    folder = hashlib.sha1(str(split_dir.resolve()).encode()).hexdigest()[:8]
    contents = hashlib.sha1()
    for name in classes:
        d = split_dir / name
        contents.update(f"{name}:{len(list_images(d))}:{d.stat().st_mtime_ns}".encode())
    name = f"cifar10-{split_dir.name}-{folder}-{contents.hexdigest()[:12]}.pt"
    return Path(cache_dir or default_cache_dir()).expanduser() / name


def cifar10_cache_file(data_dir: str | os.PathLike, split: str,
                       cache_dir: Optional[str | os.PathLike] = None) -> Path:
    """Return the file in which :func:`load_cifar10` caches ``split`` of the image folder ``data_dir``."""
    classes = check_layout(data_dir, ("train", "test"), CIFAR_LAYOUT)
    return _cache_file(Path(data_dir).expanduser() / split, classes, cache_dir)


def load_cifar10(data_dir: Optional[str | os.PathLike], split: str,
                 cache_dir: Optional[str | os.PathLike] = None,
                 download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Return CIFAR-10 ``split`` ('train' or 'test') as (uint8 (N, 3, 32, 32), int64 (N,)).

    Reads ``data_dir/{train,test}/<class>/*.jpg`` (decoded once, then cached under
    ``cache_dir``), or with ``download=True`` torchvision's CIFAR10 archive into ``data_dir``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if download:
        from torchvision.datasets import CIFAR10
        root = Path(data_dir or default_cache_dir() / "cifar10-download").expanduser()
        ds = CIFAR10(str(root), train=split == "train", download=True)
        return torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets)
    if data_dir is None:
        raise ValueError("give data_dir (a folder laid out as " + CIFAR_LAYOUT + ") or download=True")
    classes = check_layout(data_dir, ("train", "test"), CIFAR_LAYOUT)
    if len(classes) != 10:
        raise ValueError(f"CIFAR-10 needs 10 class folders in {Path(data_dir) / split}, found "
                         f"{len(classes)}: {classes}; expected {CIFAR_LAYOUT}")
    split_dir = Path(data_dir).expanduser() / split
    cache = _cache_file(split_dir, classes, cache_dir)
    if cache.exists():
        data = torch.load(cache)
        return data["images"], data["labels"]
    images, labels = decode_folder(split_dir, classes, size=32)
    atomic_write(cache, lambda f: torch.save({"images": images, "labels": labels, "classes": classes}, f))
    for stale in cache.parent.glob(cache.name.rsplit("-", 1)[0] + "-*.pt"):  # the folder's old copies
        if stale != cache:
            stale.unlink(missing_ok=True)
    return images, labels


def random_crop_flip(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Return a batch (B, C, H, W) randomly cropped from its zero-padded self and flipped half the time.

    ``generator`` lives on the images' device, so that the offsets are drawn there: a GPU batch
    then needs no copy from the host, which would make the CPU wait for the GPU's queued work.
    """
    check_range("padding", padding, "[0, inf)")
    b, c, h, w = images.shape
    padded = F.pad(images, (padding,) * 4)
    dev = images.device
    dy = torch.randint(0, 2 * padding + 1, (b, 1), generator=generator, device=dev)
    dx = torch.randint(0, 2 * padding + 1, (b, 1), generator=generator, device=dev)
    flip = torch.rand(b, 1, generator=generator, device=dev) < 0.5
    cols = torch.arange(w, device=dev)
    cols = torch.where(flip, w - 1 - cols, cols) + dx  # flipping = reading the columns backwards
    rows = torch.arange(h, device=dev) + dy
    batch = torch.arange(b, device=dev)[:, None, None, None]
    chans = torch.arange(c, device=dev)[None, :, None, None]
    return padded[batch, chans, rows[:, None, :, None], cols[:, None, None, :]]


class CifarBatches:
    """Batches of in-memory images, (float (B, 3, S, S) normalized, int64 (B,)), on ``device``.

    Training batches are shuffled per epoch through a ``DistributedSampler`` (one shard per
    process under torchrun), optionally RandAugment-ed (one random policy per 16 images),
    cropped with ``padding`` and flipped; ``size`` below the stored resolution resizes them
    (progressive resizing). Test batches cover this process's shard (``rank::world``) once, in
    order.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, train: bool,
                 device: torch.device | str = "cpu", rank: int = 0, world: int = 1,
                 seed: int = 0, padding: int = 4, channels_last: bool = False,
                 rand_magnitude: int = 0):
        check_range("batch_size", batch_size, "[1, inf)")  # padding: random_crop_flip checks it
        check_range("rand_magnitude", rand_magnitude, RANGES["rand_magnitude"])
        self.images, self.labels = images.to(device), labels.to(device)
        self.batch_size, self.train, self.padding = batch_size, train, padding
        self.randaugment = v2.RandAugment(num_ops=2, magnitude=rand_magnitude) if rand_magnitude else None
        self.device, self.rank, self.world = torch.device(device), rank, world
        self.channels_last = channels_last
        self.size = images.shape[-1]
        self.sampler = DistributedSampler(range(len(labels)), num_replicas=world, rank=rank,
                                          shuffle=True, seed=seed, drop_last=True) if train else None
        self.generator = torch.Generator(self.device).manual_seed(seed * 1000 + rank)
        self.mean = torch.tensor(CIFAR10_MEAN, device=device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(CIFAR10_STD, device=device).view(1, 3, 1, 1) * 255

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for ``epoch`` (the same order on every process and after a resume)."""
        self.sampler.set_epoch(epoch)
        self.generator.manual_seed(epoch * 7919 + self.rank)

    def __len__(self) -> int:
        if self.train:
            return len(self.sampler) // self.batch_size
        return -(-len(range(self.rank, len(self.labels), self.world)) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # the epoch's order goes to the device once: a copy per batch would stall a GPU each time
        order = (torch.tensor(list(self.sampler), device=self.device) if self.train
                 else torch.arange(self.rank, len(self.labels), self.world, device=self.device))
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x, y = self.images[idx], self.labels[idx]
            if self.train:
                if self.randaugment is not None:
                    x = torch.cat([self.randaugment(chunk) for chunk in x.split(16)])
                x = random_crop_flip(x, self.padding, self.generator)
            x = (x.float() - self.mean) / self.std
            if self.size != x.shape[-1]:
                x = F.interpolate(x, size=(self.size, self.size), mode="bilinear",
                                  antialias=True, align_corners=False)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y


# --- ImageNet-1K: image folders and the paper's transforms ---------------------------------

def imagenet_transform(train: bool, img_size: int = 224, crop_pct: float = 0.9,
                       rand_magnitude: int = 9, color_jitter: float = 0.4,
                       erase_prob: float = 0.25) -> v2.Compose:
    """Return the paper's train augmentation or eval preprocessing as a ``transforms.v2`` pipeline.

    Train: RandomResizedCrop, flip, RandAugment(m9), ColorJitter, RandomErasing. timm's
    ``rand-m9-mstd0.5`` also draws the magnitude per op from N(9, 0.5); torchvision's RandAugment
    has a fixed magnitude, so this uses m9 without the jitter (a close, not exact, match).
    Eval: resize the short side to ``img_size / crop_pct``, center crop ``img_size``.
    """
    for name, value, interval in (
            ("img_size", img_size, "[1, inf)"), ("crop_pct", crop_pct, "(0, 1]"),
            ("rand_magnitude", rand_magnitude, RANGES["rand_magnitude"]),
            ("color_jitter", color_jitter, "[0, inf)"), ("erase_prob", erase_prob, "[0, 1]")):
        check_range(name, value, interval)
    to_float = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if not train:
        return v2.Compose([v2.ToImage(), v2.Resize(int(img_size / crop_pct), antialias=True),
                           v2.CenterCrop(img_size), *to_float])
    ops = [v2.ToImage(), v2.RandomResizedCrop(img_size, antialias=True), v2.RandomHorizontalFlip()]
    if rand_magnitude:
        ops.append(v2.RandAugment(num_ops=2, magnitude=rand_magnitude))
    if color_jitter:
        ops.append(v2.ColorJitter(color_jitter, color_jitter, color_jitter))
    ops += to_float
    if erase_prob:
        ops.append(v2.RandomErasing(erase_prob, value=0))
    return v2.Compose(ops)


def mixup_cutmix(num_classes: int, mixup: float, cutmix: float) -> Optional[Callable]:
    """Return a batch transform that applies MixUp(alpha=mixup) or CutMix(alpha=cutmix), half the time each.

    The returned callable maps (images, int labels) to (mixed images, soft labels (B, K)); None
    when both alphas are 0.
    """
    check_range("num_classes", num_classes, "[1, inf)")
    check_range("mixup", mixup, "[0, inf)")
    check_range("cutmix", cutmix, "[0, inf)")
    choices = []
    if mixup > 0:
        choices.append(v2.MixUp(alpha=mixup, num_classes=num_classes))
    if cutmix > 0:
        choices.append(v2.CutMix(alpha=cutmix, num_classes=num_classes))
    if not choices:
        return None
    return choices[0] if len(choices) == 1 else v2.RandomChoice(choices)


class _CheckedImageFolder:
    """Wraps ImageFolder so that a corrupt image raises an error naming its path."""

    def __init__(self, root: Path, transform: Callable):
        from torchvision.datasets import ImageFolder
        self.folder = ImageFolder(str(root), transform=transform)
        self.classes = self.folder.classes

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, i: int):
        try:
            return self.folder[i]
        except (OSError, SyntaxError, ValueError) as err:  # PIL's errors for broken files
            raise ValueError(f"cannot read image {self.folder.samples[i][0]} ({err}); "
                             f"replace or delete it") from None


def imagenet_datasets(data_dir: str | os.PathLike, img_size: int = 224, crop_pct: float = 0.9,
                      **augment) -> tuple[_CheckedImageFolder, _CheckedImageFolder, list[str]]:
    """Return (train, val, classes) for ``data_dir/{train,val}/<class>/*`` after checking the layout."""
    classes = check_layout(data_dir, ("train", "val"), IMAGENET_LAYOUT)
    root = Path(data_dir).expanduser()
    train = _CheckedImageFolder(root / "train", imagenet_transform(True, img_size, crop_pct, **augment))
    val = _CheckedImageFolder(root / "val", imagenet_transform(False, img_size, crop_pct))
    return train, val, classes


def imagenet_val_dataset(data_dir: str | os.PathLike, img_size: int = 224,
                         crop_pct: float = 0.9) -> _CheckedImageFolder:
    """Return the eval-preprocessed val split of an ImageNet folder (``data_dir/val`` or ``data_dir`` itself)."""
    root = Path(data_dir).expanduser()
    if (root / "val").is_dir():
        root = root / "val"
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist; expected {IMAGENET_LAYOUT}")
    check_layout(root.parent, (root.name,), IMAGENET_LAYOUT)
    return _CheckedImageFolder(root, imagenet_transform(False, img_size, crop_pct))


# --- a config's batches: train and test splits, subsets, shards ----------------------------

def random_subset(images: torch.Tensor, labels: torch.Tensor, count: int,
                  seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``count`` random (image, label) pairs, the same ones for the same seed; all when count is 0."""
    check_range("count", count, "[0, inf)")
    if not count:
        return images, labels
    keep = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:count]
    return images[keep], labels[keep]


class LoaderBatches:
    """A DataLoader over an image folder with a DistributedSampler, yielding batches on ``device``."""

    def __init__(self, dataset: Any, batch_size: int, config: TrainConfig, device: torch.device,
                 rank: int = 0, world: int = 1):
        self.sampler = DistributedSampler(dataset, world, rank, shuffle=True, seed=config.seed,
                                          drop_last=True)
        workers = worker_count(config.workers)
        self.loader = DataLoader(dataset, batch_size, sampler=self.sampler, drop_last=True,
                                 num_workers=workers, pin_memory=device.type == "cuda",
                                 persistent_workers=workers > 0)
        self.device, self.channels_last = device, config.channels_last
        self.size = config.img_size

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self.loader:
            x = x.to(self.device, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y.to(self.device, non_blocking=True)


def test_batches(config: TrainConfig, data_dir: Optional[str | os.PathLike], device: torch.device,
                 rank: int = 0, world: int = 1, batch_size: int = 500) -> Iterable:
    """Return the test batches of a config's dataset (this process's shard under torchrun)."""
    if config.dataset == "cifar10":
        images, labels = load_cifar10(data_dir, "test", download=config.download)
        images, labels = random_subset(images, labels, config.test_subset, seed=0)
        return CifarBatches(images, labels, batch_size, train=False, device=device, rank=rank,
                            world=world, channels_last=config.channels_last)
    val = imagenet_val_dataset(data_dir, config.img_size, config.crop_pct)
    shard = torch.utils.data.Subset(val, range(rank, len(val), world))
    return DataLoader(shard, batch_size=batch_size, num_workers=worker_count(config.workers),
                      pin_memory=device.type == "cuda")


def train_and_test_batches(config: TrainConfig, data_dir: Optional[str | os.PathLike],
                           device: torch.device, micro_batch: int, rank: int = 0,
                           world: int = 1) -> tuple[Any, Iterable, int]:
    """Return (train batches of ``micro_batch`` images, test batches, number of classes) for this process."""
    if config.dataset == "cifar10":
        for turn in (0, 1):  # rank 0 decodes and caches first, the others then read the cache
            if (rank == 0) == (turn == 0):
                images, labels = load_cifar10(data_dir, "train", download=config.download)
                test = test_batches(config, data_dir, device, rank, world)
            if world > 1:
                dist.barrier()
        images, labels = random_subset(images, labels, config.train_subset, seed=config.seed)
        train = CifarBatches(images, labels, micro_batch, train=True, device=device, rank=rank,
                             world=world, seed=config.seed, padding=config.crop_padding,
                             channels_last=config.channels_last,
                             rand_magnitude=config.rand_magnitude)
        return train, test, 10
    if config.progressive_start:
        raise ValueError("progressive_start works with cifar10 only; set it to 0 for image folders")
    if data_dir is None:
        raise ValueError("the imagenet dataset needs --data-dir (a folder with train/ and val/)")
    train_set, _, classes = imagenet_datasets(
        data_dir, config.img_size, config.crop_pct, rand_magnitude=config.rand_magnitude,
        color_jitter=config.color_jitter, erase_prob=config.random_erasing)
    train = LoaderBatches(train_set, micro_batch, config, device, rank, world)
    test = test_batches(config, data_dir, device, rank, world, batch_size=max(micro_batch, 32))
    return train, test, len(classes)
