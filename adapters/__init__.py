"""Saliency adapters: Captum and pytorch-grad-cam behind one contract (``i2x_plugin.adapters``).

>>> from i2x_plugin.adapters import build_adapter
>>> adapter = build_adapter("captum", model, "block3")              # Captum LayerGradCam
>>> maps = adapter.attribute(images, target=labels)                  # (N, 1, h, w), raw, ReLU'd
>>> adapter = build_adapter("gradcam", model, "block3", "GradCAMPlusPlus")
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Literal, Optional, Union

from torch import nn

from .base import (
    LayerLike,
    SaliencyAdapter,
    SaliencyMaps,
    Targets,
    make_explain_func,
    normalize,
    normalize_targets,
    resolve_layer,
    to_gradcam_numpy,
    upsample_to,
)
from .captum import CaptumAdapter
from .gradcam import GradCamAdapter

__all__ = [
    "ADAPTER_KINDS",
    "CaptumAdapter",
    "GradCamAdapter",
    "SaliencyAdapter",
    "SaliencyMaps",
    "Targets",
    "available_methods",
    "build_adapter",
    "make_explain_func",
    "normalize",
    "normalize_targets",
    "resolve_layer",
    "to_gradcam_numpy",
    "upsample_to",
]

AdapterKind = Literal["captum", "gradcam"]
ADAPTER_KINDS: tuple[str, ...] = ("captum", "gradcam")
_DEFAULT_METHOD = {"captum": "LayerGradCam", "gradcam": "GradCAM"}


def available_methods(kind: AdapterKind) -> dict[str, type]:
    """Method classes ``build_adapter`` accepts for ``kind``, by name."""
    if kind == "captum":
        import captum.attr
        from captum.attr import LayerAttribution

        return {
            name: obj
            for name in dir(captum.attr)
            if inspect.isclass(obj := getattr(captum.attr, name))
            and issubclass(obj, LayerAttribution)
            and obj is not LayerAttribution
        }
    if kind == "gradcam":
        from .gradcam import _single_layer_methods

        return _single_layer_methods()
    raise ValueError(f"Unknown adapter kind {kind!r}; choose one of {', '.join(ADAPTER_KINDS)}.")


def build_adapter(
    kind: AdapterKind,
    model: nn.Module,
    layer: LayerLike,
    method: Union[str, type, None] = None,
    **kwargs: Any,
) -> SaliencyAdapter:
    """Build an adapter by kind and method name.

    Args:
        kind: ``"captum"`` or ``"gradcam"``.
        model, layer: as for :class:`SaliencyAdapter`.
        method: a class name (``"LayerGradCam"``, ``"GradCAM"``, ``"GradCAMPlusPlus"``, ``"XGradCAM"``,
                    ...; case-insensitive), a class, or None for the kind's default.
        **kwargs: passed to the adapter's constructor.
    """
    choices = available_methods(kind)
    if method is None:
        method = _DEFAULT_METHOD[kind]
    if isinstance(method, str):
        cls: Optional[type] = choices.get(method) or {k.lower(): v for k, v in choices.items()}.get(method.lower())
        if cls is None:
            close = difflib.get_close_matches(method, list(choices), n=2, cutoff=0.5)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(
                f"Unknown {kind} method {method!r}.{hint} Choose one of: {', '.join(sorted(choices))}."
            )
        method = cls
    adapter_cls = CaptumAdapter if kind == "captum" else GradCamAdapter
    return adapter_cls(model, layer, method, **kwargs)  # type: ignore[arg-type]
