"""i2x-plugin: structured explanations of why an image classifier looks where it looks (the I2X method).

>>> from i2x_plugin import I2X, CheckpointRecorder
>>> explanation = I2X(model, "block3").explain("checkpoints/", probe_data)
>>> explanation.uncertain[:3]

The package is one subpackage per stage, importing only downward (docs/architecture.md):
``app`` → ``improve`` → ``graph`` · ``report`` · ``runs`` → :mod:`.explain` (the :class:`I2X` facade) →
``checks`` → ``method`` → ``training``. The names below are imported on first use, so that processes which
need only a part of the package (the embedded graph server, the Neo4j Browser bridge) do not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import _moved

if TYPE_CHECKING:
    from .explain import I2X
    from .method.config import I2XConfig
    from .method.structure import StructuredExplanation
    from .training.checkpoints import CheckpointRecorder, resolve_checkpoints

_HOME = {"I2X": ".explain", "I2XConfig": ".method.config", "CheckpointRecorder": ".training.checkpoints",
         "StructuredExplanation": ".method.structure", "resolve_checkpoints": ".training.checkpoints"}

__all__ = ["I2X", "I2XConfig", "CheckpointRecorder", "StructuredExplanation", "resolve_checkpoints"]
__version__ = "0.1.0"

_moved.install()


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
