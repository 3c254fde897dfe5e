"""i2x-plugin: structured explanations of why an image classifier looks where it looks (the I2X method).

>>> from i2x_plugin import I2X, CheckpointRecorder
>>> explanation = I2X(model, "block3").explain("checkpoints/", probe_data)
>>> explanation.uncertain[:3]
"""

from .checkpoints import CheckpointRecorder, resolve_checkpoints
from .config import I2XConfig
from .explain import I2X
from .structure import StructuredExplanation

__all__ = ["I2X", "I2XConfig", "CheckpointRecorder", "StructuredExplanation", "resolve_checkpoints"]
__version__ = "0.1.0"
