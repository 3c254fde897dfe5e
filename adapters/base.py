"""The saliency-adapter contract and the helpers every adapter shares.

An adapter turns one attribution library into the map I2X needs: a non-negative ``(N, 1, h, w)``
saliency map at a spatial feature layer ``f`` (GradCAM at ``f``, method.md step 3), one target per
sample, on the input's device. Adapters are Captum ``LayerAttribution`` objects, so they also work
where Captum expects an attribution object (e.g. ``NoiseTunnel``).

What the base class guarantees for every implementation:

* ``layer`` may be a module or a dotted name; both are kept (``.layer``, ``.layer_name``).
* targets follow Captum's ``TargetType`` plus pytorch-grad-cam target callables and are normalised
  to one per sample (:func:`~.targets.normalize_targets`); bad targets raise before any work is done.
* the caller's model state (every module's ``training`` flag, every parameter's ``requires_grad``
  and ``.grad``) is restored after each call, and no hook outlives a call.
* raw maps keep their per-sample scale (:class:`SaliencyMaps`); normalisation is explicit
  (:func:`~.maps.normalize`).
"""

from __future__ import annotations

import contextlib
import difflib
from abc import ABC, abstractmethod
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np
import torch
from captum.attr import LayerAttribution
from captum.log import log_usage
from torch import Tensor, nn

from .maps import NormMode, SaliencyMaps, normalize, to_gradcam_numpy, upsample_to
from .targets import CamTarget, TargetLike, Targets, normalize_targets

__all__ = [
    "CamTarget",
    "LayerLike",
    "NormMode",
    "SaliencyAdapter",
    "SaliencyMaps",
    "Targets",
    "TargetLike",
    "make_explain_func",
    "normalize",
    "normalize_targets",
    "preserved_model_state",
    "resolve_layer",
    "to_gradcam_numpy",
    "upsample_to",
]

LayerLike = Union[nn.Module, str]
InputsLike = Union[Tensor, tuple[Tensor, ...]]


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------
def resolve_layer(model: nn.Module, layer: LayerLike) -> tuple[nn.Module, str]:
    """Return ``(module, dotted_name)`` for a layer given as a module of ``model`` or its name.

    The name is what goes into the graph, so a module is looked up by identity in
    ``model.named_modules()``; an unknown name raises with the closest names as suggestions.
    """
    if isinstance(layer, str):
        try:
            return model.get_submodule(layer), layer
        except AttributeError:
            names = [name for name, _ in model.named_modules() if name]
            close = difflib.get_close_matches(layer, names, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            shown = ", ".join(repr(n) for n in names[:12]) + (", ..." if len(names) > 12 else "")
            raise ValueError(
                f"Layer {layer!r} not found in {type(model).__name__}.{hint} "
                f"Give a dotted module name from model.named_modules(), e.g. {shown}."
            ) from None
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer:
                return module, name
        raise ValueError(
            f"The given {type(layer).__name__} layer is not a submodule of {type(model).__name__}. "
            "Pass a module of this model (e.g. model.block3) or its dotted name."
        )
    raise TypeError(f"layer must be an nn.Module or a dotted module name, got {type(layer).__name__}.")


def _conv_layer_names(model: nn.Module, limit: int = 3) -> list[str]:
    names = [name for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))]
    return names[-limit:]


# --------------------------------------------------------------------------------------------
# Model state and hooks
# --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def preserved_model_state(model: nn.Module, eval_mode: bool = True, freeze: bool = True) -> Iterator[None]:
    """Run the body in eval mode with frozen parameters; restore the caller's state afterwards.

    Saved and restored: every module's ``training`` flag, every parameter's ``requires_grad`` and
    ``.grad`` (grad-cam calls ``model.zero_grad()``). Freezing parameters means attribution builds
    no parameter gradients, so it is cheaper and leaves the optimiser's state alone.
    """
    modes = [(m, m.training) for m in model.modules()]
    params = [(p, p.requires_grad, p.grad) for p in model.parameters()]
    try:
        if eval_mode:
            model.eval()
        if freeze:
            for p, _, _ in params:
                p.requires_grad_(False)
        yield
    finally:
        for m, training in modes:
            m.training = training
        for p, requires_grad, grad in params:
            p.requires_grad_(requires_grad)
            p.grad = grad


def _model_device(model: nn.Module) -> Optional[torch.device]:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return None


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a {value.ndim}-D tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


@contextlib.contextmanager
def _probes(adapter: "SaliencyAdapter", targets: Targets, layer_needs_grad: bool) -> Iterator[None]:
    """Forward hooks that check the layer output and the targets, removed on exit (even on error).

    On the layer: its output must be a 4-D ``(N, C, h, w)`` map; with frozen parameters it is
    made to require grad so that hook-based libraries (grad-cam) still see its gradient.
    On the model: class indices must be in range of the ``(N, C)`` output.
    """

    def check_layer(module: nn.Module, inputs: Any, output: Any) -> None:
        if not isinstance(output, Tensor) or output.ndim != 4:
            convs = ", ".join(repr(n) for n in _conv_layer_names(adapter.model)) or "a Conv2d block"
            raise ValueError(
                f"Layer {adapter.layer_name!r} ({type(module).__name__}) outputs {_describe(output)}, not a "
                f"4-D (N, C, h, w) spatial map. Saliency maps need a convolutional feature layer: pick a conv "
                f"layer or block such as {convs}."
            )
        if layer_needs_grad and not output.requires_grad and output.grad_fn is None:
            output.requires_grad_(True)

    def check_output(module: nn.Module, inputs: Any, output: Any) -> None:
        if targets.indices is None:
            return
        if not isinstance(output, Tensor) or output.ndim != 2:
            raise ValueError(
                f"The model outputs {_describe(output)}; class-index targets need (N, num_classes) logits. "
                "Wrap the model to return logits, or pass grad-cam target callables."
            )
        num_classes = output.shape[1]
        if targets.max_index >= num_classes:
            raise ValueError(
                f"target class {targets.max_index} is out of range: the model has {num_classes} classes "
                f"(valid targets are 0..{num_classes - 1})."
            )

    handles = [adapter.layer.register_forward_hook(check_layer)]
    try:
        handles.append(adapter.model.register_forward_hook(check_output))
        yield
    finally:
        for handle in handles:
            handle.remove()


# --------------------------------------------------------------------------------------------
# The adapter contract
# --------------------------------------------------------------------------------------------
class SaliencyAdapter(LayerAttribution, ABC):
    r"""Saliency maps at one spatial layer, one target per sample: the contract I2X sweeps with.

    Built once with ``(model, layer)``; :meth:`attribute` returns non-negative ``(N, 1, h, w)`` maps
    on the input's device, where ``h × w`` is the layer's spatial map. :meth:`attribute_maps` returns
    the same maps with their per-sample scale. Implementations override :meth:`_attribute_raw` only.

    Being a Captum ``LayerAttribution``, an adapter can be passed where Captum expects an
    attribution object (e.g. ``NoiseTunnel(adapter)``, ``LayerAttribution.interpolate``); it has
    no convergence delta and does not multiply by inputs. Like Captum's layer methods it returns
    a single tensor even for tuple inputs.

    Args:
        model (nn.Module): the classifier; it returns ``(N, num_classes)`` logits for index targets.
        layer (nn.Module or str): the spatial feature layer, as a module of ``model`` or a dotted name.
        upsample (bool): return input-size maps from :meth:`attribute` (bilinear). Default False.
        relu (bool): keep positive evidence only, as GradCAM does. Default True.
        eval_mode (bool): attribute in eval mode (dropout off, batch-norm running stats); the
                    caller's modes are restored either way. Default True.
    """

    def __init__(
        self,
        model: nn.Module,
        layer: LayerLike,
        *,
        upsample: bool = False,
        relu: bool = True,
        eval_mode: bool = True,
        device_ids: Optional[list[int]] = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
        module, name = resolve_layer(model, layer)
        LayerAttribution.__init__(self, model, module, device_ids)
        self.model: nn.Module = model
        self.layer: nn.Module = module
        self.layer_name: str = name
        self.upsample = upsample
        self.relu = relu
        self.eval_mode = eval_mode

    # Subclasses: freeze parameters during a call (cheaper; only for methods that need no parameter
    # gradients), and make the layer output require grad (hook-based libraries need it when frozen).
    _freeze_params: bool = False
    _layer_needs_grad: bool = False

    @property
    def method_name(self) -> str:
        """The attribution method's class name (e.g. ``"LayerGradCam"``), as recorded in the graph."""
        method = getattr(self, "method", None)
        return method.__name__ if isinstance(method, type) else type(self).__name__

    @property
    def multiplies_by_inputs(self) -> bool:
        return False

    def has_convergence_delta(self) -> bool:
        return False

    @log_usage()
    def attribute(
        self,
        inputs: InputsLike,
        target: TargetLike = None,
        additional_forward_args: Optional[object] = None,
        *,
        upsample: Optional[bool] = None,
    ) -> Tensor:
        r"""Saliency maps for ``inputs``.

        Args:
            inputs (Tensor or tuple[Tensor, ...]): float images ``(N, C, H, W)``, on the model's
                        device (a tuple for multi-input models; the first is the image).
            target: None (predicted class), an int, a list/tuple/1-D tensor of ints, or
                        pytorch-grad-cam target callables; normalised to one per sample.
            additional_forward_args (Any, optional): passed to the model after ``inputs``.
            upsample (bool, optional): override the adapter's ``upsample`` for this call.

        Returns:
            Tensor ``(N, 1, h, w)`` (``(N, 1, H, W)`` when upsampled), non-negative, raw scale.
        """
        maps = self.attribute_maps(inputs, target, additional_forward_args).raw
        if self.upsample if upsample is None else upsample:
            first = inputs[0] if isinstance(inputs, tuple) else inputs
            maps = upsample_to(maps, tuple(first.shape[-2:]))
        return maps

    def attribute_maps(
        self,
        inputs: InputsLike,
        target: TargetLike = None,
        additional_forward_args: Optional[object] = None,
    ) -> SaliencyMaps:
        """Like :meth:`attribute` but returns :class:`SaliencyMaps` (raw maps + per-sample scale)."""
        batch = self._validate_inputs(inputs)
        targets = normalize_targets(target, len(batch[0]))
        freeze = self._freeze_params
        with preserved_model_state(self.model, eval_mode=self.eval_mode, freeze=freeze), torch.enable_grad():
            with _probes(self, targets, freeze and self._layer_needs_grad):
                raw = self._attribute_raw(batch, targets, additional_forward_args)
        raw = raw.detach().to(batch[0].device)
        if raw.ndim != 4 or raw.shape[:2] != (len(batch[0]), 1):
            raise RuntimeError(
                f"{type(self).__name__} produced maps of shape {tuple(raw.shape)}; expected (N, 1, h, w)."
            )
        if self.relu:
            raw = torch.relu(raw)
        return SaliencyMaps.from_raw(raw, self.layer_name)

    @abstractmethod
    def _attribute_raw(
        self, inputs: tuple[Tensor, ...], targets: Targets, additional_forward_args: Optional[object]
    ) -> Tensor:
        """Compute ``(N, 1, h, w)`` maps; called inside the state guard and probes, grad enabled."""

    def rebind(self, model: nn.Module) -> "SaliencyAdapter":
        """A new adapter of the same kind and settings for another model (same layer name)."""
        return type(self)(model, self.layer_name, **self._config())

    def _config(self) -> dict[str, Any]:
        return {"upsample": self.upsample, "relu": self.relu, "eval_mode": self.eval_mode}

    def _validate_inputs(self, inputs: InputsLike) -> tuple[Tensor, ...]:
        batch = inputs if isinstance(inputs, tuple) else (inputs,)
        if not batch or not all(isinstance(x, Tensor) for x in batch):
            raise TypeError(
                f"inputs must be a Tensor (or a tuple of Tensors), got {type(inputs).__name__}. "
                "Convert arrays with torch.as_tensor(...)."
            )
        first = batch[0]
        if first.ndim == 0 or len(first) == 0:
            raise ValueError(
                f"inputs is an empty batch (shape {tuple(first.shape)}); pass at least one image (N >= 1)."
            )
        for x in batch:
            if not (x.is_floating_point() or x.is_complex()):
                raise TypeError(
                    f"inputs have dtype {x.dtype}; gradients need floating-point images. Convert with "
                    "inputs.float() (and scale to the range the model was trained on, e.g. / 255)."
                )
            if len(x) != len(first):
                raise ValueError(f"all input tensors must share the batch size; got {len(first)} and {len(x)}.")
        device = _model_device(self.model)
        if device is not None:
            for x in batch:
                if x.device != device:
                    raise ValueError(
                        f"The model is on {device} but the inputs are on {x.device}. Move them to the same "
                        f"device, e.g. inputs.to('{device}') or model.to('{x.device}')."
                    )
        return batch

    def __repr__(self) -> str:
        return f"{type(self).__name__}(layer={self.layer_name!r}, method={self.method_name}, relu={self.relu})"


# --------------------------------------------------------------------------------------------
# Quantus-style explanation function
# --------------------------------------------------------------------------------------------
def make_explain_func(
    adapter: SaliencyAdapter, normalization: NormMode = "minmax", upsample: bool = True
) -> Callable[..., np.ndarray]:
    """A Quantus-style ``explain_func(model, inputs, targets, **kwargs) -> np.ndarray``.

    Inputs and targets may be numpy arrays or tensors; the result is float32 ``(N, 1, H, W)``
    (input size when ``upsample``), normalised per sample after resizing (as grad-cam does). A model other than ``adapter.model``
    gets an adapter of the same kind and layer name (Quantus passes perturbed model copies).
    """

    def explain_func(model: Optional[nn.Module], inputs: Any, targets: Any = None, **kwargs: Any) -> np.ndarray:
        active = adapter if model is None or model is adapter.model else adapter.rebind(model)
        device = _model_device(active.model) or torch.device(kwargs.get("device") or "cpu")
        x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, Tensor) else inputs)
        if x.is_floating_point():
            param = next(active.model.parameters(), None)
            x = x.to(device=device, dtype=param.dtype if param is not None else x.dtype)
        else:
            x = x.to(device)
        if targets is not None and not callable(targets) and not isinstance(targets, (list, tuple)):
            targets = torch.as_tensor(np.asarray(targets) if not isinstance(targets, Tensor) else targets)
            targets = targets.reshape(-1).long()
        maps = active.attribute_maps(x, targets).raw
        if upsample:
            maps = upsample_to(maps, tuple(x.shape[-2:]))
        return normalize(maps, normalization).detach().to("cpu", torch.float32).numpy()

    return explain_func
