r"""Grad-CAM (Selvaraju et al., ICCV 2017) for MetaFormers, on the output map of any stage.

For class c and a stage's feature map :math:`A \in \mathbb{R}^{C \times H \times W}`:

.. math:: \alpha_k = \frac{1}{HW} \sum_{i,j} \frac{\partial y^c}{\partial A_{k,i,j}}, \qquad
    L^c = \mathrm{ReLU}\Big(\sum_k \alpha_k A_k\Big),

upsampled to the image and scaled to [0, 1]. The paper's Figure shows it on the last stage of
ResNet-50, DeiT-S, ResMLP-S24 and PoolFormer-S24. The upsampling puts each token's value at the
centre of its receptive field: in PoolFormer-S12 the last-stage token i is centred on pixel
1 + 32 i (the stem's padding), while a plain resize puts it at 15.5 + 32 i, 14.5 pixels off.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from .._names import check_range
from ..model import MetaFormer
from .plots import BookFigure, new_figure, to_display
from .receptive_field import analytic_receptive_field


def tokens_to_pixels(maps: torch.Tensor, offset: float, stride: float,
                     size: tuple[int, int]) -> torch.Tensor:
    """Return token maps (B, h, w) resampled bilinearly to pixels (B, H, W), token i at offset + stride * i."""
    check_range("stride", stride, "(0, inf)")
    b, h, w = maps.shape

    def coords(n_pixels: int, n_tokens: int) -> torch.Tensor:
        token = (torch.arange(n_pixels, dtype=maps.dtype, device=maps.device) - offset) / stride
        return token / max(n_tokens - 1, 1) * 2 - 1  # grid_sample's [-1, 1], corners aligned

    ys, xs = torch.meshgrid(coords(size[0], h), coords(size[1], w), indexing="ij")
    grid = torch.stack([xs, ys], -1).expand(b, -1, -1, -1)
    return F.grid_sample(maps[:, None], grid, mode="bilinear", padding_mode="border",
                         align_corners=True)[:, 0]


def grad_cam(model: MetaFormer, images: torch.Tensor, stage: int = -1,
             target: Optional[Union[int, torch.Tensor]] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (maps (B, H, W) in [0, 1] at the images' size, the classes explained (B,)).

    ``target`` is a class index, one per image (B,), or None for each image's predicted class.
    The gradient is taken in eval mode through a forward hook on ``model.stages[stage]``.
    """
    if images.dim() != 4:
        raise ValueError(f"expected images (B, C, H, W), got shape {tuple(images.shape)}")
    check_range("stage", stage, f"[{-len(model.stages)}, {len(model.stages) - 1}]")
    captured = []
    handle = model.stages[stage].register_forward_hook(lambda m, args, out: captured.append(out))
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            logits = model(images.float())
            if target is None:
                target = logits.argmax(1)
            target = torch.as_tensor(target, device=logits.device).expand(len(images))
            for t in target.tolist():
                check_range("target", t, f"[0, {logits.shape[1] - 1}]")
            score = logits.gather(1, target[:, None]).sum()
            (grads,) = torch.autograd.grad(score, captured[0])
    finally:
        handle.remove()
        model.train(was_training)
    activations = captured[0].detach()
    weights = grads.mean((2, 3), keepdim=True)
    cam = F.relu((weights * activations).sum(1))
    field = analytic_receptive_field(model.config)[stage]
    cam = tokens_to_pixels(cam, field.offset, field.stride, tuple(images.shape[2:]))
    peak = cam.flatten(1).max(1).values.clamp_min(1e-12)
    return cam / peak[:, None, None], target.detach()


def plot_grad_cam(models: dict[str, MetaFormer], images: torch.Tensor, stage: int = -1,
                  targets: Optional[Union[int, torch.Tensor]] = None,
                  display_images: Optional[torch.Tensor] = None,
                  class_names: Optional[Sequence[str]] = None, alpha: float = 0.5,
                  title: Optional[str] = None) -> BookFigure:
    """Return one row per image: the image, then each model's Grad-CAM overlaid on it.

    ``images`` (B, 3, H, W) are the models' inputs; ``display_images`` (uint8 or floats) what is
    drawn under the maps, by default the inputs stretched to [0, 1]. Titles give each model's
    explained class (its prediction unless ``targets`` is given).
    """
    if not models:
        raise ValueError("models is empty: pass {name: model}, e.g. {'poolformer': create_model(...)}")
    check_range("alpha", alpha, "[0, 1]")
    shown = display_images if display_images is not None else images
    if len(shown) != len(images):
        raise ValueError(f"display_images has {len(shown)} images but images has {len(images)}")
    for name, model in models.items():
        if class_names is not None and len(class_names) != model.config.num_classes:
            raise ValueError(f"{len(class_names)} class_names given but model {name!r} has "
                             f"{model.config.num_classes} classes")
    results = {name: grad_cam(model, images, stage, targets) for name, model in models.items()}
    fig, axes = new_figure(len(images), 1 + len(models), panel_size=(2.6, 2.6))
    label = (lambda c: class_names[c]) if class_names is not None else (lambda c: f"class {c}")
    mappable = None
    for row in range(len(images)):
        picture = to_display(shown[row])
        axes[row, 0].imshow(picture)
        axes[row, 0].set_title("input")
        for col, (name, (cams, classes)) in enumerate(results.items(), start=1):
            ax = axes[row, col]
            ax.imshow(picture)
            mappable = ax.imshow(cams[row].cpu().numpy(), cmap="jet", alpha=alpha, vmin=0, vmax=1,
                                 extent=(-0.5, picture.shape[1] - 0.5, picture.shape[0] - 0.5, -0.5))
            ax.set_title(f"{name}\n{label(int(classes[row]))}", fontsize=9)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.colorbar(mappable, ax=axes[:, -1].tolist(), shrink=0.8, label="Grad-CAM (peak = 1)")
    stage_name = f"stage {stage % len(next(iter(models.values())).stages) + 1}"
    fig.suptitle(title or f"Grad-CAM on the output of {stage_name}")
    return fig


def cam_centre_of_mass(cam: torch.Tensor) -> tuple[float, float]:
    """Return the (row, col) centre of mass of one (H, W) map."""
    h, w = cam.shape
    total = cam.sum().clamp_min(1e-12)
    rows = (cam.sum(1) * torch.arange(h, dtype=cam.dtype)).sum() / total
    cols = (cam.sum(0) * torch.arange(w, dtype=cam.dtype)).sum() / total
    return float(rows), float(cols)


def planted_object_images(n: int, size: int = 32, object_size: int = 8, seed: int = 0,
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return (images (n, 3, size, size), labels (n,), boxes (n, 4): top, left, bottom, right inclusive).

    Every image is faint noise; in those labelled 1 a bright square is planted at a random
    place (its box is given; label-0 rows get the box of a square that was not drawn). Only the
    square tells class 1 from class 0, so a correct Grad-CAM for class 1 must light it up.
    """
    check_range("n", n, "[1, inf)")
    check_range("size", size, "[1, inf)")
    check_range("object_size", object_size, f"[1, {size}]")
    generator = torch.Generator().manual_seed(seed)
    images = 0.2 * torch.randn(n, 3, size, size, generator=generator)
    labels = torch.arange(n) % 2
    corners = torch.randint(0, size - object_size + 1, (n, 2), generator=generator)
    for image, label, (top, left) in zip(images, labels, corners.tolist()):
        if label:
            image[:, top:top + object_size, left:left + object_size] += 2.0
    boxes = torch.cat([corners, corners + object_size - 1], 1)
    return images, labels, boxes
