"""Every number the book quotes from the two MetaFormer papers, each with its paper and table.

Chapters take their numbers from here (``paper.TABLE5["identity"].value``), so a number is typed
once and cannot drift between chapters. Our own measurements never live here: they come from
``results/`` at run time.

Sources, checked against the papers' text: Tables 1-5 of :data:`METAFORMER` (arXiv 2111.11418v3);
the ImageNet-1K rows of :data:`BASELINES` (arXiv 2210.13452) as restated in the tables of the
official repository ``sail-sg/metaformer``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

METAFORMER = ("Weihao Yu, Mi Luo, Pan Zhou, Chenyang Si, Yichen Zhou, Xinchao Wang, Jiashi Feng, "
              "Shuicheng Yan. MetaFormer Is Actually What You Need for Vision. CVPR 2022. "
              "arXiv:2111.11418v3.")
BASELINES = ("Weihao Yu, Chenyang Si, Pan Zhou, Mi Luo, Yichen Zhou, Jiashi Feng, Shuicheng Yan, "
             "Xinchao Wang. MetaFormer Baselines for Vision. IEEE TPAMI 2024. arXiv:2210.13452.")


@dataclass(frozen=True)
class PaperNumber:
    """One number as a paper prints it: its value, the paper, the table and the row's wording."""

    value: float
    paper: str
    table: str
    row: str

    def cite(self) -> str:
        """Return 'Table 5 of MetaFormer (2111.11418), row "..."' for a caption."""
        short = "MetaFormer (2111.11418)" if self.paper is METAFORMER else "MetaFormer Baselines (2210.13452)"
        return f'{self.table} of {short}, row "{self.row}"'


@dataclass(frozen=True)
class ImageNetRow:
    """One model of an ImageNet-1K table: size, cost and top-1 at its image size, as printed."""

    model: str
    mixer: str                 # the type of token mixer ("-" for a CNN), as the table groups it
    params_m: Optional[float]  # millions, as printed (None: the table gives none)
    macs_g: float
    top1: float
    table: str
    paper: str
    image_size: int = 224


def _t5(value: float, row: str) -> PaperNumber:
    return PaperNumber(value, METAFORMER, "Table 5", row)


# --- MetaFormer (2111.11418), Table 5: ablations of PoolFormer-S12, ImageNet-1K top-1 (%) ------
TABLE5: dict[str, PaperNumber] = {
    "pooling": _t5(77.2, "Baseline: None (PoolFormer-S12)"),
    "identity": _t5(74.3, "Pooling -> Identity mapping"),
    "random": _t5(75.8, "Pooling -> Global random matrix (extra 21M frozen parameters)"),
    "sepconv": _t5(78.1, "Pooling -> Depthwise Convolution"),
    "pool5": _t5(77.2, "Pooling size 3 -> 5"),
    "pool7": _t5(77.1, "Pooling size 3 -> 7"),
    "pool9": _t5(76.8, "Pooling size 3 -> 9"),
    "norm_layer": _t5(76.5, "Modified Layer Normalization -> Layer Normalization"),
    "norm_batch": _t5(76.4, "Modified Layer Normalization -> Batch Normalization"),
    "norm_none": _t5(46.1, "Modified Layer Normalization -> None"),
    "act_relu": _t5(76.4, "GELU -> ReLU"),
    "act_silu": _t5(77.2, "GELU -> SiLU"),
    "no_residual": _t5(0.1, "Residual connection -> None"),
    "no_channel_mlp": _t5(5.7, "Channel MLP -> None"),
    "hybrid_attention_last": _t5(78.3, "[Pool, Pool, Pool, Pool] -> [Pool, Pool, Pool, Attention]"),
    "hybrid_attention": _t5(81.0, "[Pool, Pool, Pool, Pool] -> [Pool, Pool, Attention, Attention]"),
    "hybrid_spatial_mlp_last": _t5(77.5, "[Pool, Pool, Pool, Pool] -> [Pool, Pool, Pool, SpatialFC]"),
    "hybrid_spatial_mlp": _t5(77.9, "[Pool, Pool, Pool, Pool] -> [Pool, Pool, SpatialFC, SpatialFC]"),
}

# Table 5's size columns for the rows whose cost differs from the baseline (11.9 M, 1.8 G).
TABLE5_PARAMS_M: dict[str, PaperNumber] = {
    "pooling": _t5(11.9, "Baseline: None (PoolFormer-S12)"),
    "random": _t5(11.9, "Pooling -> Global random matrix (extra 21M frozen parameters)"),
    "no_channel_mlp": _t5(2.5, "Channel MLP -> None"),
    "hybrid_attention_last": _t5(14.0, "[Pool, Pool, Pool, Pool] -> [Pool, Pool, Pool, Attention]"),
    "hybrid_attention": _t5(16.5, "[Pool, Pool, Pool, Pool] -> [Pool, Pool, Attention, Attention]"),
    "hybrid_spatial_mlp_last": _t5(11.9, "[Pool, Pool, Pool, Pool] -> [Pool, Pool, Pool, SpatialFC]"),
    "hybrid_spatial_mlp": _t5(12.2, "[Pool, Pool, Pool, Pool] -> [Pool, Pool, SpatialFC, SpatialFC]"),
}
TABLE5_MACS_G: dict[str, PaperNumber] = {
    "pooling": _t5(1.8, "Baseline: None (PoolFormer-S12)"),
    "random": _t5(3.3, "Pooling -> Global random matrix (extra 21M frozen parameters)"),
    "no_channel_mlp": _t5(0.2, "Channel MLP -> None"),
    "hybrid_attention_last": _t5(1.9, "[Pool, Pool, Pool, Pool] -> [Pool, Pool, Pool, Attention]"),
    "hybrid_attention": _t5(2.5, "[Pool, Pool, Pool, Pool] -> [Pool, Pool, Attention, Attention]"),
    "hybrid_spatial_mlp_last": _t5(1.8, "[Pool, Pool, Pool, Pool] -> [Pool, Pool, Pool, SpatialFC]"),
    "hybrid_spatial_mlp": _t5(1.9, "[Pool, Pool, Pool, Pool] -> [Pool, Pool, SpatialFC, SpatialFC]"),
}
RANDOM_FROZEN_PARAMS_M = PaperNumber(
    21, METAFORMER, "Table 5", "Pooling -> Global random matrix (extra 21M frozen parameters)")

# --- MetaFormer, Table 1: PoolFormer sizes (parameters in M with one decimal, MACs in G) -------
TABLE1_PARAMS_M: dict[str, PaperNumber] = {
    name: PaperNumber(v, METAFORMER, "Table 1", f"Parameters (M), {label}")
    for name, label, v in [("poolformer_s12", "S12", 11.9), ("poolformer_s24", "S24", 21.4),
                           ("poolformer_s36", "S36", 30.8), ("poolformer_m36", "M36", 56.1),
                           ("poolformer_m48", "M48", 73.4)]
}
TABLE1_MACS_G: dict[str, PaperNumber] = {
    name: PaperNumber(v, METAFORMER, "Table 1", f"MACs (G), {label}")
    for name, label, v in [("poolformer_s12", "S12", 1.8), ("poolformer_s24", "S24", 3.4),
                           ("poolformer_s36", "S36", 5.0), ("poolformer_m36", "M36", 8.8),
                           ("poolformer_m48", "M48", 11.6)]
}


# --- MetaFormer, Table 2: ImageNet-1K, every model trained on ImageNet-1K only ----------------
def _t2(model: str, mixer: str, params: float, macs: float, top1: float, size: int = 224) -> ImageNetRow:
    return ImageNetRow(model, mixer, params, macs, top1, "Table 2", METAFORMER, size)


# RSB-ResNet: ResNet trained by "ResNet Strikes Back" for 300 epochs; ViT-*: with the extra
# regularization of MLP-Mixer's paper; Swin-Mixer-T rows are at 256x256.
TABLE2: dict[str, ImageNetRow] = {r.model: r for r in [
    _t2("RSB-ResNet-18", "-", 12, 1.8, 70.6),
    _t2("RSB-ResNet-34", "-", 22, 3.7, 75.5),
    _t2("RSB-ResNet-50", "-", 26, 4.1, 79.8),
    _t2("RSB-ResNet-101", "-", 45, 7.9, 81.3),
    _t2("RSB-ResNet-152", "-", 60, 11.6, 81.8),
    _t2("ViT-B/16", "attention", 86, 17.6, 79.7),
    _t2("ViT-L/16", "attention", 307, 63.6, 76.1),
    _t2("DeiT-S", "attention", 22, 4.6, 79.8),
    _t2("DeiT-B", "attention", 86, 17.5, 81.8),
    _t2("PVT-Tiny", "attention", 13, 1.9, 75.1),
    _t2("PVT-Small", "attention", 25, 3.8, 79.8),
    _t2("PVT-Medium", "attention", 44, 6.7, 81.2),
    _t2("PVT-Large", "attention", 61, 9.8, 81.7),
    _t2("MLP-Mixer-B/16", "spatial MLP", 59, 12.7, 76.4),
    _t2("ResMLP-S12", "spatial MLP", 15, 3.0, 76.6),
    _t2("ResMLP-S24", "spatial MLP", 30, 6.0, 79.4),
    _t2("ResMLP-B24", "spatial MLP", 116, 23.0, 81.0),
    _t2("Swin-Mixer-T/D24", "spatial MLP", 20, 4.0, 79.4, 256),
    _t2("Swin-Mixer-T/D6", "spatial MLP", 23, 4.0, 79.7, 256),
    _t2("Swin-Mixer-B/D24", "spatial MLP", 61, 10.4, 81.3),
    _t2("gMLP-S", "spatial MLP", 20, 4.5, 79.6),
    _t2("gMLP-B", "spatial MLP", 73, 15.8, 81.6),
    _t2("PoolFormer-S12", "pooling", 12, 1.8, 77.2),
    _t2("PoolFormer-S24", "pooling", 21, 3.4, 80.3),
    _t2("PoolFormer-S36", "pooling", 31, 5.0, 81.4),
    _t2("PoolFormer-M36", "pooling", 56, 8.8, 82.1),
    _t2("PoolFormer-M48", "pooling", 73, 11.6, 82.5),
]}
# registry name -> Table 2 row, for the PoolFormer sizes
POOLFORMER_ROWS = {f"poolformer_{s.lower()}": f"PoolFormer-{s}" for s in ("S12", "S24", "S36", "M36", "M48")}

# The figure (ResNet Strikes Back, arXiv 2110.00476) that Table 2 uses is its 300-epoch "A2"
# procedure; the same paper's 600-epoch "A1" procedure reaches 80.4 for ResNet-50.
RSB_RESNET50_A1 = PaperNumber(80.4, "Ross Wightman, Hugo Touvron, Herve Jegou. ResNet strikes back: "
                              "An improved training procedure in timm. arXiv:2110.00476.",
                              "Table 1", "ResNet-50, procedure A1 (600 epochs)")


# --- MetaFormer Baselines (2210.13452): ImageNet-1K at 224, trained on ImageNet-1K only --------
# Rows as printed in the official sail-sg/metaformer tables (which restate the paper's); the
# parameter column is given where the book quotes it (None: not recorded here).
_BT = "ImageNet-1K table (224, IN-1K only)"


def _b(model: str, mixer: str, params: Optional[float], macs: float, top1: float) -> ImageNetRow:
    return ImageNetRow(model, mixer, params, macs, top1, _BT, BASELINES)


BASELINES_IMAGENET: dict[str, ImageNetRow] = {r.model: r for r in [
    _b("IdentityFormer-S12", "identity", 11.9, 1.8, 74.6),
    _b("IdentityFormer-S24", "identity", None, 3.4, 78.2),
    _b("IdentityFormer-S36", "identity", None, 5.0, 79.3),
    _b("IdentityFormer-M36", "identity", None, 8.8, 80.0),
    _b("IdentityFormer-M48", "identity", None, 11.5, 80.4),
    _b("RandFormer-S12", "random", 11.9 + 0.2, 1.9, 76.6),
    _b("RandFormer-S24", "random", None, 3.5, 78.2),
    _b("RandFormer-S36", "random", None, 5.2, 79.5),
    _b("RandFormer-M36", "random", None, 9.0, 81.2),
    _b("RandFormer-M48", "random", None, 11.9, 81.4),
    _b("PoolFormerV2-S12", "pooling", 11.9, 1.8, 78.0),
    _b("PoolFormerV2-S24", "pooling", None, 3.4, 80.7),
    _b("PoolFormerV2-S36", "pooling", None, 5.0, 81.6),
    _b("PoolFormerV2-M36", "pooling", None, 8.8, 82.2),
    _b("PoolFormerV2-M48", "pooling", None, 11.5, 82.6),
    _b("ConvFormer-S18", "separable conv", 27, 3.9, 83.0),
    _b("ConvFormer-S36", "separable conv", None, 7.6, 84.1),
    _b("ConvFormer-M36", "separable conv", None, 12.8, 84.5),
    _b("ConvFormer-B36", "separable conv", None, 22.6, 84.8),
    _b("CAFormer-S18", "conv + attention", 26, 4.1, 83.6),
    _b("CAFormer-S36", "conv + attention", None, 8.0, 84.5),
    _b("CAFormer-M36", "conv + attention", None, 13.2, 85.2),
    _b("CAFormer-B36", "conv + attention", None, 23.2, 85.5),
]}
# registry name -> row, for the models the package builds
BASELINE_ROWS = {"identityformer_s12": "IdentityFormer-S12", "randformer_s12": "RandFormer-S12",
                 "poolformerv2_s12": "PoolFormerV2-S12", "convformer_s18": "ConvFormer-S18",
                 "caformer_s18": "CAFormer-S18"}


# --- MetaFormer, Table 3: COCO val2017, 1x schedule ------------------------------------------
@dataclass(frozen=True)
class CocoRow:
    """A backbone of Table 3: RetinaNet and Mask R-CNN parameters (M) and APs, as printed."""

    backbone: str
    retinanet_params_m: float
    retinanet_ap: float
    maskrcnn_params_m: float
    box_ap: float
    mask_ap: float
    table: str = "Table 3"
    paper: str = METAFORMER


TABLE3_COCO: dict[str, CocoRow] = {r.backbone: r for r in [
    CocoRow("ResNet-18", 21.3, 31.8, 31.2, 34.0, 31.2),
    CocoRow("PoolFormer-S12", 21.7, 36.2, 31.6, 37.3, 34.6),
    CocoRow("ResNet-50", 37.7, 36.3, 44.2, 38.0, 34.4),
    CocoRow("PoolFormer-S24", 31.1, 38.9, 41.0, 40.1, 37.0),
    CocoRow("ResNet-101", 56.7, 38.5, 63.2, 40.4, 36.4),
    CocoRow("PoolFormer-S36", 40.6, 39.5, 50.5, 41.0, 37.7),
]}


# --- MetaFormer, Table 4: ADE20K semantic segmentation, Semantic FPN -----------------------------
@dataclass(frozen=True)
class Ade20kRow:
    """A backbone of Table 4: Semantic FPN parameters (M) and mIoU (%), as printed."""

    backbone: str
    params_m: float
    miou: float
    table: str = "Table 4"
    paper: str = METAFORMER


TABLE4_ADE20K: dict[str, Ade20kRow] = {r.backbone: r for r in [
    Ade20kRow("ResNet-18", 15.5, 32.9),
    Ade20kRow("PVT-Tiny", 17.0, 35.7),
    Ade20kRow("PoolFormer-S12", 15.7, 37.2),
    Ade20kRow("ResNet-50", 28.5, 36.7),
    Ade20kRow("PVT-Small", 28.2, 39.8),
    Ade20kRow("PoolFormer-S24", 23.2, 40.3),
    Ade20kRow("ResNet-101", 47.5, 38.8),
    Ade20kRow("ResNeXt-101-32x4d", 47.1, 39.7),
    Ade20kRow("PVT-Medium", 48.0, 41.6),
    Ade20kRow("PoolFormer-S36", 34.6, 42.0),
    Ade20kRow("PVT-Large", 65.1, 42.1),
    Ade20kRow("PoolFormer-M36", 59.8, 42.4),
    Ade20kRow("ResNeXt-101-64x4d", 86.4, 40.2),
    Ade20kRow("PoolFormer-M48", 77.1, 42.7),
]}

# The paper's closing section names these as future work.
FUTURE_WORK = ("self-supervised learning", "transfer learning", "NLP tasks")


def table5_value(name: str) -> float:
    """Return Table 5's top-1 for a row name of the CIFAR suite (KeyError names the known rows)."""
    try:
        return TABLE5[name].value
    except KeyError:
        raise KeyError(f"no Table 5 row {name!r}; known: {sorted(TABLE5)}") from None
