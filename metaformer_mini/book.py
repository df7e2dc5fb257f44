"""What the book's chapters need around the model: the quick/full switch and where the images are.

Every chapter runs in two modes, picked by the environment variable ``METAFORMER_MODE``:
``quick`` (small sizes, about a minute per chapter on a laptop CPU; what the tests run) or
``full`` (the real sizes, meant for a GPU). Unset, it is ``full`` when a CUDA GPU is present and
``quick`` otherwise.
"""
from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Optional

import torch

MODES = ("quick", "full")
MODE_VARIABLE = "METAFORMER_MODE"
CIFAR10_VARIABLE = "METAFORMER_CIFAR10"


def mode() -> str:
    """Return ``"quick"`` or ``"full"``: $METAFORMER_MODE, else full with a CUDA GPU, else quick."""
    value = os.environ.get(MODE_VARIABLE, "").strip().lower()
    if not value:
        return "full" if torch.cuda.is_available() else "quick"
    if value not in MODES:
        raise ValueError(f"{MODE_VARIABLE}={os.environ[MODE_VARIABLE]!r} is not a mode; "
                         f"expected one of {MODES} (or unset)")
    return value


def is_quick() -> bool:
    """Return True in quick mode (small sizes for a CPU), False in full mode."""
    return mode() == "quick"


def device() -> torch.device:
    """Return the device the chapters compute on: cuda if available, else cpu."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe() -> None:
    """Print the mode, the device, the library versions and how to switch mode."""
    from . import __version__

    dev = device()
    where = f"{dev} ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else str(dev)
    print(f"mode:            {mode()}  ({MODE_VARIABLE}={os.environ.get(MODE_VARIABLE, '<unset>')})")
    print(f"device:          {where}")
    print(f"torch:           {torch.__version__}")
    print(f"metaformer_mini: {__version__}")
    print(f"switch:          {MODE_VARIABLE}=quick|full before starting Jupyter, or in a cell")
    print(f"                 os.environ['{MODE_VARIABLE}'] = 'full', then re-run the chapter")


def repo_root() -> Optional[Path]:
    """Return the root of the metaformer-mini checkout this package runs from, or None if installed."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "chapters").is_dir():
        return root
    return None


def results_dir() -> Path:
    """Return the folder of committed results: the checkout's ``results/``, or the installed copy's.

    An installed package (pip from git, Colab) carries the same files as ``metaformer_mini/results``
    (``pyproject.toml`` maps them in), so the chapters read one set of numbers and models anywhere.
    """
    root = repo_root()
    if root is not None:
        return root / "results"
    packaged = Path(__file__).resolve().parent / "results"
    if not packaged.is_dir():
        raise FileNotFoundError(f"this metaformer_mini ({Path(__file__).parent}) is neither a "
                                "checkout nor an installed copy with its results; reinstall it "
                                "from the repository (README, Set-up)")
    return packaged


def stored_run_seconds(notebook: Path) -> Optional[float]:
    """Return the seconds of a notebook's stored run, first cell's start to last cell's end (None: no run).

    Jupyter stores each executed cell's timestamps in its metadata (``execution``); a chapter
    executed top to bottom in quick mode thus records how long the whole chapter took.
    """
    times = [cell["metadata"]["execution"] for cell in json.loads(notebook.read_text())["cells"]
             if "shell.execute_reply" in cell.get("metadata", {}).get("execution", {})]
    if not times:
        return None
    start = datetime.fromisoformat(times[0]["iopub.execute_input"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(times[-1]["shell.execute_reply"].replace("Z", "+00:00"))
    return (end - start).total_seconds()


def _is_image_folder(path: Path) -> bool:
    return (path / "test").is_dir() or (path / "train").is_dir()


def cifar10_dir() -> Optional[Path]:
    """Return the CIFAR-10 image folder (holding ``{train,test}/<class>/*.jpg``), or None if absent.

    Looked up in order: $METAFORMER_CIFAR10, ``<repo>/../shared/data/cifar10``, ``./data/cifar10``.
    """
    if os.environ.get(CIFAR10_VARIABLE):
        path = Path(os.environ[CIFAR10_VARIABLE]).expanduser()
        if not _is_image_folder(path):
            raise ValueError(f"{CIFAR10_VARIABLE}={str(path)!r} has no train/ or test/ folder; "
                             "expected a folder holding {train,test}/<class>/*.jpg")
        return path
    candidates = [Path("data/cifar10")]
    root = repo_root()
    if root is not None:
        candidates.insert(0, root.parent / "shared" / "data" / "cifar10")
    return next((path.resolve() for path in candidates if _is_image_folder(path)), None)


def cifar10_samples(n: int, split: str = "test",
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Return n CIFAR-10 images as uint8 (n, 3, 32, 32), their labels (n,) and the class names.

    The same (n, split, seed) always gives the same images. Read from :func:`cifar10_dir`, or,
    when no folder exists (Colab), from torchvision's CIFAR10 downloaded into ``./data``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    folder = cifar10_dir()
    if folder is not None:
        return _samples_from_folder(folder / split, n, seed)
    return _samples_from_torchvision(split, n, seed)


def _pick(total: int, n: int, seed: int) -> list[int]:
    if n > total:
        raise ValueError(f"asked for n={n} images but the split holds only {total}")
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=generator)[:n].tolist()


def _samples_from_folder(split_dir: Path, n: int,
                         seed: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    from PIL import Image
    from torchvision.transforms.v2.functional import pil_to_tensor

    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    files = [(path, label) for label, name in enumerate(classes)
             for path in sorted((split_dir / name).glob("*.jpg"))]
    if not files:
        raise ValueError(f"no <class>/*.jpg images under {split_dir}")
    chosen = [files[i] for i in _pick(len(files), n, seed)]
    images = torch.stack([pil_to_tensor(Image.open(path).convert("RGB")) for path, _ in chosen])
    labels = torch.tensor([label for _, label in chosen])
    return images, labels, classes


def _samples_from_torchvision(split: str, n: int,
                              seed: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    from torchvision.datasets import CIFAR10

    dataset = CIFAR10("data", train=split == "train", download=True)
    index = _pick(len(dataset), n, seed)
    images = torch.from_numpy(dataset.data[index]).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([dataset.targets[i] for i in index])
    return images, labels, list(dataset.classes)
