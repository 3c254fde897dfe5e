"""Captum adapter: ``LayerGradCam`` (default) or any Captum layer attribution, as a saliency map."""

from __future__ import annotations

import inspect
from typing import Any, Optional

import torch
from captum._utils.common import _run_forward
from captum.attr import LayerActivation, LayerAttribution, LayerGradCam, LayerGradientXActivation
from torch import Tensor, nn

from .base import CamTarget, LayerLike, SaliencyAdapter, Targets

__all__ = ["CaptumAdapter"]

# Methods that need only the layer's gradient (Captum makes the layer output require grad), so
# parameters can be frozen during a call. Others (DeepLift's tensor hooks, ...) keep them as they are.
_NO_PARAM_GRAD_METHODS = (LayerGradCam, LayerGradientXActivation, LayerActivation)


class _CallableTargetForward:
    """Forward function returning one scalar per sample from grad-cam target callables.

    Captum's own advice for targets its ``target`` argument cannot express: wrap the forward
    function so it returns the values to attribute.
    """

    def __init__(self, model: nn.Module, callables: tuple[CamTarget, ...]) -> None:
        self.model = model
        self.callables = callables

    def __call__(self, *args: Any) -> Tensor:
        output = self.model(*args)
        if len(output) != len(self.callables):
            raise ValueError(
                f"This Captum method evaluates the model on {len(output)} rows for {len(self.callables)} samples, "
                "so per-sample target callables cannot be matched to rows. Pass class indices instead, or use "
                "a single-pass method such as LayerGradCam."
            )
        values = [target(row) for target, row in zip(self.callables, output)]
        if any(v.numel() != 1 for v in values):
            raise ValueError("Target callables must return one scalar per sample (e.g. ClassifierOutputTarget(c)).")
        return torch.stack([v.reshape(()) for v in values])


class CaptumAdapter(SaliencyAdapter):
    r"""Saliency maps from a Captum layer attribution method (default ``LayerGradCam``).

    ``LayerGradCam`` gives GradCAM at the layer (ReLU applied here, as in the GradCAM paper).
    Any other Captum ``LayerAttribution`` class works too (``LayerActivation``,
    ``LayerGradientXActivation``, ``LayerIntegratedGradients``, ...): its ``(N, C, h, w)`` layer
    attribution is **summed over channels** to one map, as GradCAM sums its weighted channels, so
    the map reads "total evidence at each position"; then ReLU.

    Targets that are class indices (also exact ``ClassifierOutputTarget``\ s) go to Captum's
    ``target``; other grad-cam callables are evaluated through a wrapped forward function, which
    needs a method that runs the batch once (LayerGradCam, LayerGradientXActivation, ...). With
    ``target=None`` the predicted class comes from one extra no-grad forward pass.

    Args:
        model (nn.Module): the classifier.
        layer (nn.Module or str): spatial feature layer (module or dotted name).
        method (type): a Captum ``LayerAttribution`` subclass. Default ``LayerGradCam``.
        attribute_kwargs (dict, optional): extra arguments for ``method.attribute`` on every call
                    (e.g. ``{"n_steps": 16}`` for LayerIntegratedGradients).
        upsample, relu, eval_mode: see :class:`SaliencyAdapter`.
        **method_kwargs: passed to ``method``'s constructor (e.g. ``device_ids``).
    """

    def __init__(
        self,
        model: nn.Module,
        layer: LayerLike,
        method: type[LayerAttribution] = LayerGradCam,
        *,
        attribute_kwargs: Optional[dict[str, Any]] = None,
        upsample: bool = False,
        relu: bool = True,
        eval_mode: bool = True,
        **method_kwargs: Any,
    ) -> None:
        if not (inspect.isclass(method) and issubclass(method, LayerAttribution)):
            raise TypeError(
                f"method must be a Captum layer attribution class (e.g. LayerGradCam, LayerActivation), got "
                f"{method!r}. For pytorch-grad-cam methods use GradCamAdapter."
            )
        super().__init__(
            model, layer, upsample=upsample, relu=relu, eval_mode=eval_mode, device_ids=method_kwargs.get("device_ids")
        )
        self.method = method
        self.method_kwargs = dict(method_kwargs)
        self.attribute_kwargs = dict(attribute_kwargs or {})
        reserved = {"inputs", "target", "additional_forward_args"} & set(self.attribute_kwargs)
        if reserved:
            raise ValueError(f"attribute_kwargs must not set {sorted(reserved)}; pass them to attribute().")
        self._algorithm = method(model, self.layer, **self.method_kwargs)
        self._freeze_params = issubclass(method, _NO_PARAM_GRAD_METHODS)
        self._takes_target = "target" in inspect.signature(self._algorithm.attribute).parameters

    @classmethod
    def from_attribution(cls, attribution: LayerAttribution, *, relu: bool = True,
                         attribute_kwargs: Optional[dict[str, Any]] = None) -> "CaptumAdapter":
        """Wrap a Captum layer attribution object you already built (e.g. ``LayerGradCam(model, model.block3)``).

        The object is used as it is (its constructor settings kept). Its maps are summed over
        channels as above, then ReLU'd when ``relu`` (default True: GradCAM's positive evidence;
        Captum's own ``LayerGradCam`` returns signed maps unless asked). Normalisation stays
        explicit: I2X applies ``I2XConfig.normalization`` per image, :meth:`attribute` returns raw maps.
        """
        if not isinstance(attribution, LayerAttribution):
            raise TypeError(f"Expected a Captum layer attribution object (e.g. LayerGradCam(model, layer)), got "
                            f"{type(attribution).__name__}; input attributions have no map at a layer.")
        forward = attribution.forward_func
        model = getattr(forward, "__self__", forward)  # model.forward given instead of the model
        if not isinstance(model, nn.Module):
            raise TypeError(f"{type(attribution).__name__} wraps a forward function ({forward!r}), not a model; build "
                            "it on the nn.Module itself so its checkpoints can be loaded.")
        if not isinstance(attribution.layer, nn.Module):
            raise TypeError(f"{type(attribution).__name__} is built on several layers; give it one spatial layer.")
        adapter = cls(model, attribution.layer, type(attribution), relu=relu, attribute_kwargs=attribute_kwargs)
        adapter._algorithm = attribution
        return adapter

    @property
    def multiplies_by_inputs(self) -> bool:
        return bool(self._algorithm.multiplies_by_inputs)

    def _config(self) -> dict[str, Any]:
        return {
            **super()._config(),
            "method": self.method,
            "attribute_kwargs": self.attribute_kwargs,
            **self.method_kwargs,
        }

    def _attribute_raw(
        self, inputs: tuple[Tensor, ...], targets: Targets, additional_forward_args: Optional[object]
    ) -> Tensor:
        algorithm = self._algorithm
        kwargs = dict(self.attribute_kwargs)
        if self._takes_target:
            if targets.predicted:
                with torch.no_grad():
                    logits = _run_forward(self.model, inputs, None, additional_forward_args)
                targets = Targets(targets.n, indices=logits.argmax(dim=-1))
            if targets.indices is not None:
                kwargs["target"] = targets.indices.to(inputs[0].device)
            else:
                forward = _CallableTargetForward(self.model, targets.callables or ())
                algorithm = self.method(forward, self.layer, **self.method_kwargs)
        attributions = algorithm.attribute(
            inputs if len(inputs) > 1 else inputs[0], additional_forward_args=additional_forward_args, **kwargs
        )
        if isinstance(attributions, (tuple, list)):
            if len(attributions) != 1:
                raise ValueError(f"{self.method.__name__} returned {len(attributions)} tensors; expected one map.")
            attributions = attributions[0]
        if attributions.ndim == 4 and attributions.shape[1] != 1:
            attributions = attributions.sum(dim=1, keepdim=True)
        return attributions
