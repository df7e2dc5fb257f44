"""Tests for metaformer_mini/weights.py: key layouts, timm equivalence, loading (never the network)."""
import re
import urllib.error

import pytest
import timm
import torch

from metaformer_mini import create_model
from metaformer_mini.weights import PRETRAINED, convert_state_dict, load_pretrained


def to_official(state_dict: dict) -> dict:
    """Our PoolFormer keys in the sail-sg release layout, written independently of weights.py."""
    out = {}
    for key, value in state_dict.items():
        key = key.replace("stem.proj", "patch_embed.proj")
        key = re.sub(r"stages\.(\d)\.downsample\.proj", lambda m: f"network.{2 * int(m[1]) - 1}.proj", key)
        key = re.sub(r"stages\.(\d)\.blocks\.", lambda m: f"network.{2 * int(m[1])}.", key)
        key = re.sub(r"layer_scale(\d)\.scale", r"layer_scale_\1", key)
        out[key] = value
    return out


def to_timm(state_dict: dict) -> dict:
    """Our PoolFormer keys in timm's layout, written independently of weights.py."""
    out = {}
    for key, value in state_dict.items():
        key = re.sub(r"^(stem|stages\.\d\.downsample)\.proj", r"\1.conv", key)
        key = re.sub(r"^(norm|head)\.", lambda m: "head.norm." if m[1] == "norm" else "head.fc.", key)
        out[key] = value
    return out


@pytest.fixture(scope="module")
def ours() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("poolformer_s12").eval()


@pytest.mark.parametrize("source", ["official", "timm"])
def test_layouts_round_trip(ours, source):
    theirs = (to_official if source == "official" else to_timm)(ours.state_dict())
    assert ("network.5.proj.weight" if source == "official" else "stages.3.downsample.conv.weight") in theirs
    if source == "timm":
        with torch.device("meta"):
            assert theirs.keys() == timm.create_model("poolformer_s12").state_dict().keys()
    converted = convert_state_dict({"state_dict": theirs}, source)
    assert converted.keys() == ours.state_dict().keys()
    for key, value in ours.state_dict().items():
        assert torch.equal(converted[key], value), key
    create_model("poolformer_s12").load_state_dict(converted, strict=True)


def test_timm_poolformer_features_agree_and_only_the_head_order_differs():
    torch.manual_seed(1)
    theirs = timm.create_model("poolformer_s12").eval()
    with torch.no_grad():  # random weights everywhere, layer scales and norms included
        for p in theirs.parameters():
            p.copy_(torch.randn_like(p) * 0.05 if p.dim() > 1 else torch.rand_like(p) + 0.5)
    model = create_model("poolformer_s12").eval()
    model.load_state_dict(convert_state_dict({"model": theirs.state_dict()}, "timm"), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model.forward_features(x)
        # same weights, same maths, to float32 rounding at the features' scale (timm's 1x1
        # convolutions and our token matrix products add up in different orders)
        scale = features.abs().max()
        assert (features - theirs.forward_features(x)).abs().max() <= 1e-5 * scale
        logits, timm_logits = model.forward_head(features), theirs.forward_head(features)
        # timm pools first, then normalizes the pooled (B, C, 1, 1) vector with GroupNorm
        pooled_first = model.head(model.norm(features.mean((2, 3), keepdim=True)).flatten(1))
    assert (pooled_first - timm_logits).abs().max() <= 1e-5
    assert (logits - timm_logits).abs().max() > 1e-2


@pytest.mark.parametrize("name", ["poolformerv2_s12", "convformer_s18", "caformer_s18"])
def test_timm_layout_of_metaformer_baselines_matches_ours(name):
    with torch.device("meta"):  # shapes only
        converted = convert_state_dict(timm.create_model(name).state_dict(), "timm")
        expected = create_model(name).state_dict()
    assert {k: v.shape for k, v in converted.items()} == {k: v.shape for k, v in expected.items()}


def test_unknown_source_and_keys_are_named():
    with pytest.raises(ValueError, match=r"unknown source layout 'timmm'; did you mean 'timm'"):
        convert_state_dict({}, "timmm")
    with pytest.raises(ValueError, match=r"'network\.0\.0\.extra'.*'official'.*patch_embed\.proj"):
        convert_state_dict({"network.0.0.extra": torch.zeros(1)}, "official")
    with pytest.raises(ValueError, match=r"'stem\.proj\.weight'.*'timm'.*stem\.conv"):
        convert_state_dict({"stem.proj.weight": torch.zeros(1)}, "timm")


def offline(*args, **kwargs):
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


def test_offline_download_says_where_to_put_the_file(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(RuntimeError) as err:
        load_pretrained("poolformer_s12")
    message = str(err.value)
    assert PRETRAINED["poolformer_s12"] in message
    assert str(tmp_path / "checkpoints" / "poolformer_s12.pth.tar") in message
    assert "path=" in message


def test_download_goes_through_torch_hub(monkeypatch, ours):
    calls = []

    def fake_download(url, **kwargs):
        calls.append(url)
        return to_official(ours.state_dict())
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    model = load_pretrained("poolformer_s12")
    assert calls == ["https://github.com/sail-sg/poolformer/releases/download/v1.0/poolformer_s12.pth.tar"]
    assert not model.training
    torch.testing.assert_close(model.stem.proj.weight, ours.stem.proj.weight)


@pytest.mark.parametrize("layout", ["official", "timm", "ours"])
def test_local_file_in_any_layout(tmp_path, ours, layout):
    state = {"official": to_official, "timm": to_timm, "ours": dict}[layout](ours.state_dict())
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": state}, path)
    model = load_pretrained("poolformer_s12", path=path)
    torch.testing.assert_close(model.head.weight, ours.head.weight)
    torch.testing.assert_close(model.stages[3].blocks[1].layer_scale2.scale,
                               ours.stages[3].blocks[1].layer_scale2.scale)


def test_unknown_names_list_the_models_with_weights():
    with pytest.raises(ValueError, match=r"'poolformer_s13'.*poolformer_m36.*poolformer_s12.*path="):
        load_pretrained("poolformer_s13")
    with pytest.raises(ValueError, match=r"'caformer_s18'"):
        load_pretrained("caformer_s18")
