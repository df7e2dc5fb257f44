"""Tests for metaformer_mini/model.py: stages, head, drop-path schedule and input checks."""
import pytest
import torch

from metaformer_mini import MetaFormer, MetaFormerConfig, create_model


@pytest.fixture(scope="module")
def s12() -> MetaFormer:
    torch.manual_seed(0)
    return create_model("poolformer_s12").eval()


@pytest.fixture(scope="module")
def cifar() -> MetaFormer:
    torch.manual_seed(0)
    return create_model("cifar_poolformer").eval()


def test_stage_maps_at_224(s12):
    with torch.no_grad():
        maps = s12.forward_stages(torch.randn(1, 3, 224, 224))
    assert [tuple(m.shape) for m in maps] == [(1, 64, 56, 56), (1, 128, 28, 28), (1, 320, 14, 14),
                                              (1, 512, 7, 7)]
    assert s12.config.grids == [56, 28, 14, 7] and s12.config.min_img_size == 32


def test_stage_maps_for_cifar_and_forward_is_head_of_features(cifar):
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        maps = cifar.forward_stages(x)
        assert [tuple(m.shape) for m in maps] == [(2, 32, 16, 16), (2, 64, 8, 8), (2, 128, 4, 4),
                                                  (2, 256, 2, 2)]
        torch.testing.assert_close(cifar.forward_features(x), maps[-1])
        torch.testing.assert_close(cifar(x), cifar.forward_head(maps[-1]))
    assert cifar(x).shape == (2, 10)


def test_poolformer_head_normalizes_then_pools(cifar):
    torch.manual_seed(0)
    features = torch.randn(2, 256, 2, 2) * 3 + 1
    mean = features.mean((1, 2, 3), keepdim=True)
    var = features.var((1, 2, 3), unbiased=False, keepdim=True)
    normed = (features - mean) / torch.sqrt(var + 1e-5) * cifar.norm.weight.view(1, -1, 1, 1) \
        + cifar.norm.bias.view(1, -1, 1, 1)
    expected = normed.mean((2, 3)) @ cifar.head.weight.T + cifar.head.bias
    with torch.no_grad():
        torch.testing.assert_close(cifar.forward_head(features), expected)


def test_drop_path_rate_rises_linearly_over_all_blocks():
    model = create_model("cifar_poolformer", depths=(2, 2, 6, 2), drop_path_rate=0.22)
    rates = [block.drop_path.p for stage in model.stages for block in stage.blocks]
    assert len(rates) == 12
    torch.testing.assert_close(torch.tensor(rates), torch.linspace(0, 0.22, 12))


def test_hybrid_stage_mixers_build_per_stage():
    model = create_model("cifar_poolformer", stage_mixers=["pooling", "pooling", "attention", "identity"])
    kinds = [type(stage.blocks[0].token_mixer).__name__ for stage in model.stages]
    assert kinds == ["Pooling", "Pooling", "Attention", "Identity"]


@pytest.mark.parametrize("shape,match", [
    ((1, 1, 32, 32), r"expected 3 input channels, got 1"),
    ((1, 3, 8, 8), r"input 8x8 is too small.*at least 16x16"),
    ((3, 32, 32), r"4-D batch.*got shape \(3, 32, 32\)"),
    ((1, 1, 3, 32, 32), r"got shape \(1, 1, 3, 32, 32\)"),
])
def test_bad_inputs_name_the_value(cifar, shape, match):
    with pytest.raises(ValueError, match=match):
        cifar(torch.zeros(shape))


def test_s12_too_small_and_not_a_tensor(s12):
    with pytest.raises(ValueError, match=r"input 16x16 is too small.*at least 32x32"):
        s12(torch.zeros(1, 3, 16, 16))
    with pytest.raises(TypeError, match=r"got list"):
        s12([[0.0]])


def test_grid_mixers_fix_the_input_size():
    model = create_model("cifar_mlpformer")
    with pytest.raises(ValueError, match=r"spatial_mlp mixer fixes the input to 32x32, got 64x64"):
        model(torch.zeros(1, 3, 64, 64))


@pytest.mark.parametrize("changes,match", [
    (dict(dims=(64, 128)), r"dims has 2 entries but depths has 4"),
    (dict(token_mixers=("pooling", "pooling", "pooling", "maxpool")), r"'maxpool'"),
    (dict(norm="batchnorm"), r"unknown norm 'batchnorm'; did you mean 'batch'"),
    (dict(act="swish"), r"unknown activation 'swish'"),
    (dict(img_size=16), r"img_size=16 is too small"),
    (dict(depths=(2, 0, 6, 2)), r"depths\[1\] must be 1 or more, got 0"),
    (dict(dims=(64, 128, 320.0, 512)), r"dims\[2\] must be an int, got 320.0"),
    (dict(pool_size=4), r"pool_size must be an odd positive int .* got 4"),
])
def test_bad_configs_name_the_value(changes, match):
    with pytest.raises(ValueError, match=match):
        MetaFormerConfig(**changes)


def test_config_to_dict_is_plain_data():
    data = MetaFormerConfig().to_dict()
    assert data["depths"] == [2, 2, 6, 2] and data["token_mixers"] == ["pooling"] * 4
    assert MetaFormerConfig(**data) == MetaFormerConfig()


@pytest.mark.parametrize("override, message", [
    ({"mlp_ratio": 0}, "mlp_ratio must be positive, got 0"),
    ({"drop_path_rate": 1.0}, r"drop_path_rate must be in \[0, 1\), got 1.0"),
    ({"head_dropout": -0.1}, r"head_dropout must be in \[0, 1\), got -0.1"),
    ({"in_chans": 0}, "in_chans must be 1 or more, got 0"),
    ({"num_classes": 0}, "num_classes must be 1 or more, got 0"),
    ({"layer_scale_init": -1e-5}, "layer_scale_init must be 0 or more, got -1e-05"),
    ({"res_scale_init": (None, None, -1.0, 1.0)}, r"res_scale_init\[2\] must be 0 or more, got -1.0"),
    ({"dims": (64, 0, 320, 512)}, r"dims\[1\] must be 1 or more, got 0"),
    ({"img_size": 0}, "img_size=0 is too small"),
    ({"stem": (3, 0, 1)}, r"stem=\(kernel, stride, padding\) needs .* got \(3, 0, 1\)"),
    ({"downsample": (3, 2, 3)}, r"downsample=\(kernel, stride, padding\) needs .* got \(3, 2, 3\)"),
])
def test_out_of_range_model_arguments_name_the_argument_value_and_range(override, message):
    with pytest.raises(ValueError, match=message):
        create_model("poolformer_s12", **override)
