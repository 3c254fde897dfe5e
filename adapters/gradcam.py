"""pytorch-grad-cam adapter: any single-layer ``BaseCAM`` method, as raw layer-resolution maps."""

from __future__ import annotations

import contextlib
import inspect
import types
from typing import Any, Iterator, Optional

import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.base_cam import BaseCAM
from torch import Tensor, nn

from .base import LayerLike, SaliencyAdapter, Targets, preserved_model_state

__all__ = ["GradCamAdapter"]


class _ForwardWithArgs(nn.Module):
    """``model(x, *args)`` as a one-input module, for BaseCAM (which calls ``model(x)`` only)."""

    def __init__(self, model: nn.Module, args: tuple[Any, ...]) -> None:
        super().__init__()
        self.inner = model
        self.args = args

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(x, *self.args)


def _raw_cam_per_layer(self: BaseCAM, input_tensor: Tensor, targets: Any, eigen_smooth: bool) -> list[np.ndarray]:
    """``BaseCAM.compute_cam_per_layer`` without ``scale_cam_image``: ReLU'd cams at layer size.

    The method's own ``get_cam_image`` / ``get_cam_weights`` still decide the map, so every
    single-layer BaseCAM subclass (GradCAM++, XGradCAM, HiResCAM, LayerCAM, ScoreCAM, ...) works.
    """
    saved = self.activations_and_grads
    if getattr(self, "detach", True):
        activations = [a.cpu().data.numpy() for a in saved.activations]
        grads = [g.cpu().data.numpy() for g in saved.gradients]
    else:
        activations, grads = list(saved.activations), list(saved.gradients)
    cam = self.get_cam_image(
        input_tensor,
        self.target_layers[0],
        targets,
        activations[0] if activations else None,
        grads[0] if grads else None,
        eigen_smooth,
    )
    cam = cam.detach().cpu().numpy() if isinstance(cam, Tensor) else np.asarray(cam)
    return [np.maximum(cam, 0)[:, None]]


def _first_layer(self: BaseCAM, cam_per_target_layer: list[np.ndarray]) -> np.ndarray:
    """``aggregate_multi_layers`` for one layer and no rescaling: ``(N, h, w)``."""
    return cam_per_target_layer[0][:, 0]


class GradCamAdapter(SaliencyAdapter):
    r"""Saliency maps from a pytorch-grad-cam method (default ``GradCAM``), raw, at layer resolution.

    pytorch-grad-cam min-max normalises each CAM and resizes it to the input; I2X needs the raw
    map aligned with the layer's prototype assignments. The adapter runs the method's own forward
    and ``get_cam_image`` but replaces, on that one CAM object, the step that rescales
    (``compute_cam_per_layer`` / ``aggregate_multi_layers``), so the map keeps its scale and size.
    A CAM object is built per call and its hooks are released in a ``finally`` (BaseCAM's own
    ``__exit__`` swallows ``IndexError``, so it is not used).

    Methods that combine many layers (``FullGrad``) have no single-layer map and are refused.

    Args:
        model (nn.Module): the classifier.
        layer (nn.Module or str): spatial feature layer (module or dotted name).
        method (type): a ``pytorch_grad_cam.base_cam.BaseCAM`` subclass. Default ``GradCAM``.
        eigen_smooth, aug_smooth (bool): grad-cam's call options. Default False.
        upsample, relu, eval_mode: see :class:`SaliencyAdapter`.
        **method_kwargs: passed to ``method``'s constructor (e.g. ``reshape_transform``).
    """

    _layer_needs_grad = True  # BaseCAM records gradients with tensor hooks on the layer output.

    def __init__(
        self,
        model: nn.Module,
        layer: LayerLike,
        method: type[BaseCAM] = GradCAM,
        *,
        eigen_smooth: bool = False,
        aug_smooth: bool = False,
        upsample: bool = False,
        relu: bool = True,
        eval_mode: bool = True,
        **method_kwargs: Any,
    ) -> None:
        _check_cam_method(method)
        super().__init__(model, layer, upsample=upsample, relu=relu, eval_mode=eval_mode)
        self.method = method
        self.method_kwargs = dict(method_kwargs)
        self.eigen_smooth = eigen_smooth
        self.aug_smooth = aug_smooth
        # Methods that differentiate their own gradients (ShapleyCAM: detach=False) need the
        # parameters' graph; the others only need the layer's gradient, so parameters are frozen
        # during a call (no parameter .grad is built). Read the flags from a throwaway instance.
        with preserved_model_state(model, eval_mode=False, freeze=False):
            probe = method(model, [self.layer], **self.method_kwargs)
            probe.activations_and_grads.release()
        self._freeze_params = bool(getattr(probe, "detach", True)) and not getattr(probe, "compute_input_gradient", False)

    def _config(self) -> dict[str, Any]:
        return {
            **super()._config(),
            "method": self.method,
            "eigen_smooth": self.eigen_smooth,
            "aug_smooth": self.aug_smooth,
            **self.method_kwargs,
        }

    @contextlib.contextmanager
    def _cam(self, model: nn.Module) -> Iterator[BaseCAM]:
        """A CAM object returning raw maps; its hooks and saved tensors are released on exit."""
        cam = self.method(model, [self.layer], **self.method_kwargs)
        try:
            cam.compute_cam_per_layer = types.MethodType(_raw_cam_per_layer, cam)
            cam.aggregate_multi_layers = types.MethodType(_first_layer, cam)
            yield cam
        finally:
            cam.activations_and_grads.release()
            cam.outputs = None

    def _attribute_raw(
        self, inputs: tuple[Tensor, ...], targets: Targets, additional_forward_args: Optional[object]
    ) -> Tensor:
        if len(inputs) != 1:
            raise ValueError(
                f"pytorch-grad-cam methods take one input tensor, got {len(inputs)}. Pass the other model "
                "inputs as additional_forward_args."
            )
        model = self.model
        if additional_forward_args is not None:
            args = additional_forward_args if isinstance(additional_forward_args, tuple) else (additional_forward_args,)
            model = _ForwardWithArgs(self.model, args)
        with self._cam(model) as cam:
            maps = cam(
                inputs[0], targets.as_callables(), aug_smooth=self.aug_smooth, eigen_smooth=self.eigen_smooth
            )
        return torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))[:, None]


def _check_cam_method(method: Any) -> None:
    if not (inspect.isclass(method) and issubclass(method, BaseCAM)):
        raise TypeError(
            f"method must be a pytorch-grad-cam BaseCAM subclass (e.g. GradCAM, GradCAMPlusPlus), got {method!r}. "
            "For Captum methods use CaptumAdapter."
        )
    overridden: list[str] = [
        name
        for name in ("compute_cam_per_layer", "aggregate_multi_layers")
        if getattr(method, name) is not getattr(BaseCAM, name)
    ]
    if overridden:
        raise ValueError(
            f"{method.__name__} overrides {', '.join(overridden)}: it combines several layers and has no "
            "single-layer map. Choose a single-layer method such as GradCAM, GradCAMPlusPlus or XGradCAM."
        )


def _single_layer_methods() -> dict[str, type[BaseCAM]]:
    """The pytorch-grad-cam classes this adapter accepts, by name."""
    import pytorch_grad_cam

    found: dict[str, type[BaseCAM]] = {}
    for name in dir(pytorch_grad_cam):
        obj = getattr(pytorch_grad_cam, name)
        if inspect.isclass(obj) and issubclass(obj, BaseCAM) and obj is not BaseCAM:
            try:
                _check_cam_method(obj)
            except ValueError:
                continue
            found[name] = obj
    return found

