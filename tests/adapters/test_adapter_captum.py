"""CaptumAdapter against real Captum on a trained SmallCNN."""

from __future__ import annotations

import pytest
import torch
from captum.attr import (
    Attribution,
    LayerActivation,
    LayerAttribution,
    LayerGradCam,
    LayerGradientXActivation,
    LayerIntegratedGradients,
    NoiseTunnel,
)
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget, ClassifierOutputTarget
from torch import nn

from i2x_plugin.adapters import CaptumAdapter
from i2x_plugin.training.models import SmallCNN


def test_default_is_captum_layergradcam_with_relu(model: SmallCNN, batch) -> None:
    x, y = batch
    out = CaptumAdapter(model, "block3").attribute(x, y)
    expected = LayerGradCam(model, model.block3).attribute(x, target=y, relu_attributions=True)
    assert out.shape == (32, 1, 4, 4) and out.dtype == torch.float32
    assert torch.allclose(out, expected, atol=1e-7)
    assert out.min() >= 0 and out.amax(dim=(1, 2, 3)).min() > 0


def test_relu_can_be_turned_off(model: SmallCNN, batch) -> None:
    x, y = batch
    signed = CaptumAdapter(model, "block3", relu=False).attribute(x, (y + 1) % 10)
    assert signed.min() < 0
    assert torch.allclose(signed, LayerGradCam(model, model.block3).attribute(x, target=(y + 1) % 10), atol=1e-7)


def test_target_forms_agree(model: SmallCNN, batch) -> None:
    x, y = batch
    adapter = CaptumAdapter(model, "block3")
    reference = adapter.attribute(x, y)
    forms = [y.tolist(), tuple(y.tolist()), y, y.numpy(), [ClassifierOutputTarget(int(c)) for c in y]]
    for form in forms:
        assert torch.allclose(adapter.attribute(x, form), reference, atol=1e-7)
    predicted = model(x).argmax(1)
    assert torch.allclose(adapter.attribute(x), adapter.attribute(x, predicted), atol=1e-7)
    assert torch.allclose(adapter.attribute(x, 3), adapter.attribute(x, [3] * 32), atol=1e-7)
    assert torch.allclose(adapter.attribute(x, torch.tensor(3)), adapter.attribute(x, 3), atol=1e-7)


def test_grad_cam_callables_go_through_a_wrapped_forward(model: SmallCNN, batch) -> None:
    x, y = batch
    adapter = CaptumAdapter(model, "block3")
    soft = adapter.attribute(x, [ClassifierOutputSoftmaxTarget(int(c)) for c in y])
    # Same value as Captum on a softmax model (the gradient of the softmax probability).
    softmax_model = nn.Sequential(model, nn.Softmax(dim=1))
    expected = LayerGradCam(softmax_model, model.block3).attribute(x, target=y, relu_attributions=True)
    assert torch.allclose(soft, expected, atol=1e-7)
    single = adapter.attribute(x, ClassifierOutputSoftmaxTarget(2))
    assert torch.allclose(single, adapter.attribute(x, [ClassifierOutputSoftmaxTarget(2)] * 32), atol=1e-7)


def test_callables_with_a_batch_expanding_method_raise(model: SmallCNN, batch) -> None:
    x, y = batch
    adapter = CaptumAdapter(model, "block3", LayerIntegratedGradients, attribute_kwargs={"n_steps": 4})
    assert adapter.attribute(x, y).shape == (32, 1, 4, 4)  # indices are fine
    with pytest.raises(ValueError, match="Pass class indices instead"):
        adapter.attribute(x, [ClassifierOutputSoftmaxTarget(int(c)) for c in y])


def test_multi_channel_methods_are_summed_over_channels(model: SmallCNN, batch) -> None:
    x, y = batch
    activation = CaptumAdapter(model, "block3", LayerActivation).attribute(x, y)
    expected = LayerActivation(model, model.block3).attribute(x).sum(dim=1, keepdim=True)
    assert torch.allclose(activation, expected.clamp_min(0), atol=1e-5)
    gxa = CaptumAdapter(model, "block3", LayerGradientXActivation).attribute(x, y)
    expected = LayerGradientXActivation(model, model.block3).attribute(x, target=y).sum(dim=1, keepdim=True)
    assert gxa.shape == (32, 1, 4, 4) and torch.allclose(gxa, expected.clamp_min(0), atol=1e-6)


def test_upsample_flag_gives_input_size(model: SmallCNN, batch) -> None:
    x, y = batch
    assert CaptumAdapter(model, "block3", upsample=True).attribute(x, y).shape == (32, 1, 8, 8)


class _Tempered(nn.Module):
    """A model with an extra forward argument: logits / temperature."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, temperature: float) -> torch.Tensor:
        return self.net(x) / temperature


def test_additional_forward_args(model: SmallCNN, batch) -> None:
    x, y = batch
    tempered = _Tempered(model)
    halved = CaptumAdapter(tempered, "net.block3").attribute(x, y, additional_forward_args=2.0)
    assert torch.allclose(halved * 2, CaptumAdapter(model, "block3").attribute(x, y), atol=1e-6)
    predicted = CaptumAdapter(tempered, "net.block3").attribute(x, None, additional_forward_args=(2.0,))
    assert predicted.shape == (32, 1, 4, 4)


def test_usable_where_captum_expects_an_attribution(model: SmallCNN, batch) -> None:
    x, y = batch
    adapter = CaptumAdapter(model, "block3")
    assert isinstance(adapter, Attribution) and isinstance(adapter, LayerAttribution)
    assert adapter.has_convergence_delta() is False and adapter.multiplies_by_inputs is False
    assert adapter.forward_func is model and adapter.layer is model.block3
    smooth = NoiseTunnel(adapter).attribute(x[:8], nt_type="smoothgrad", nt_samples=4, stdevs=0.05, target=y[:8])
    assert smooth.shape == (8, 1, 4, 4) and smooth.min() >= 0
    upsampled = LayerAttribution.interpolate(adapter.attribute(x, y), (8, 8), interpolate_mode="bilinear")
    assert upsampled.shape == (32, 1, 8, 8)


def test_rejects_non_layer_methods(model: SmallCNN) -> None:
    from captum.attr import Saliency

    with pytest.raises(TypeError, match="Captum layer attribution class"):
        CaptumAdapter(model, "block3", Saliency)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not set"):
        CaptumAdapter(model, "block3", attribute_kwargs={"target": 1})
