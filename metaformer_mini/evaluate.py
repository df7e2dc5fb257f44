"""Top-1/top-5 accuracy of a model on a test split, as a function and a CLI.

    python -m metaformer_mini.evaluate --checkpoint runs/quick/best.pt --data-dir ../shared/data/cifar10
    python -m metaformer_mini.evaluate --model poolformer_s12 --pretrained --data-dir /data/imagenet

Both print one JSON object: ``{"top1": ..., "top5": ..., "loss": ..., "images": ...}``.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from typing import Iterable, Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ._names import check_range, flag, lookup
from .checkpoint import load_checkpoint
from .configs import TrainConfig
from .data import test_batches


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """Return the autocast context for ``amp`` ('bf16', 'fp16', 'none') on ``device``."""
    dtype = lookup("amp mode", amp, {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None})
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def tta_views(x: torch.Tensor, flip: bool = False, shift: int = 0) -> list[torch.Tensor]:
    """Return the test-time views of a batch (B, C, H, W): itself, translated, mirrored.

    ``shift`` adds two copies translated by ``shift`` pixels along the diagonal, one each way
    (reflect padding fills the edge); ``flip`` adds the mirror image of every view.
    """
    check_range("shift", shift, f"[0, {min(x.shape[-2:])})")  # reflect padding needs shift < side
    views = [x]
    if shift:
        padded = F.pad(x, (shift,) * 4, mode="reflect")
        h, w = x.shape[-2:]
        views += [padded[..., :h, :w], padded[..., 2 * shift:, 2 * shift:]]
    if flip:
        views += [v.flip(-1) for v in views]
    return views


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
             device: torch.device | str = "cpu", amp: str = "none", tta_flip: bool = False,
             progress: bool = False, tta_shift: int = 0) -> dict[str, float]:
    """Return {'top1', 'top5', 'loss', 'images'} of ``model`` over ``batches`` of (images, labels).

    Accuracies are percentages. Test-time augmentation averages the logits of the views of
    :func:`tta_views`: ``tta_flip`` adds each image's mirror image, ``tta_shift`` copies
    translated by that many pixels. Under torch.distributed every process passes its own shard
    and gets the global result.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    totals = torch.zeros(4, dtype=torch.float64, device=device)  # correct1, correct5, loss, n
    for x, y in tqdm(batches, desc="evaluating", disable=not progress, leave=False):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast(device, amp):
            views = tta_views(x, tta_flip, tta_shift)
            logits = sum(model(v).float() for v in views) / len(views)
        top5 = logits.topk(min(5, logits.shape[1]), dim=1).indices
        hits = top5 == y[:, None]
        totals += torch.stack([hits[:, 0].sum(), hits.any(1).sum(),
                               F.cross_entropy(logits, y, reduction="sum"),
                               torch.tensor(len(y), device=device)]).to(totals)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(totals)
    model.train(was_training)
    c1, c5, loss, n = totals.tolist()
    if n == 0:
        raise ValueError("evaluate got no batches: the test split is empty")
    return {"top1": 100 * c1 / n, "top5": 100 * c5 / n, "loss": loss / n, "images": int(n)}


def main(argv: Optional[list[str]] = None) -> dict[str, float]:
    """Run the CLI: print the accuracy of a checkpoint or of pretrained weights as JSON."""
    p = argparse.ArgumentParser(prog="python -m metaformer_mini.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a last.pt/best.pt written by metaformer_mini.train")
    src.add_argument("--model", help="a registry name, with --pretrained (e.g. poolformer_s12)")
    p.add_argument("--pretrained", action="store_true", help="load the official weights of --model")
    p.add_argument("--weights", help="a local file of official weights for --pretrained")
    p.add_argument("--data-dir", required=True, help="CIFAR-10 folder, or ImageNet folder with val/")
    p.add_argument("--batch-size", type=flag("[1, inf)"), default=250)
    p.add_argument("--crop-pct", type=flag("(0, 1]", float), default=None,
                   help="ImageNet eval crop (default: the model's)")
    p.add_argument("--tta-flip", action=argparse.BooleanOptionalAction, default=None,
                   help="average over the image and its mirror (default: as the run was evaluated)")
    p.add_argument("--tta-shift", type=flag("[0, inf)"), default=None,
                   help="also average copies translated by this many pixels (default: as the run)")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights even if EMA ones exist")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if args.device == "auto" else args.device)
    try:
        if args.checkpoint:
            model, config = load_checkpoint(args.checkpoint, use_ema=not args.no_ema)
            config = dataclasses.replace(config, test_subset=0,  # always the whole split
                                         crop_pct=args.crop_pct or config.crop_pct)
        else:
            if not args.pretrained:
                p.error("--model needs --pretrained (a fresh model would score chance)")
            from .weights import load_pretrained
            model = load_pretrained(args.model, args.weights)
            size = args.model.split("_")[-1]
            config = TrainConfig(model=args.model, dataset="imagenet", img_size=224, tta_flip=False,
                                 crop_pct=args.crop_pct or (0.95 if size.startswith("m") else 0.9))
        amp = "bf16" if device.type == "cuda" else "none"
        model = model.to(device)
        batches = test_batches(config, args.data_dir, device, batch_size=args.batch_size)
        tta = config.tta_flip if args.tta_flip is None else args.tta_flip
        shift = config.tta_shift if args.tta_shift is None else args.tta_shift
        result = evaluate(model, batches, device, amp=amp, tta_flip=tta, progress=True,
                          tta_shift=shift)
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f"error: {err}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
