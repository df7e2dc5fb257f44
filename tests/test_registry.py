"""Tests for metaformer_mini/registry.py: named models, overrides, and their errors."""
import pytest
import timm
import torch

from metaformer_mini import create_model, get_config, list_models
from metaformer_mini.mixers import Attention, Pooling


def n_params(build, name: str) -> int:
    """Count the parameters of ``build(name)``, built on the meta device (shapes only, instant)."""
    with torch.device("meta"):
        return sum(p.numel() for p in build(name).parameters())


def test_list_models_names_the_family():
    names = list_models()
    assert names == sorted(names)
    for name in ["poolformer_s12", "poolformer_s24", "poolformer_s36", "poolformer_m36",
                 "poolformer_m48", "identityformer_s12", "randformer_s12", "poolformerv2_s12",
                 "convformer_s18", "caformer_s18", "cifar_poolformer", "cifar_attentionformer",
                 "cifar_mlpformer", "cifar_identityformer", "cifar_randformer", "cifar_convformer"]:
        assert name in names


def test_poolformer_table_1_configs():
    s36, m48 = get_config("poolformer_s36"), get_config("poolformer_m48")
    assert s36.depths == (6, 6, 18, 6) and s36.dims == (64, 128, 320, 512)
    assert m48.depths == (8, 8, 24, 8) and m48.dims == (96, 192, 384, 768)
    assert s36.layer_scale_init == 1e-6 and get_config("poolformer_s12").layer_scale_init == 1e-5


@pytest.mark.parametrize("name,count", [("poolformer_s12", 11_915_176), ("poolformer_s24", 21_388_968),
                                        ("poolformer_s36", 30_862_760), ("poolformer_m36", 56_172_520),
                                        ("poolformer_m48", 73_473_448)])
def test_poolformers_have_the_official_parameter_counts(name, count):
    assert n_params(create_model, name) == count


@pytest.mark.parametrize("name", ["poolformer_s12", "poolformerv2_s12", "convformer_s18", "caformer_s18"])
def test_parameter_count_equals_timms(name):
    assert n_params(create_model, name) == n_params(timm.create_model, name)


def test_identityformer_has_poolformerv2s_parameters():
    # pooling and identity mixers have no parameters: the two models differ in the mixer only
    assert n_params(create_model, "identityformer_s12") == n_params(create_model, "poolformerv2_s12")


@pytest.mark.parametrize("name", [n for n in list_models() if n.startswith("cifar_")])
def test_cifar_models_run_on_32x32_with_10_classes(name):
    model = create_model(name).eval()
    assert model.config.grids == [16, 8, 4, 2]
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()


def test_num_classes_and_overrides():
    assert get_config("poolformer_s12").num_classes == 1000
    assert get_config("cifar_poolformer", num_classes=100).num_classes == 100
    config = get_config("poolformer_s12", token_mixer="identity", norm="layer", act="relu")
    assert config.token_mixers == ("identity",) * 4 and config.norm == "layer" and config.act == "relu"
    model = create_model("cifar_poolformer", pool_size=5)
    assert model.stages[0].blocks[0].token_mixer.pool.kernel_size == 5
    hybrid = create_model("cifar_poolformer", stage_mixers=["pooling", "pooling", "attention", "attention"])
    assert isinstance(hybrid.stages[1].blocks[0].token_mixer, Pooling)
    assert isinstance(hybrid.stages[2].blocks[0].token_mixer, Attention)


@pytest.mark.parametrize("call,error,match", [
    (lambda: get_config("polformer_s12"), ValueError, r"'polformer_s12'; did you mean 'poolformer_s12'"),
    (lambda: get_config("poolformer_s12", token_mixer="poolng"), ValueError,
     r"unknown token mixer 'poolng'; did you mean 'pooling'"),
    (lambda: get_config("poolformer_s12", norm="groop"), ValueError, r"'groop'; did you mean 'group'"),
    (lambda: get_config("poolformer_s12", act="gelo"), ValueError, r"'gelo'; did you mean 'gelu'"),
    (lambda: get_config("poolformer_s12", token_mixer="identity", stage_mixers=["pooling"] * 4),
     ValueError, r"token_mixer=.*stage_mixers=.*not both"),
    (lambda: get_config("cifar_attentionformer", pool_size=5), ValueError,
     r"pool_size=5 .*cifar_attentionformer.*'attention'"),
    (lambda: get_config("poolformer_s12", pool_sise=5), TypeError,
     r"unknown override 'pool_sise'; did you mean 'pool_size'"),
    (lambda: get_config("poolformer_s12", stage_mixers=["pooling"] * 3), ValueError,
     r"token_mixers has 3 entries but depths has 4"),
    (lambda: create_model("poolformer_s12", pool_size=4), ValueError, r"odd positive int.*4"),
])
def test_bad_names_and_overrides_name_the_value(call, error, match):
    with pytest.raises(error, match=match):
        call()
