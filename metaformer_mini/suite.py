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
from .paper import METAFORMER, TABLE5

RECIPE = "cifar10-suite"
PAPER = METAFORMER
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


def _t5(name: str) -> PaperResult:
    """Return Table 5's number for suite row ``name``, from :mod:`metaformer_mini.paper`."""
    number = TABLE5[name]
    return PaperResult(number.value, number.table, number.row)


MIXER_SEEDS = (0, 1, 2)  # the six mixers and the two hybrids; the other ablations train two
SUITE: tuple[Row, ...] = (
    # token mixers on one skeleton (Figure 1 / Table 5 "Token mixers")
    Row("pooling", "mixer", "cifar_poolformer", seeds=MIXER_SEEDS,
        paper=_t5("pooling"),
        note="the baseline of every ablation below: pool size 3, GroupNorm(1), GELU"),
    Row("attention", "mixer", "cifar_attentionformer", seeds=MIXER_SEEDS,
        note="the paper trains no all-attention S12; see hybrid_attention"),
    Row("spatial_mlp", "mixer", "cifar_mlpformer", seeds=MIXER_SEEDS,
        note="the paper trains no all-spatial-MLP S12; see hybrid_spatial_mlp"),
    Row("identity", "mixer", "cifar_identityformer", seeds=MIXER_SEEDS,
        paper=_t5("identity")),
    Row("random", "mixer", "cifar_randformer", seeds=MIXER_SEEDS,
        paper=_t5("random")),
    Row("sepconv", "mixer", "cifar_convformer", seeds=MIXER_SEEDS,
        paper=_t5("sepconv"),
        note="ours is ConvFormer's separable conv (1x1, 7x7 depthwise, 1x1); the paper's a depthwise conv"),
    # PoolFormer ablations (Table 5); the pooling row is pool size 3, GroupNorm, GELU
    Row("pool5", "pool size", "cifar_poolformer", {"pool_size": 5}, paper=_t5("pool5")),
    Row("pool7", "pool size", "cifar_poolformer", {"pool_size": 7}, paper=_t5("pool7")),
    Row("pool9", "pool size", "cifar_poolformer", {"pool_size": 9}, paper=_t5("pool9"),
        note="CIFAR grids are 16/8/4/2 tokens wide, so 9x9 covers whole late stages"),
    Row("norm_layer", "norm", "cifar_poolformer", {"norm": "layer"},
        paper=_t5("norm_layer")),
    Row("norm_batch", "norm", "cifar_poolformer", {"norm": "batch"},
        paper=_t5("norm_batch")),
    Row("norm_none", "norm", "cifar_poolformer", {"norm": "none"},
        paper=_t5("norm_none"),
        note="the blocks lose their norms; the head keeps its GroupNorm"),
    Row("act_relu", "activation", "cifar_poolformer", {"act": "relu"}, paper=_t5("act_relu")),
    Row("act_silu", "activation", "cifar_poolformer", {"act": "silu"}, paper=_t5("act_silu")),
    Row("act_starrelu", "activation", "cifar_poolformer", {"act": "starrelu"},
        note="StarReLU comes from MetaFormer Baselines (2210.13452), not this paper"),
    Row("hybrid_attention", "hybrid", "cifar_poolformer",
        {"stage_mixers": ("pooling", "pooling", "attention", "attention")}, seeds=MIXER_SEEDS,
        paper=_t5("hybrid_attention")),
    Row("hybrid_spatial_mlp", "hybrid", "cifar_poolformer",
        {"stage_mixers": ("pooling", "pooling", "spatial_mlp", "spatial_mlp")}, seeds=MIXER_SEEDS,
        paper=_t5("hybrid_spatial_mlp")),
    Row("no_channel_mlp", "component", "cifar_poolformer", {"channel_mlp": False},
        paper=_t5("no_channel_mlp")),
    Row("no_residual", "component", "cifar_poolformer", {"residual": False},
        paper=_t5("no_residual"), note="expected to fail to train"),
)
ROWS: dict[str, Row] = {row.name: row for row in SUITE}
BASELINE = SUITE[0].name  # the row every other row differs from in one choice


def list_rows() -> list[str]:
    """Return the row names of the suite, in table order."""
    return [row.name for row in SUITE]


def get_row(name: str) -> Row:
    """Return the declared row ``name``; an unknown name raises ValueError naming the closest one."""
    return lookup("suite row", name, ROWS)
