"""Training helpers: data sets and a model in, trained checkpoints out (what the method replays).

:mod:`.data` (:class:`~.data.ImageDataset` and the digits / MNIST / Fashion-MNIST loaders), :mod:`.models`
(small CNNs and torchvision models by name), :mod:`.checkpoints` (:class:`~.checkpoints.CheckpointRecorder`
and the reader the method uses), :mod:`.loop` (a seeded training loop that records checkpoints),
:mod:`.synthetic` (planted-shape data with a known answer), :mod:`.shortcut` (a planted marker on real images)
and :mod:`.lightning` (the Lightning callback).
The bottom stage: it imports only the shared helpers (atomic file writes), and the method takes its data
and checkpoints.

``i2x_plugin.training`` was a module in 0.1: its names (``seeded``, ``train_with_checkpoints``, …) are still
found here, with a ``DeprecationWarning`` naming :mod:`.loop`.
"""

from typing import Any

from .._moved import moved_name


def __getattr__(name: str) -> Any:
    return moved_name(__name__, name)
