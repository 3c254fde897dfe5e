"""GradCamAdapter against real pytorch-grad-cam, and its agreement with Captum."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import Attribution, NoiseTunnel
from pytorch_grad_cam import (
    EigenCAM,
    FullGrad,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
    ShapleyCAM,
    XGradCAM,
)
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget, ClassifierOutputTarget
from torch import nn

from i2x_plugin.adapters import CaptumAdapter, GradCamAdapter, normalize, to_gradcam_numpy, upsample_to
from i2x_plugin.training.models import SmallCNN


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.corrcoef(a.reshape(-1).numpy(), b.reshape(-1).numpy())[0, 1])


def test_agrees_with_captum_layergradcam(trained) -> None:
    """The acceptance check: same maps after the same normalisation, on 300 real digits."""
    x, y = trained.images[:300], trained.labels[:300]
    captum_maps = CaptumAdapter(trained.model, "block3").attribute(x, y)
    gradcam_maps = GradCamAdapter(trained.model, "block3").attribute(x, y)
    for mode in ("minmax", "max"):
        r = _pearson(normalize(captum_maps, mode), normalize(gradcam_maps, mode))
        assert r >= 0.99, f"{mode}: Pearson r = {r:.4f}"
    assert torch.allclose(captum_maps, gradcam_maps, atol=1e-5, rtol=1e-4)  # even raw scales agree


def test_raw_maps_match_grad_cams_own_output_after_its_scaling(model: SmallCNN, batch) -> None:
    """grad-cam's CAM = min-max(resize(cam)); ours resized and min-max normalised must equal it."""
    x, y = batch
    raw = GradCamAdapter(model, "block3").attribute(x, y)
    assert raw.shape == (32, 1, 4, 4)
    assert not torch.allclose(raw.amax(dim=(1, 2, 3)), torch.ones(32), atol=0.05)  # raw, not [0, 1]-scaled
    with GradCAM(model, [model.block3]) as cam:
        theirs = cam(x, [ClassifierOutputTarget(int(c)) for c in y])
    ours = to_gradcam_numpy(normalize(upsample_to(raw, (8, 8)), "minmax"))
    assert ours.shape == theirs.shape == (32, 8, 8)
    assert np.allclose(ours, theirs, atol=1e-4)


def test_target_forms_agree(model: SmallCNN, batch) -> None:
    x, y = batch
    adapter = GradCamAdapter(model, "block3")
    reference = adapter.attribute(x, y)
    for form in (y.tolist(), tuple(y.tolist()), y, [ClassifierOutputTarget(int(c)) for c in y]):
        assert torch.allclose(adapter.attribute(x, form), reference, atol=1e-7)
    assert torch.allclose(adapter.attribute(x), adapter.attribute(x, model(x).argmax(1)), atol=1e-7)
    assert torch.allclose(adapter.attribute(x, 5), adapter.attribute(x, [5] * 32), atol=1e-7)
    soft = adapter.attribute(x, [ClassifierOutputSoftmaxTarget(int(c)) for c in y])
    soft_captum = CaptumAdapter(model, "block3").attribute(x, [ClassifierOutputSoftmaxTarget(int(c)) for c in y])
    assert torch.allclose(soft, soft_captum, atol=1e-6)


@pytest.mark.parametrize(
    "method", [GradCAM, GradCAMPlusPlus, XGradCAM, HiResCAM, LayerCAM, EigenCAM, ScoreCAM, ShapleyCAM]
)
def test_any_single_layer_basecam_gives_raw_layer_maps(model: SmallCNN, batch, method, hooks_of) -> None:
    """The method's own map, before grad-cam scales it: scaled as grad-cam does, it is grad-cam's output."""
    x, y = batch[0][:4], (batch[1][:4] + 1) % 10  # not the predicted class: a target that is dropped shows
    out = GradCamAdapter(model, "block3", method).attribute(x, y)
    assert out.shape == (4, 1, 4, 4) and out.min() >= 0 and torch.isfinite(out).all()
    assert hooks_of(model) == {}
    with method(model, [model.block3]) as cam:
        theirs = cam(x, [ClassifierOutputTarget(int(c)) for c in y])
    ours = to_gradcam_numpy(normalize(upsample_to(out, (8, 8)), "minmax"))
    assert np.allclose(ours, theirs, atol=1e-4)


def test_hires_cam_raw_values(model: SmallCNN, batch) -> None:
    """HiResCAM = sum_c(grad * activation), computed here by hand from the layer."""
    x, y = batch
    feats = model.block3(model.block2(model.block1(x))).detach().requires_grad_(True)
    score = model.head(feats).gather(1, y[:, None]).sum()
    (grad,) = torch.autograd.grad(score, feats)
    expected = (grad * feats).sum(dim=1, keepdim=True).clamp_min(0)
    assert torch.allclose(GradCamAdapter(model, "block3", HiResCAM).attribute(x, y), expected, atol=1e-6)


def test_multi_layer_methods_and_non_cams_are_refused(model: SmallCNN) -> None:
    with pytest.raises(ValueError, match="FullGrad overrides .*no single-layer map"):
        GradCamAdapter(model, "block3", FullGrad)
    with pytest.raises(TypeError, match="BaseCAM subclass"):
        GradCamAdapter(model, "block3", nn.Conv2d)  # type: ignore[arg-type]


def test_additional_forward_args_and_multi_inputs(model: SmallCNN, batch) -> None:
    x, y = batch

    class Tempered(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def forward(self, images: torch.Tensor, temperature: float) -> torch.Tensor:
            return self.net(images) / temperature

    halved = GradCamAdapter(Tempered(), "net.block3").attribute(x, y, additional_forward_args=2.0)
    assert torch.allclose(halved * 2, GradCamAdapter(model, "block3").attribute(x, y), atol=1e-6)
    with pytest.raises(ValueError, match="one input tensor.*additional_forward_args"):
        GradCamAdapter(model, "block3").attribute((x, x), y)


def test_usable_where_captum_expects_an_attribution(model: SmallCNN, batch) -> None:
    x, y = batch
    adapter = GradCamAdapter(model, "block3")
    assert isinstance(adapter, Attribution)
    assert adapter.has_convergence_delta() is False and adapter.multiplies_by_inputs is False
    smooth = NoiseTunnel(adapter).attribute(x[:8], nt_type="smoothgrad_sq", nt_samples=3, stdevs=0.05, target=y[:8])
    assert smooth.shape == (8, 1, 4, 4) and smooth.min() >= 0


def test_does_not_leave_grad_cam_state_or_parameter_grads(model: SmallCNN, batch, hooks_of) -> None:
    x, y = batch
    model.train()
    GradCamAdapter(model, "block3").attribute(x, y)
    assert model.training, "BaseCAM puts the model in eval mode; the adapter must restore it"
    assert all(p.grad is None for p in model.parameters())
    assert hooks_of(model) == {}
