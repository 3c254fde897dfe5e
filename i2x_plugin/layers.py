"""Resolve a layer given as a module or a dotted name to both (the name goes into the graph)."""

from __future__ import annotations

import difflib

from torch import nn


def resolve_layer(model: nn.Module, layer: str | nn.Module) -> tuple[nn.Module, str]:
    """Return ``(module, dotted_name)``; an unknown name raises with the closest names suggested."""
    names = dict(model.named_modules())
    if isinstance(layer, str):
        if layer in names and layer != "":
            return names[layer], layer
        close = difflib.get_close_matches(layer, [n for n in names if n], n=5, cutoff=0.4)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"The model has no layer named {layer!r}.{hint} "
                         "Names come from model.named_modules().")
    for name, module in names.items():
        if module is layer:
            return module, name or type(model).__name__
    raise ValueError(f"Layer {type(layer).__name__} is not a submodule of the model; pass one of its own modules.")
