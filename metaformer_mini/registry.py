"""Named models: the PoolFormer family, MetaFormer Baselines, and CIFAR-sized MetaFormers.

``create_model("poolformer_s12")`` builds the paper's model; keyword overrides run the paper's
ablations on it (``token_mixer="identity"``, ``pool_size=5``, ``norm="layer"``, ``act="relu"``,
``stage_mixers=["pooling", "pooling", "attention", "attention"]``) or change any other field of
:class:`~metaformer_mini.model.MetaFormerConfig`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

from ._names import lookup, unknown_message
from .model import MetaFormer, MetaFormerConfig

_REGISTRY: dict[str, Callable[[], MetaFormerConfig]] = {}


def register(fn: Callable[[], MetaFormerConfig]) -> Callable[[], MetaFormerConfig]:
    """Add a function returning a config to the registry under the function's name."""
    _REGISTRY[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    """Return the names ``create_model`` accepts, sorted."""
    return sorted(_REGISTRY)


def get_config(name: str, num_classes: Optional[int] = None, **overrides: Any) -> MetaFormerConfig:
    """Return the config of model ``name`` with ``overrides`` applied (see :func:`create_model`)."""
    base = lookup("model", name, _REGISTRY)()
    fields = {f.name for f in dataclasses.fields(MetaFormerConfig)}
    unknown = set(overrides) - fields - {"token_mixer", "stage_mixers"}
    if unknown:
        key = sorted(unknown)[0]
        raise TypeError(unknown_message("override", key, sorted(fields | {"token_mixer", "stage_mixers"})))
    changes = dict(overrides) if num_classes is None else dict(overrides, num_classes=num_classes)
    if "token_mixer" in changes and "stage_mixers" in changes:
        raise ValueError("give token_mixer= (one mixer for every stage) or stage_mixers= "
                         "(one per stage), not both")
    if "token_mixer" in changes:
        changes["token_mixers"] = (changes.pop("token_mixer"),) * len(changes.get("depths", base.depths))
    if "stage_mixers" in changes:
        changes["token_mixers"] = tuple(changes.pop("stage_mixers"))
    config = dataclasses.replace(base, **changes)
    if "pool_size" in overrides and "pooling" not in config.token_mixers:
        raise ValueError(f"pool_size={overrides['pool_size']} was given but no stage of {name} "
                         f"uses the pooling mixer (its mixers: {list(config.token_mixers)})")
    return config


def create_model(name: str, num_classes: Optional[int] = None, **overrides: Any) -> MetaFormer:
    """Return a freshly initialized model ``name`` (see ``list_models()``) with ``overrides``.

    ``num_classes`` defaults to the model's own: 1000 (ImageNet) or 10 for the ``cifar_*`` models.
    Overrides are fields of ``MetaFormerConfig`` plus ``token_mixer`` (one mixer for all stages)
    and ``stage_mixers`` (one per stage). Unknown names raise ValueError with the closest match.
    """
    return MetaFormer(get_config(name, num_classes, **overrides))


# --- PoolFormer (Yu et al., CVPR 2022, Table 1) -------------------------------------------

def _poolformer(depths: tuple[int, ...], dims: tuple[int, ...], layer_scale: float) -> MetaFormerConfig:
    return MetaFormerConfig(depths=depths, dims=dims, layer_scale_init=layer_scale)


S_DIMS, M_DIMS = (64, 128, 320, 512), (96, 192, 384, 768)


@register
def poolformer_s12() -> MetaFormerConfig:
    return _poolformer((2, 2, 6, 2), S_DIMS, 1e-5)


@register
def poolformer_s24() -> MetaFormerConfig:
    return _poolformer((4, 4, 12, 4), S_DIMS, 1e-5)


@register
def poolformer_s36() -> MetaFormerConfig:
    return _poolformer((6, 6, 18, 6), S_DIMS, 1e-6)


@register
def poolformer_m36() -> MetaFormerConfig:
    return _poolformer((6, 6, 18, 6), M_DIMS, 1e-6)


@register
def poolformer_m48() -> MetaFormerConfig:
    return _poolformer((8, 8, 24, 8), M_DIMS, 1e-6)


# --- MetaFormer Baselines for Vision (Yu et al., 2022) -----------------------------------

def _baseline(depths: tuple[int, ...], mixers: tuple[str, ...], norm: str, head: str) -> MetaFormerConfig:
    return MetaFormerConfig(
        depths=depths, dims=S_DIMS, token_mixers=mixers, norm=norm, act="starrelu",
        mlp_bias=False, layer_scale_init=None, res_scale_init=(None, None, 1.0, 1.0),
        stem_norm="layer_nobias", downsample_norm="layer_nobias", head=head, head_norm="layer")


@register
def identityformer_s12() -> MetaFormerConfig:
    return _baseline((2, 2, 6, 2), ("identity",) * 4, "group_nobias", "linear")


@register
def randformer_s12() -> MetaFormerConfig:
    return _baseline((2, 2, 6, 2), ("identity", "identity", "random", "random"),
                     "group_nobias", "linear")


@register
def poolformerv2_s12() -> MetaFormerConfig:
    return _baseline((2, 2, 6, 2), ("pooling",) * 4, "group_nobias", "linear")


@register
def convformer_s18() -> MetaFormerConfig:
    return _baseline((3, 3, 9, 3), ("sepconv",) * 4, "layer_nobias", "mlp")


@register
def caformer_s18() -> MetaFormerConfig:
    return _baseline((3, 3, 9, 3), ("sepconv", "sepconv", "attention", "attention"),
                     "layer_nobias", "mlp")


# --- CIFAR-sized MetaFormers: one skeleton, one mixer each -------------------------------
# A 3x3 stride-2 stem keeps a 16x16 token grid for 32x32 images; stages see 16, 8, 4, 2.
# S12's 1:1:3:1 stage ratio at depth 6 instead of 12, so that a CPU trains it in minutes; for a
# fixed time, fewer blocks buy more epochs (benchmarks/cifar_quick.py measures the trade).

def _cifar(mixer: str) -> MetaFormerConfig:
    return MetaFormerConfig(depths=(1, 1, 3, 1), dims=(32, 64, 128, 256),
                            token_mixers=(mixer,) * 4, stem=(3, 2, 1), img_size=32,
                            num_classes=10, layer_scale_init=None)


@register
def cifar_poolformer() -> MetaFormerConfig:
    return _cifar("pooling")


@register
def cifar_attentionformer() -> MetaFormerConfig:
    return _cifar("attention")


@register
def cifar_mlpformer() -> MetaFormerConfig:
    return _cifar("spatial_mlp")


@register
def cifar_identityformer() -> MetaFormerConfig:
    return _cifar("identity")


@register
def cifar_randformer() -> MetaFormerConfig:
    return _cifar("random")


@register
def cifar_convformer() -> MetaFormerConfig:
    return _cifar("sepconv")
