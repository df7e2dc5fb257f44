r"""Pretrained weights: converting the official and timm key layouts to ours, and downloading.

Three layouts name the same PoolFormer tensors differently:

===============================  =====================================  ==============================
ours                             official (sail-sg/poolformer)          timm >= 0.9 (``metaformer.py``)
===============================  =====================================  ==============================
``stem.proj``                    ``patch_embed.proj``                   ``stem.conv``
``stages.i.downsample.proj``     ``network.{2i-1}.proj``                ``stages.i.downsample.conv``
``stages.i.blocks.j.norm1``      ``network.{2i}.j.norm1``               ``stages.i.blocks.j.norm1``
``stages.i.blocks.j.mlp.fc1``    ``network.{2i}.j.mlp.fc1``             ``stages.i.blocks.j.mlp.fc1``
``...layer_scale1.scale``        ``network.{2i}.j.layer_scale_1``       ``...layer_scale1.scale``
``norm``, ``head``               ``norm``, ``head``                     ``head.norm``, ``head.fc``
===============================  =====================================  ==============================

timm's layout also covers MetaFormer Baselines (``res_scale1`` is our ``shortcut1``, a
downsampling ``norm`` our ``pre_norm``, the MLP head's ``head.fc.fc1`` our ``head.fc1``).

The converted weights give exactly the official model. timm's PoolFormer (v1) differs in one
place: its head averages over positions *before* the GroupNorm, ours (like the official code)
normalizes the (C, H, W) map first, so after conversion ``forward_features`` agrees with timm's
but the logits do not.
"""
from __future__ import annotations

import re
import urllib.error
from pathlib import Path
from typing import Callable, Mapping, Optional, Union

import torch

from ._names import unknown_message
from .model import MetaFormer
from .registry import create_model

Rule = tuple[str, Union[str, Callable[[re.Match], str]]]

# Parameters named alike in timm's blocks and ours.
_SAME_IN_BLOCK = "|".join([
    r"norm[12]\.(?:weight|bias)", r"mlp\.fc[12]\.(?:weight|bias)", r"mlp\.act\.(?:scale|bias)",
    r"layer_scale[12]\.scale", r"token_mixer\.(?:qkv|proj|pwconv[12]|dwconv)\.weight",
    r"token_mixer\.random_matrix"])

# (pattern matched against the whole key, replacement): the first matching rule wins.
RULES: dict[str, list[Rule]] = {
    "official": [
        (r"patch_embed\.proj\.(weight|bias)", r"stem.proj.\1"),
        (r"network\.([135])\.proj\.(weight|bias)",
         lambda m: f"stages.{(int(m[1]) + 1) // 2}.downsample.proj.{m[2]}"),
        (r"network\.([0246])\.(\d+)\.(norm[12]|mlp\.fc[12])\.(weight|bias)",
         lambda m: f"stages.{int(m[1]) // 2}.blocks.{m[2]}.{m[3]}.{m[4]}"),
        (r"network\.([0246])\.(\d+)\.layer_scale_([12])",
         lambda m: f"stages.{int(m[1]) // 2}.blocks.{m[2]}.layer_scale{m[3]}.scale"),
        (r"(norm|head)\.(weight|bias)", r"\1.\2"),
    ],
    "timm": [
        (r"stem\.conv\.(weight|bias)", r"stem.proj.\1"),
        (r"stem\.norm\.(weight|bias)", r"stem.norm.\1"),
        (r"stages\.(\d+)\.downsample\.conv\.(weight|bias)", r"stages.\1.downsample.proj.\2"),
        (r"stages\.(\d+)\.downsample\.norm\.(weight|bias)", r"stages.\1.downsample.pre_norm.\2"),
        (r"stages\.(\d+)\.blocks\.(\d+)\.res_scale([12])\.scale", r"stages.\1.blocks.\2.shortcut\3.scale"),
        (r"stages\.(\d+)\.blocks\.(\d+)\.token_mixer\.act1\.(scale|bias)",
         r"stages.\1.blocks.\2.token_mixer.act.\3"),
        (rf"stages\.(\d+)\.blocks\.(\d+)\.({_SAME_IN_BLOCK})", r"stages.\1.blocks.\2.\3"),
        (r"head\.norm\.(weight|bias)", r"norm.\1"),
        (r"head\.fc\.(weight|bias)", r"head.\1"),
        (r"head\.fc\.(fc1|norm|fc2)\.(weight|bias)", r"head.\1.\2"),
    ],
}

EXPECTED = {
    "official": "patch_embed.proj.*, network.{0,2,4,6}.<j>.{norm1,norm2,mlp.fc1,mlp.fc2,"
                "layer_scale_1,layer_scale_2}, network.{1,3,5}.proj.*, norm.*, head.*",
    "timm": "stem.conv.*, stages.<i>.downsample.conv.*, stages.<i>.blocks.<j>.{norm1,norm2,"
            "token_mixer.*,mlp.fc1,mlp.fc2,layer_scale1.scale,res_scale1.scale,...}, head.norm.*, "
            "head.fc.*",
}

RELEASE = "https://github.com/sail-sg/poolformer/releases/download/v1.0"
PRETRAINED = {name: f"{RELEASE}/{name}.pth.tar" for name in
              ("poolformer_s12", "poolformer_s24", "poolformer_s36", "poolformer_m36", "poolformer_m48")}


def _unwrap(checkpoint: Mapping) -> Mapping[str, torch.Tensor]:
    """Return the state dict inside a training checkpoint ({'state_dict': ...} or {'model': ...})."""
    for key in ("state_dict", "model"):
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            return checkpoint[key]
    return checkpoint


def convert_key(key: str, source: str) -> str:
    """Return our name for the parameter ``key`` of a ``source`` ('official' or 'timm') state dict."""
    for pattern, replacement in RULES[source]:
        match = re.fullmatch(pattern, key)
        if match:
            return match.expand(replacement) if isinstance(replacement, str) else replacement(match)
    raise ValueError(f"unrecognized key {key!r} for the {source!r} layout; expected keys like "
                     f"{EXPECTED[source]}")


def convert_state_dict(state_dict: Mapping, source: str) -> dict[str, torch.Tensor]:
    """Return ``state_dict`` (or a checkpoint wrapping it) renamed from ``source`` to our layout."""
    if source not in RULES:
        raise ValueError(unknown_message("source layout", source, RULES))
    converted = {convert_key(k, source): v for k, v in _unwrap(state_dict).items()}
    # timm's CAFormer runs the channel MLP of its attention stages as Linear layers (C_out, C_in);
    # ours is always a 1x1 convolution (C_out, C_in, 1, 1): the same numbers.
    return {k: v[:, :, None, None] if re.search(r"mlp\.fc[12]\.weight$", k) and v.dim() == 2 else v
            for k, v in converted.items()}


def detect_source(state_dict: Mapping) -> Optional[str]:
    """Return 'official', 'timm' or None (already ours) from the stem's key name."""
    keys = _unwrap(state_dict).keys()
    for source, stem in (("official", "patch_embed.proj.weight"), ("timm", "stem.conv.weight"),
                         (None, "stem.proj.weight")):
        if stem in keys:
            return source
    raise ValueError(f"cannot tell the layout of this state dict (first keys: {list(keys)[:3]}): "
                     "expected a stem named patch_embed.proj (official), stem.conv (timm) or "
                     "stem.proj (metaformer_mini)")


def _download(name: str) -> Mapping:
    url = PRETRAINED[name]
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", weights_only=True)
    except (urllib.error.URLError, OSError) as err:
        target = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
        raise RuntimeError(f"could not download the {name} weights from {url} ({err}). Download "
                           f"the file elsewhere and put it at {target}, or pass "
                           f"load_pretrained({name!r}, path='/path/to/{target.name}')") from err


def load_pretrained(name: str, path: Optional[Union[str, Path]] = None) -> MetaFormer:
    """Return model ``name`` in eval mode with the official ImageNet weights (or those at ``path``).

    Without ``path`` the release file is fetched once into torch.hub's cache. ``path`` names a
    local checkpoint in the official, timm or our own layout (detected from its keys); with it,
    any model of ``list_models()`` can be loaded.
    """
    if path is None and name not in PRETRAINED:
        raise ValueError(unknown_message("model with pretrained weights", name, PRETRAINED)
                         + " (for another model, pass path= to a checkpoint file)")
    model = create_model(name)
    state_dict = _download(name) if path is None else torch.load(path, map_location="cpu",
                                                                 weights_only=True)
    source = detect_source(state_dict)
    state_dict = dict(_unwrap(state_dict)) if source is None else convert_state_dict(state_dict, source)
    model.load_state_dict(state_dict, strict=True)
    return model.eval()
