"""Tests for metaformer_mini/analysis/gradcam.py: Grad-CAM's formula and its peak on a planted object."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from metaformer_mini import create_model  # noqa: E402
from metaformer_mini.analysis.gradcam import (cam_centre_of_mass, grad_cam,  # noqa: E402
                                              planted_object_images, plot_grad_cam,
                                              tokens_to_pixels)


@pytest.fixture(scope="module")
def object_detector():
    """An IdentityFormer (no token mixing, so features stay local) with a linear head fitted to
    tell 64x64 images holding a bright 16x16 square (class 1) from plain noise (class 0)."""
    torch.manual_seed(0)
    model = create_model("cifar_identityformer", num_classes=2, dims=(16, 32, 32, 32),
                         depths=(1, 1, 1, 1), img_size=64).eval()
    images, labels, _ = planted_object_images(256, size=64, object_size=16, seed=0)
    with torch.no_grad():
        features = model.norm(model.forward_features(images)).mean((2, 3))
    optimizer = torch.optim.Adam(model.head.parameters(), lr=0.1)
    for _ in range(100):
        optimizer.zero_grad()
        F.cross_entropy(model.head(features), labels).backward()
        optimizer.step()
    return model


def test_planted_object_images_hold_the_square_in_their_box():
    images, labels, boxes = planted_object_images(6, size=20, object_size=5, seed=3)
    assert labels.tolist() == [0, 1, 0, 1, 0, 1]
    for image, label, (top, left, bottom, right) in zip(images, labels, boxes.tolist()):
        assert (bottom - top, right - left) == (4, 4)
        inside = image[:, top:bottom + 1, left:right + 1].mean()
        assert (inside > 1.5) == bool(label)
    with pytest.raises(ValueError, match="object_size"):
        planted_object_images(2, size=8, object_size=9)


@pytest.mark.parametrize("stage", [0, 1, 2])
def test_cam_peaks_on_the_planted_object(object_detector, stage):
    images, labels, boxes = planted_object_images(16, size=64, object_size=16, seed=1)
    with torch.no_grad():
        assert (object_detector(images).argmax(1) == labels).float().mean() >= 0.9
    cams, classes = grad_cam(object_detector, images[labels == 1], stage=stage, target=1)
    assert classes.tolist() == [1] * 8
    for cam, (top, left, bottom, right) in zip(cams, boxes[labels == 1].tolist()):
        row, col = divmod(int(cam.argmax()), 64)
        assert top <= row <= bottom and left <= col <= right
        inside = torch.zeros_like(cam, dtype=torch.bool)
        inside[top:bottom + 1, left:right + 1] = True
        assert cam[inside].mean() > 3 * cam[~inside].mean()


def test_last_stage_cam_is_brighter_on_the_object(object_detector):
    images, labels, boxes = planted_object_images(16, size=64, object_size=16, seed=2)
    cams, _ = grad_cam(object_detector, images[labels == 1], stage=-1, target=1)
    for cam, (top, left, bottom, right) in zip(cams, boxes[labels == 1].tolist()):
        inside = torch.zeros_like(cam, dtype=torch.bool)
        inside[top:bottom + 1, left:right + 1] = True
        assert cam[inside].mean() > cam[~inside].mean()
        centre = cam_centre_of_mass(cam)
        assert abs(centre[0] - (top + bottom) / 2) < 16 and abs(centre[1] - (left + right) / 2) < 16


def test_last_stage_cam_matches_the_closed_form():
    # With no head norm, logit_t = W_t . mean_ij A_ij + b, so the weights are W_t / HW and
    # the map is ReLU(sum_c W_tc A_c), scaled to a peak of 1. The 3x3 stride-2 stem (padding 1)
    # centres stage-4 token i on pixel 16 i; the map is linear between those pixels.
    torch.manual_seed(0)
    model = create_model("cifar_poolformer", dims=(8, 8, 8, 16), depths=(1, 1, 1, 1), img_size=64)
    model.norm = nn.Identity()
    images = torch.randn(3, 3, 64, 64)
    targets = torch.tensor([2, 5, 7])
    cams, classes = grad_cam(model, images, stage=3, target=targets)
    with torch.no_grad():
        features = model.forward_features(images)
        raw = F.relu(torch.einsum("bc,bchw->bhw", model.head.weight[targets], features))
        raw = raw / raw.flatten(1).max(1).values[:, None, None]
    assert torch.equal(classes, targets)
    assert torch.allclose(cams[:, ::16, ::16], raw, atol=1e-5)
    assert torch.allclose(cams[:, 8, 16], (raw[:, 0, 1] + raw[:, 1, 1]) / 2, atol=1e-5)
    assert torch.allclose(cams[:, 50:, 50:], raw[:, 3:, 3:].expand(-1, 14, 14), atol=1e-5)  # border


def test_tokens_to_pixels_places_tokens_at_their_field_centres():
    maps = torch.tensor([[[0.0, 4.0], [8.0, 12.0]]])
    pixels = tokens_to_pixels(maps, offset=1.0, stride=4.0, size=(8, 8))
    assert pixels[0, 1, 1] == 0.0 and pixels[0, 5, 5] == 12.0 and pixels[0, 1, 5] == 4.0
    assert pixels[0, 1, 3] == pytest.approx(2.0)  # halfway between tokens (0, 0) and (0, 1)
    assert pixels[0, 0, 0] == 0.0 and pixels[0, 7, 7] == 12.0  # beyond the outer tokens: border


def test_grad_cam_explains_the_prediction_and_cleans_up():
    torch.manual_seed(0)
    model = create_model("cifar_poolformer", dims=(8, 8, 8, 8), depths=(1, 1, 1, 1)).train()
    images = torch.randn(4, 3, 32, 32)
    cams, classes = grad_cam(model, images, stage=1)
    with torch.no_grad():
        assert torch.equal(classes, model.eval()(images).argmax(1))
    model.train()
    grad_cam(model, images, stage=1)
    assert model.training and not model.stages[1]._forward_hooks
    assert cams.shape == (4, 32, 32) and float(cams.min()) >= 0
    assert torch.allclose(cams.flatten(1).max(1).values, torch.ones(4))
    with pytest.raises(ValueError, match=r"stage must be in \[-4, 3\], got 5"):
        grad_cam(model, images, stage=5)
    with pytest.raises(ValueError, match="B, C, H, W"):
        grad_cam(model, images[0])


def test_plot_grad_cam_shows_each_model_on_each_image(object_detector):
    images, labels, _ = planted_object_images(2, size=64, object_size=16, seed=4)
    fig = plot_grad_cam({"a": object_detector, "b": object_detector}, images, stage=1,
                        class_names=["noise", "square"])
    titles = [ax.get_title() for ax in fig.axes[:6]]
    assert titles[0] == "input" and titles[1].startswith("a\n") and titles[2].startswith("b\n")
    assert titles[1].split("\n")[1] in ("noise", "square")
    assert len(fig.axes) == 2 * 3 + 1  # a grid of panels and one colorbar
    with pytest.raises(ValueError, match="3 class_names given but model 'a' has 2 classes"):
        plot_grad_cam({"a": object_detector}, images, class_names=["x", "y", "z"])
    with pytest.raises(ValueError, match="display_images"):
        plot_grad_cam({"a": object_detector}, images, display_images=images[:1])


TINY_MODEL = create_model("cifar_poolformer", dims=(8, 8, 8, 8), depths=(1, 1, 1, 1)).eval()
TINY_IMAGES = torch.randn(2, 3, 32, 32)


@pytest.mark.parametrize("call, message", [
    (lambda: tokens_to_pixels(torch.zeros(1, 2, 2), 0.5, 0, (4, 4)), "stride must be positive, got 0"),
    (lambda: grad_cam(TINY_MODEL, TINY_IMAGES, stage=-5), r"stage must be in \[-4, 3\], got -5"),
    (lambda: grad_cam(TINY_MODEL, TINY_IMAGES, target=10), r"target must be in \[0, 9\], got 10"),
    (lambda: grad_cam(TINY_MODEL, TINY_IMAGES, target=torch.tensor([0, -1])),
     r"target must be in \[0, 9\], got -1"),
    (lambda: plot_grad_cam({"a": TINY_MODEL}, TINY_IMAGES, alpha=1.5), r"alpha must be in \[0, 1\], got 1.5"),
    (lambda: planted_object_images(0), "n must be 1 or more, got 0"),
    (lambda: planted_object_images(2, size=0), "size must be 1 or more, got 0"),
    (lambda: planted_object_images(2, size=8, object_size=0), r"object_size must be in \[1, 8\], got 0"),
])
def test_out_of_range_arguments_name_the_argument_value_and_range(call, message):
    with pytest.raises(ValueError, match=message):
        call()
