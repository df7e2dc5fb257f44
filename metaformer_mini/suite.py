"""The declared results suite: the rows that re-run the paper's mixer comparison and Table 5 on CIFAR-10.

Every row trains the CIFAR-sized MetaFormer of the registry (``cifar_*``: 3x3 stride-2 stem, 16x16
tokens, dims 32-64-128-256, depths 1-1-3-1, GroupNorm, GELU) with one recipe, the engine's
``cifar10-suite`` config, and differs from the baseline row (``BASELINE``) in one choice, as the
rows of the paper's Table 5 differ from PoolFormer-S12. Beside each row stands the paper's
ImageNet-1K top-1 where the paper has that row, None where it has not.
:mod:`metaformer_mini.experiments` runs the rows and reads their results back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ._names import lookup
from .configs import TrainConfig, get_train_config

RECIPE = "cifar10-suite"
PAPER = "Yu et al., MetaFormer Is Actually What You Need for Vision, CVPR 2022 (arXiv 2111.11418v3)"
CHECKPOINT_ROWS = ("pooling", "attention", "spatial_mlp", "identity", "random", "sepconv")


@dataclass(frozen=True)
class PaperResult:
    """A top-1 accuracy the paper reports on ImageNet-1K, and where."""

    top1: float
    table: str
    variant: str  # the row's wording in the paper


@dataclass(frozen=True)
class Row:
    """One row of the suite: a registry model, its overrides, the seeds to train, the paper's number."""

    name: str
    group: str
    model: str
    overrides: dict = field(default_factory=dict)
    seeds: tuple[int, ...] = (0, 1)
    paper: Optional[PaperResult] = None
    note: str = ""

    def train_config(self, seed: int) -> TrainConfig:
        """Return the engine config of one seed: the recipe with this row's model and seed."""
        settings = {"model": self.model, "seed": seed,
                    **{f"model.{k}": v for k, v in self.overrides.items()}}
        return get_train_config(RECIPE, settings)

    def spec(self) -> dict[str, Any]:
        """Return the row as a spec for ``analysis.compare_mixers``."""
        return {"name": self.name, "model": self.model, "overrides": dict(self.overrides)}


def _t5(top1: float, variant: str) -> PaperResult:
    return PaperResult(top1, "Table 5", variant)


MIXER_SEEDS = (0, 1, 2)  # the six mixers and the two hybrids; the other ablations train two
SUITE: tuple[Row, ...] = (
    # token mixers on one skeleton (Figure 1 / Table 5 "Token mixers")
    Row("pooling", "mixer", "cifar_poolformer", seeds=MIXER_SEEDS,
        paper=_t5(77.2, "Baseline: None (PoolFormer-S12)"),
        note="the baseline of every ablation below: pool size 3, GroupNorm(1), GELU"),
    Row("attention", "mixer", "cifar_attentionformer", seeds=MIXER_SEEDS,
        note="the paper trains no all-attention S12; see hybrid_attention"),
    Row("spatial_mlp", "mixer", "cifar_mlpformer", seeds=MIXER_SEEDS,
        note="the paper trains no all-spatial-MLP S12; see hybrid_spatial_mlp"),
    Row("identity", "mixer", "cifar_identityformer", seeds=MIXER_SEEDS,
        paper=_t5(74.3, "Pooling -> Identity mapping")),
    Row("random", "mixer", "cifar_randformer", seeds=MIXER_SEEDS,
        paper=_t5(75.8, "Pooling -> Global random matrix (frozen)")),
    Row("sepconv", "mixer", "cifar_convformer", seeds=MIXER_SEEDS,
        paper=_t5(78.1, "Pooling -> Depthwise Convolution"),
        note="ours is ConvFormer's separable conv (1x1, 7x7 depthwise, 1x1); the paper's a depthwise conv"),
    # PoolFormer ablations (Table 5); the pooling row is pool size 3, GroupNorm, GELU
    Row("pool5", "pool size", "cifar_poolformer", {"pool_size": 5}, paper=_t5(77.2, "Pooling size 3 -> 5")),
    Row("pool7", "pool size", "cifar_poolformer", {"pool_size": 7}, paper=_t5(77.1, "Pooling size 3 -> 7")),
    Row("pool9", "pool size", "cifar_poolformer", {"pool_size": 9}, paper=_t5(76.8, "Pooling size 3 -> 9"),
        note="CIFAR grids are 16/8/4/2 tokens wide, so 9x9 covers whole late stages"),
    Row("norm_layer", "norm", "cifar_poolformer", {"norm": "layer"},
        paper=_t5(76.5, "Modified Layer Normalization -> Layer Normalization")),
    Row("norm_batch", "norm", "cifar_poolformer", {"norm": "batch"},
        paper=_t5(76.4, "Modified Layer Normalization -> Batch Normalization")),
    Row("norm_none", "norm", "cifar_poolformer", {"norm": "none"},
        paper=_t5(46.1, "Modified Layer Normalization -> None"),
        note="the blocks lose their norms; the head keeps its GroupNorm"),
    Row("act_relu", "activation", "cifar_poolformer", {"act": "relu"}, paper=_t5(76.4, "GELU -> ReLU")),
    Row("act_silu", "activation", "cifar_poolformer", {"act": "silu"}, paper=_t5(77.2, "GELU -> SiLU")),
    Row("act_starrelu", "activation", "cifar_poolformer", {"act": "starrelu"},
        note="StarReLU comes from MetaFormer Baselines (2210.13452), not this paper"),
    Row("hybrid_attention", "hybrid", "cifar_poolformer",
        {"stage_mixers": ("pooling", "pooling", "attention", "attention")}, seeds=MIXER_SEEDS,
        paper=_t5(81.0, "[Pool, Pool, Pool, Pool] -> [Pool, Pool, Attention, Attention]")),
    Row("hybrid_spatial_mlp", "hybrid", "cifar_poolformer",
        {"stage_mixers": ("pooling", "pooling", "spatial_mlp", "spatial_mlp")}, seeds=MIXER_SEEDS,
        paper=_t5(77.9, "[Pool, Pool, Pool, Pool] -> [Pool, Pool, SpatialFC, SpatialFC]")),
    Row("no_channel_mlp", "component", "cifar_poolformer", {"channel_mlp": False},
        paper=_t5(5.7, "Channel MLP -> None")),
    Row("no_residual", "component", "cifar_poolformer", {"residual": False},
        paper=_t5(0.1, "Residual connection -> None"), note="expected to fail to train"),
)
ROWS: dict[str, Row] = {row.name: row for row in SUITE}
BASELINE = SUITE[0].name  # the row every other row differs from in one choice


def list_rows() -> list[str]:
    """Return the row names of the suite, in table order."""
    return [row.name for row in SUITE]


def get_row(name: str) -> Row:
    """Return the declared row ``name``; an unknown name raises ValueError naming the closest one."""
    return lookup("suite row", name, ROWS)
