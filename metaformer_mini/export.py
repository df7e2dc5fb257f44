"""A trained model as an ONNX file, for ONNX Runtime in Python or in a reader's browser.

    python -m metaformer_mini.export results/checkpoints/pooling.pt -o pooling.onnx
    python -m metaformer_mini.export --page _build/html/_static/tryit/models
    python -m metaformer_mini.export --samples book/_static/tryit/samples --data-dir ../shared/data/cifar10

The graph takes one image ``image`` (1, 3, S, S), RGB in [0, 1] (bytes / 255), and normalizes it
itself with the CIFAR-10 mean and std, so a caller only divides by 255. It returns three outputs:
``logits`` (1, num_classes), and the token grid of stage 1 around its first token mixer,
``mixer_input`` = Norm(X) and ``mixer_output`` = TokenMixer(Norm(X)), each (1, C_1, S/2, S/2): for
PoolFormer the second is AvgPool(x) - x of the first. Weights that a suite checkpoint stores as
int8 per output channel stay int8 in the file, with the nodes that rebuild the same fp32
weights, so the file is a quarter of fp32's size and its logits are torch's.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ._names import check_range
from .data import CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, list_images
from .model import GRID_MIXERS, MetaFormer

OPSET = 18  # the exporter's own opset; ONNX Runtime Web's wasm backend runs every op it emits
OUTPUTS = ("logits", "mixer_input", "mixer_output")
# The suite rows the in-browser page carries: every mixer with one N x N token-mixing matrix,
# 7.9 MB together at int8 (ConvFormer's sepconv, 2 MB more, would pass the page's 8 MB).
PAGE_ROWS = ("pooling", "identity", "attention", "spatial_mlp", "random")
PAGE_MODEL_BYTES = 8_000_000
MANIFEST = "manifest.json"
SAMPLES_INDEX = "index.json"


class ExportGraph(nn.Module):
    """image (1, 3, S, S) RGB in [0, 1] -> (logits, stage-1 mixer input, stage-1 mixer output)."""

    def __init__(self, model: MetaFormer, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.model = model
        self.mixer = model.stages[0].blocks[0].token_mixer
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        seen: list[torch.Tensor] = []
        hook = self.mixer.register_forward_hook(lambda module, args, out: seen.extend((args[0], out)))
        try:
            logits = self.model((image - self.mean) / self.std)
        finally:
            hook.remove()
        return logits, seen[0], seen[1]


def check_exportable(model: nn.Module, img_size: int) -> None:
    """Raise TypeError/ValueError naming why ``model`` cannot be exported for img_size x img_size images."""
    if not isinstance(model, MetaFormer):
        raise TypeError(f"expected a metaformer_mini MetaFormer, got {type(model).__name__}")
    cfg = model.config
    if img_size < cfg.min_img_size:
        raise ValueError(f"img_size={img_size} is too small: this model downsamples by "
                         f"{cfg.min_img_size}, so export it at img_size >= {cfg.min_img_size}")
    fixed = sorted(set(cfg.token_mixers) & set(GRID_MIXERS))
    if fixed and img_size != cfg.img_size:
        raise ValueError(f"cannot export at {img_size}x{img_size}: this model's {'/'.join(fixed)} "
                         f"mixer has weights for the token grid of a {cfg.img_size}x{cfg.img_size} "
                         f"image; export it at img_size={cfg.img_size}")


def _int8_axis(weight: np.ndarray) -> Optional[int]:
    """Return the axis along which ``weight`` is exactly int8 x one scale per slice, or None."""
    for axis in range(weight.ndim):
        channels = weight.shape[axis]
        if channels < 2 or weight.size // channels < 2:
            continue
        rows = np.moveaxis(weight, axis, 0).reshape(channels, -1).astype(np.float64)
        peak = np.abs(rows).max(axis=1)
        scale = np.maximum(peak, 1e-12) / 127
        if np.abs(np.round(rows / scale[:, None]) * scale[:, None] - rows).max() <= 1e-6 * peak.max():
            return axis
    return None


def store_int8(onnx_model: Any) -> int:
    """Rewrite every int8-exact weight of an ONNX model as int8 values times fp32 scales; return bytes saved.

    A suite checkpoint keeps each weight as ``int8 * scale`` per output channel; the exporter
    writes it back as fp32 (sometimes transposed). Along the axis where it is exact, the int8
    values and scales are recovered, and two nodes rebuild the fp32 tensor under its old name. Weights that are not int8-exact (a freshly built model) stay fp32.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = onnx_model.graph
    kept, rebuild, saved = [], [], 0
    for init in graph.initializer:
        weight = numpy_helper.to_array(init) if init.data_type == TensorProto.FLOAT else None
        axis = _int8_axis(weight) if weight is not None and weight.ndim >= 2 else None
        if axis is None:
            kept.append(init)
            continue
        rows = np.moveaxis(weight, axis, 0).reshape(weight.shape[axis], -1)
        scale = (np.maximum(np.abs(rows).max(axis=1), 1e-12) / 127).astype(np.float32)
        shape = [1] * weight.ndim
        shape[axis] = -1
        q = np.round(weight / scale.reshape(shape)).astype(np.int8)
        kept += [numpy_helper.from_array(q, f"{init.name}.int8"),
                 numpy_helper.from_array(scale.reshape(shape), f"{init.name}.scale")]
        # Cast and Mul, not DequantizeLinear: ONNX Runtime folds these two into the fp32 weight
        # when it loads the model, while it fuses DequantizeLinear + MatMul into an int8 kernel
        # whose logits differ from torch's by about 4e-3.
        rebuild += [helper.make_node("Cast", [f"{init.name}.int8"], [f"{init.name}.fp32"], to=TensorProto.FLOAT),
                    helper.make_node("Mul", [f"{init.name}.fp32", f"{init.name}.scale"], [init.name])]
        saved += weight.nbytes - q.nbytes - scale.nbytes
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = rebuild + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return saved


def export_onnx(model: MetaFormer, path: str | os.PathLike, img_size: Optional[int] = None,
                mean: Sequence[float] = CIFAR10_MEAN, std: Sequence[float] = CIFAR10_STD,
                metadata: Optional[dict[str, Any]] = None) -> int:
    """Write ``model`` (eval mode) as an ONNX graph with its normalization inside; return the file's bytes.

    ``img_size`` defaults to the model's own. ``metadata`` (JSON-able values) lands in the file's
    metadata properties beside the mean, std and class count.
    """
    import onnx

    if not isinstance(model, MetaFormer):
        raise TypeError(f"expected a metaformer_mini MetaFormer, got {type(model).__name__}")
    img_size = model.config.img_size if img_size is None else img_size
    check_exportable(model, img_size)
    for i, value in enumerate(std):
        check_range(f"std[{i}]", value, "(0, inf)")
    graph = ExportGraph(model.eval(), mean, std).eval()
    image = torch.rand(1, model.config.in_chans, img_size, img_size)
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):  # the exporter's progress lines
        program = torch.onnx.export(graph, (image,), dynamo=True, opset_version=OPSET, verbose=False,
                                    input_names=["image"], output_names=list(OUTPUTS))
    buffer = io.BytesIO()
    program.save(buffer)
    onnx_model = onnx.load_from_string(buffer.getvalue())
    store_int8(onnx_model)
    for node in onnx_model.graph.node:  # the exporter's debugging notes: stack traces with local paths
        del node.metadata_props[:]
        node.doc_string = ""
    info = {"input": "image (1, 3, S, S), RGB in [0, 1]; normalized inside the graph",
            "mean": list(mean), "std": list(std), "num_classes": model.config.num_classes,
            **(metadata or {})}
    onnx.helper.set_model_props(onnx_model, {k: json.dumps(v) for k, v in info.items()})
    onnx.checker.check_model(onnx_model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(onnx_model, path)
    return path.stat().st_size


def export_checkpoint(checkpoint: str | os.PathLike, path: str | os.PathLike) -> dict[str, Any]:
    """Export a suite checkpoint (``results/checkpoints/<row>.pt``) to ``path``; return its manifest entry."""
    from .experiments import read_suite_checkpoint

    checkpoint = Path(checkpoint)
    model, state = read_suite_checkpoint(checkpoint)
    row = state.get("suite_row", checkpoint.stem)
    entry = {"row": row, "file": Path(path).name, "mixers": list(model.config.token_mixers),
             "params": sum(p.numel() for p in model.parameters()),
             "top1": state.get("top1"), "img_size": model.config.img_size,
             "checkpoint": checkpoint.name,
             "checkpoint_sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest()}
    entry["bytes"] = export_onnx(model, path, metadata={k: entry[k] for k in ("row", "top1", "checkpoint_sha256")})
    return entry


def page_checkpoints(checkpoint_dir: Optional[str | os.PathLike] = None,
                     rows: Sequence[str] = PAGE_ROWS) -> list[Path]:
    """Return the checkpoints of ``rows`` that exist in ``checkpoint_dir`` (default: the suite's), in order."""
    from .experiments import default_checkpoint_dir

    folder = Path(checkpoint_dir or default_checkpoint_dir())
    return [folder / f"{row}.pt" for row in rows if (folder / f"{row}.pt").is_file()]


def write_manifest(out_dir: str | os.PathLike, models: Sequence[dict[str, Any]]) -> Path:
    """Write ``manifest.json`` describing the exported models, their input and outputs; return its path."""
    total = sum(entry["bytes"] for entry in models)
    if total > PAGE_MODEL_BYTES:
        raise ValueError(f"the page's models total {total / 1e6:.1f} MB, over its "
                         f"{PAGE_MODEL_BYTES / 1e6:.0f} MB; drop a row from PAGE_ROWS")
    manifest = {
        "input": {"name": "image", "layout": "(1, 3, S, S) RGB, bytes / 255",
                  "normalization": "inside the graph: (image - mean) / std",
                  "mean": list(CIFAR10_MEAN), "std": list(CIFAR10_STD)},
        "outputs": {"logits": "(1, classes)", "mixer_input": "Norm(X) at stage 1's first block, (1, C, S/2, S/2)",
                    "mixer_output": "TokenMixer(Norm(X)) there, (1, C, S/2, S/2)"},
        "classes": list(CIFAR10_CLASSES), "opset": OPSET, "models": list(models)}
    path = Path(out_dir) / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return path


def write_page_models(out_dir: str | os.PathLike, checkpoint_dir: Optional[str | os.PathLike] = None,
                      progress: bool = True) -> Path:
    """Export the page's rows that have a checkpoint into ``out_dir`` with their manifest; return the manifest."""
    checkpoints = page_checkpoints(checkpoint_dir)
    entries = [export_checkpoint(path, Path(out_dir) / f"{path.stem}.onnx")
               for path in tqdm(checkpoints, desc="ONNX export", disable=not progress)]
    return write_manifest(out_dir, entries)


def write_samples(data_dir: str | os.PathLike, out_dir: str | os.PathLike, per_class: int = 3) -> Path:
    """Copy the first ``per_class`` CIFAR-10 test images of each class as PNG, with an index; return the index.

    PNG is lossless, so a browser decodes the very pixels that Python decodes from the JPEG.
    """
    check_range("per_class", per_class, "[1, inf)")
    from PIL import Image

    test_dir = Path(data_dir) / "test"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = []
    for label, name in enumerate(CIFAR10_CLASSES):
        class_dir = test_dir / name
        if not class_dir.is_dir():
            raise FileNotFoundError(f"{class_dir} is missing: expected CIFAR-10 test images in "
                                    f"{test_dir}/<class>/*.jpg")
        for source in list_images(class_dir)[:per_class]:
            file = f"{name}_{source.stem}.png"
            with Image.open(source) as image:
                image.convert("RGB").save(out_dir / file, optimize=True)
            samples.append({"file": file, "label": label, "class": name,
                            "source": f"test/{name}/{source.name}"})
    index = out_dir / SAMPLES_INDEX
    index.write_text(json.dumps(samples, indent=1) + "\n")
    return index


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m metaformer_mini.export", description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", nargs="?", help="a suite checkpoint, e.g. results/checkpoints/pooling.pt")
    parser.add_argument("-o", "--out", help="the ONNX file to write (default: the checkpoint's name, .onnx)")
    parser.add_argument("--page", metavar="DIR", help=f"export the page's rows ({', '.join(PAGE_ROWS)}) "
                        "that have checkpoints, with manifest.json, into DIR")
    parser.add_argument("--checkpoint-dir", help="where --page finds checkpoints (default: results/checkpoints)")
    parser.add_argument("--samples", metavar="DIR", help="write the page's sample test images into DIR")
    parser.add_argument("--data-dir", help="the CIFAR-10 folder for --samples (default: found as the book finds it)")
    args = parser.parse_args(argv)
    if sum(map(bool, (args.checkpoint, args.page, args.samples))) != 1:
        parser.error("give one of: a checkpoint, --page DIR, --samples DIR")
    if args.checkpoint:
        out = args.out or str(Path(args.checkpoint).with_suffix(".onnx").name)
        entry = export_checkpoint(args.checkpoint, out)
        print(f"{out}: {entry['bytes'] / 1e6:.2f} MB, row {entry['row']}, mixers {entry['mixers']}")
    elif args.page:
        manifest = json.loads(write_page_models(args.page, args.checkpoint_dir).read_text())
        for entry in manifest["models"]:
            print(f"{entry['file']}: {entry['bytes'] / 1e6:.2f} MB")
    else:
        from .book import cifar10_dir

        index = write_samples(args.data_dir or cifar10_dir(), args.samples)
        print(f"{index}: {len(json.loads(index.read_text()))} images")


if __name__ == "__main__":
    main()
