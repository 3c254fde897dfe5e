"""Where a prototype sits, against a known marker (issue 23): the scores a planted shortcut is judged by.

A prototype's *cells* are the (sample, cell) positions assigned to it at the explained layer. Against a marker
whose cells at that layer are known (:func:`~i2x_plugin.training.shortcut.layer_mask`) and the samples that
carry it, each prototype gets:

* ``on_marked``: the share of its cells that lie on marked samples;
* ``iou``: |its cells ∩ the marker's cells on marked samples| / |their union|;
* ``covers``: the share of the marker's cells (on marked samples) that it holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MarkerOverlap:
    """Per prototype ``(K,)``: ``on_marked``, ``iou`` and ``covers`` (see the module docstring), and ``cells``
    (how many positions it holds in all)."""

    on_marked: np.ndarray
    iou: np.ndarray
    covers: np.ndarray
    cells: np.ndarray

    @property
    def best(self) -> int:
        """The prototype with the largest IoU with the marker."""
        return int(np.argmax(self.iou))


def marker_overlap(assignments: np.ndarray, marked: np.ndarray, marker_cells: np.ndarray, k: int) -> MarkerOverlap:
    """Score every prototype against the marker.

    Args:
        assignments: ``(N, h, w)`` prototype of every cell of every sample.
        marked: ``(N,)`` bool, which samples carry the marker.
        marker_cells: ``(h, w)`` bool, the marker's cells at the layer's resolution.
        k: the number of prototypes.
    """
    assignments, marked = np.asarray(assignments), np.asarray(marked, dtype=bool)
    if assignments.shape[1:] != marker_cells.shape:
        raise ValueError(f"assignments are {assignments.shape[1]}×{assignments.shape[2]} maps but the marker's cells "
                         f"are {marker_cells.shape[0]}×{marker_cells.shape[1]}; give the mask at the explained layer.")
    if len(marked) != len(assignments):
        raise ValueError(f"{len(marked)} marked flags for {len(assignments)} samples.")
    flat = assignments.reshape(len(assignments), -1)
    truth = (marked[:, None] & marker_cells.reshape(1, -1))
    cells = np.bincount(flat.ravel(), minlength=k)[:k]
    on_marked = np.bincount(flat[marked].ravel(), minlength=k)[:k]
    hit = np.bincount(flat[truth], minlength=k)[:k]
    union = cells + truth.sum() - hit
    with np.errstate(invalid="ignore", divide="ignore"):
        return MarkerOverlap(np.where(cells > 0, on_marked / np.maximum(cells, 1), 0.0),
                             hit / np.maximum(union, 1), hit / max(int(truth.sum()), 1), cells)
