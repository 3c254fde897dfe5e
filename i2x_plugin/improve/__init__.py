"""Step 9, acting on an explanation: an explanation and its training data in, a fine-tuning study's table out.

:mod:`.curation` picks a curated training subset from the claims, :mod:`.selection` the variants V0–V4 of it,
:mod:`.finetune` fine-tunes the final checkpoint on a schedule, :mod:`.study` runs the schedules over seeds
(:func:`~.study.improve`), :mod:`.stats` compares them (paired tests over seeds, Holm), :mod:`.graph` writes
the curated set into the explanation graph.

``i2x_plugin.improve`` was a module in 0.1: its names (``improve``, ``ImproveConfig``, …) are still found
here, with a ``DeprecationWarning`` naming :mod:`.study`.
"""

from typing import Any

from .._moved import moved_name


def __getattr__(name: str) -> Any:
    return moved_name(__name__, name)
