"""The shared adapter contract: layers, targets, normalisation, state, hooks, errors, memory."""

from __future__ import annotations

import copy
import gc
import tracemalloc
import warnings

import numpy as np
import pytest
import torch
from captum.attr import LayerGradCam
from pytorch_grad_cam import GradCAMPlusPlus
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget, ClassifierOutputTarget

from i2x_plugin.adapters import CaptumAdapter, GradCamAdapter, build_adapter
from i2x_plugin.adapters.base import SaliencyAdapter, make_explain_func, resolve_layer
from i2x_plugin.adapters.maps import SaliencyMaps, normalize, to_gradcam_numpy, upsample_to
from i2x_plugin.adapters.targets import normalize_targets
from i2x_plugin.training.models import SmallCNN

KINDS = ["captum", "gradcam"]


# ----------------------------------------------------------------------------- layers
def test_layer_by_name_and_by_module(model: SmallCNN) -> None:
    assert resolve_layer(model, "block3") == (model.block3, "block3")
    assert resolve_layer(model, model.block3) == (model.block3, "block3")
    assert resolve_layer(model, "block3.0") == (model.block3[0], "block3.0")
    adapter = CaptumAdapter(model, model.block3[0])
    assert adapter.layer is model.block3[0] and adapter.layer_name == "block3.0"


def test_unknown_layer_name_suggests_close_names(model: SmallCNN) -> None:
    with pytest.raises(ValueError, match=r"'blok3' not found.*Did you mean 'block3'"):
        CaptumAdapter(model, "blok3")


def test_layer_from_another_model_is_refused(model: SmallCNN) -> None:
    with pytest.raises(ValueError, match="not a submodule"):
        GradCamAdapter(model, SmallCNN().block3)


@pytest.mark.parametrize("kind", KINDS)
def test_non_spatial_layer_is_refused_at_first_call(model: SmallCNN, batch, kind: str, hooks_of) -> None:
    x, y = batch
    adapter = build_adapter(kind, model, "head.1")  # Flatten: (N, 64)
    with pytest.raises(ValueError, match=r"'head\.1'.*not a 4-D \(N, C, h, w\) spatial map.*pick a conv"):
        adapter.attribute(x, y)
    assert hooks_of(model) == {}


# ----------------------------------------------------------------------------- targets
def test_target_forms_normalise_to_one_per_sample() -> None:
    n = 4
    expected = torch.tensor([3, 1, 4, 1])
    for form in ([3, 1, 4, 1], (3, 1, 4, 1), expected, expected.numpy(), [ClassifierOutputTarget(int(c)) for c in expected]):
        assert torch.equal(normalize_targets(form, n).indices, expected)
    for single in (7, torch.tensor(7), torch.tensor([7]), ClassifierOutputTarget(7)):
        assert torch.equal(normalize_targets(single, n).indices, torch.full((n,), 7))
    assert normalize_targets(None, n).predicted
    soft = normalize_targets([ClassifierOutputSoftmaxTarget(c) for c in range(n)], n)
    assert soft.indices is None and len(soft.callables) == n
    mixed = normalize_targets([0, ClassifierOutputSoftmaxTarget(1), 2, 3], n)
    assert len(mixed.as_callables()) == n


@pytest.mark.parametrize("bad", [[1, 2, 3], torch.tensor([1, 2]), [ClassifierOutputTarget(1)] * 5])
def test_target_length_mismatch_raises(bad) -> None:
    with pytest.raises(ValueError, match=r"entries but the batch has 4 samples"):
        normalize_targets(bad, 4)


def test_bad_target_types_raise() -> None:
    with pytest.raises(TypeError, match="integer tensor"):
        normalize_targets(torch.tensor([0.5, 1.0]), 2)
    with pytest.raises(ValueError, match="negative"):
        normalize_targets([0, -1], 2)
    with pytest.raises(TypeError, match="Unsupported target"):
        normalize_targets(1.5, 2)


@pytest.mark.parametrize("kind", KINDS)
def test_target_out_of_range_names_the_number_of_classes(model: SmallCNN, batch, kind: str, hooks_of) -> None:
    x, y = batch
    adapter = build_adapter(kind, model, "block3")
    with pytest.raises(ValueError, match=r"target class 10 is out of range: the model has 10 classes"):
        adapter.attribute(x, torch.full_like(y, 10))
    assert hooks_of(model) == {}


@pytest.mark.parametrize("kind", KINDS)
def test_target_length_mismatch_raises_in_attribute(model: SmallCNN, batch, kind: str) -> None:
    x, y = batch
    with pytest.raises(ValueError, match="31 entries but the batch has 32 samples"):
        build_adapter(kind, model, "block3").attribute(x, y[:31])


# ----------------------------------------------------------------------------- input errors
@pytest.mark.parametrize("kind", KINDS)
def test_empty_batch_raises(model: SmallCNN, kind: str) -> None:
    with pytest.raises(ValueError, match=r"empty batch.*at least one image"):
        build_adapter(kind, model, "block3").attribute(torch.zeros(0, 1, 8, 8))


@pytest.mark.parametrize("kind", KINDS)
def test_integer_images_raise(model: SmallCNN, batch, kind: str) -> None:
    x, _ = batch
    with pytest.raises(TypeError, match=r"dtype torch.uint8.*inputs.float\(\)"):
        build_adapter(kind, model, "block3").attribute((x * 255).to(torch.uint8))


@pytest.mark.parametrize("kind", KINDS)
def test_model_and_inputs_on_different_devices_raise(model: SmallCNN, kind: str) -> None:
    other = "cuda" if torch.cuda.is_available() else "meta"
    x = torch.zeros(2, 1, 8, 8, device=other)
    with pytest.raises(ValueError, match=rf"model is on cpu but the inputs are on {other}"):
        build_adapter(kind, model, "block3").attribute(x)


# ----------------------------------------------------------------------------- state and hooks
@pytest.mark.parametrize("method", ["LayerGradCam", "LayerIntegratedGradients", "GradCAM", "ShapleyCAM"])
def test_model_state_is_restored(model: SmallCNN, batch, method: str, hooks_of) -> None:
    x, y = batch
    kind = "captum" if method.startswith("Layer") else "gradcam"
    kwargs = {"attribute_kwargs": {"n_steps": 4}} if method == "LayerIntegratedGradients" else {}
    adapter = build_adapter(kind, model, "block3", method, **kwargs)
    model.train()
    model.block3[1].eval()  # mixed modes survive too
    model.block1[0].weight.requires_grad_(False)  # a frozen parameter
    marker = torch.full_like(model.head[2].weight, 0.5)
    model.head[2].weight.grad = marker  # an optimiser's pending gradient
    modes = {name: m.training for name, m in model.named_modules()}
    flags = {name: p.requires_grad for name, p in model.named_parameters()}

    out = adapter.attribute(x, y)
    assert out.shape == (32, 1, 4, 4)
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert {name: p.requires_grad for name, p in model.named_parameters()} == flags
    assert model.head[2].weight.grad is marker
    assert all(p.grad is None for name, p in model.named_parameters() if name != "head.2.weight")
    assert hooks_of(model) == {}


@pytest.mark.parametrize("kind", KINDS)
def test_state_restored_and_hooks_released_after_an_error(model: SmallCNN, batch, kind: str, hooks_of) -> None:
    x, _ = batch
    model.train()
    with pytest.raises(ValueError):
        build_adapter(kind, model, "block3").attribute(x, 99)
    assert model.training and all(m.training for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())
    assert hooks_of(model) == {}


def test_attribution_runs_in_eval_mode(batch) -> None:
    """Dropout must not make maps random: eval mode during the call, the caller's mode after."""
    x, y = batch
    torch.manual_seed(0)
    net = torch.nn.Sequential(SmallCNN(pools=1).block1, torch.nn.Dropout(0.5), SmallCNN(pools=1).block2,
                              SmallCNN(pools=1).block3, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(64, 10)).train()
    in_eval = copy.deepcopy(net).eval()
    expected = LayerGradCam(in_eval, in_eval[3]).attribute(x, target=y, relu_attributions=True)
    for kind in KINDS:
        adapter = build_adapter(kind, net, "3")
        assert torch.allclose(adapter.attribute(x, y), expected, atol=1e-6)  # in train mode, dropout would change it
        assert net.training


def test_works_under_no_grad(model: SmallCNN, batch) -> None:
    x, y = batch
    with torch.no_grad():
        for kind in KINDS:
            assert build_adapter(kind, model, "block3").attribute(x, y).abs().sum() > 0


# ----------------------------------------------------------------------------- maps
def test_normalize_modes() -> None:
    maps = torch.tensor([[1.0, 3.0], [0.0, 0.0], [2.0, 2.0]]).reshape(3, 1, 1, 2)
    minmax = normalize(maps, "minmax").reshape(3, 2)
    assert torch.equal(minmax, torch.tensor([[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]))
    assert torch.allclose(normalize(maps, "max").reshape(3, 2), torch.tensor([[1 / 3, 1.0], [0.0, 0.0], [1.0, 1.0]]))
    assert normalize(maps, "none") is maps
    with pytest.raises(ValueError, match="Unknown normalisation mode 'l2'"):
        normalize(maps, "l2")  # type: ignore[arg-type]


def test_saliency_maps_keep_their_scale(model: SmallCNN, batch) -> None:
    x, y = batch
    maps = CaptumAdapter(model, "block3").attribute_maps(x, y)
    assert isinstance(maps, SaliencyMaps) and maps.layer_name == "block3" and len(maps) == 32
    assert maps.scale.shape == (32,) and torch.all(maps.scale > 0)
    assert torch.allclose(maps.normalized("max") * maps.scale[:, None, None, None], maps.raw, atol=1e-7)
    normed = maps.normalized()
    assert normed.amin(dim=(1, 2, 3)).max() == 0 and torch.allclose(normed.amax(dim=(1, 2, 3)), torch.ones(32))
    assert maps.upsampled(8, "minmax").shape == (32, 1, 8, 8)


def test_upsample_and_gradcam_numpy(model: SmallCNN, batch) -> None:
    x, y = batch
    adapter = GradCamAdapter(model, "block3")
    small = adapter.attribute(x, y)
    big = adapter.attribute(x, y, upsample=True)
    assert big.shape == (32, 1, 8, 8) and torch.allclose(big, upsample_to(small, (8, 8)))
    assert GradCamAdapter(model, "block3", upsample=True).attribute(x, y).shape == (32, 1, 8, 8)
    array = to_gradcam_numpy(big)
    assert array.shape == (32, 8, 8) and array.dtype == np.float32


def test_explain_func_quantus_style(model: SmallCNN, batch) -> None:
    x, y = batch
    explain = make_explain_func(GradCamAdapter(model, "block3"))
    a = explain(model=model, inputs=x.numpy(), targets=y.numpy())
    assert a.shape == (32, 1, 8, 8) and a.dtype == np.float32
    assert a.min() >= 0 and np.allclose(a.reshape(32, -1).max(1), 1.0)
    other = SmallCNN(pools=1)
    other.load_state_dict(model.state_dict())
    assert np.allclose(explain(model=other, inputs=x.numpy(), targets=y.numpy()), a, atol=1e-6)


def test_adapters_are_saliency_adapters(model: SmallCNN) -> None:
    for kind in KINDS:
        adapter = build_adapter(kind, model, "block3")
        assert isinstance(adapter, SaliencyAdapter)
        assert adapter.method_name in ("LayerGradCam", "GradCAM")
        assert "block3" in repr(adapter)


# ----------------------------------------------------------------------------- facade
def test_build_adapter_resolves_method_names(model: SmallCNN) -> None:
    assert isinstance(build_adapter("gradcam", model, "block3", "GradCAMPlusPlus").method, type)
    assert build_adapter("gradcam", model, "block3", "gradcamplusplus").method is GradCAMPlusPlus
    assert build_adapter("gradcam", model, "block3", "XGradCAM").method_name == "XGradCAM"
    assert build_adapter("captum", model, "block3", "LayerGradientXActivation").method_name == "LayerGradientXActivation"
    with pytest.raises(ValueError, match=r"Unknown gradcam method 'GradCam\+\+'.*Choose one of: .*GradCAMPlusPlus"):
        build_adapter("gradcam", model, "block3", "GradCam++")
    with pytest.raises(ValueError, match=r"Unknown captum method 'LayerGradCAMM'.*Did you mean 'LayerGradCam'"):
        build_adapter("captum", model, "block3", "LayerGradCAMM")
    with pytest.raises(ValueError, match="Unknown adapter kind 'shap'"):
        build_adapter("shap", model, "block3")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- device and memory
@pytest.mark.parametrize("kind", KINDS)
def test_maps_on_the_input_device(trained, batch, kind: str, device: str) -> None:
    net = SmallCNN(pools=1)
    net.load_state_dict(trained.model.state_dict())
    net = net.to(device)
    x, y = (t.to(device) for t in batch)
    out = build_adapter(kind, net, "block3").attribute(x, y)
    assert out.device.type == device and out.shape == (32, 1, 4, 4)
    reference = build_adapter(kind, trained.model, "block3").attribute(*batch)
    assert torch.allclose(out.cpu(), reference, atol=1e-5, rtol=1e-4)


def _live_tensors() -> int:
    gc.collect()
    with warnings.catch_warnings():  # isinstance on some torch module objects warns (deprecated aliases)
        warnings.simplefilter("ignore")
        return sum(isinstance(o, torch.Tensor) for o in gc.get_objects())


@pytest.mark.parametrize("kind", KINDS)
def test_no_memory_growth_over_200_calls(model: SmallCNN, batch, kind: str, hooks_of) -> None:
    x, y = batch[0][:8], batch[1][:8]
    adapter = build_adapter(kind, model, "block3")
    for _ in range(20):  # warm-up: caches, lazy imports, allocator pools
        adapter.attribute(x, y)
    tensors_before = _live_tensors()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(200):
            adapter.attribute(x, y)
        gc.collect()
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    tensors_after = _live_tensors()
    assert end - start < 256 * 1024, f"Python heap grew by {(end - start) / 1024:.0f} KiB over 200 calls"
    assert tensors_after - tensors_before <= 2
    assert hooks_of(model) == {}
