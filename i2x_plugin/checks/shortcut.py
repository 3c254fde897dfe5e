"""Where a prototype sits, against a known marker (issue 23): the scores a planted shortcut is judged by.

A prototype's *cells* are the (sample, cell) positions assigned to it at the explained layer. Against a marker
whose cells at that layer are known (:func:`~i2x_plugin.training.shortcut.layer_mask`) and the samples that
carry it, each prototype gets:

* ``on_marked``: the share of its cells that lie on marked samples;
* ``iou``: |its cells ∩ the marker's cells on marked samples| / |their union|;
* ``covers``: the share of the marker's cells (on marked samples) that it holds.

A marker's evidence spreads through the receptive field: :func:`evidence_cells` finds the cells of a layer whose
features the marker changes, and :func:`deleted_predictions` what the model predicts with chosen cells zeroed
(what deleting the marker at that layer removes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..adapters import resolve_layer
from ..training.shortcut import ShortcutConfig, stamp
from .faithfulness import Deleter


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


@torch.no_grad()
def evidence_cells(model: nn.Module, layer: str, images: torch.Tensor, spec: ShortcutConfig,
                   share: float = 0.1) -> np.ndarray:
    """``(h, w)`` bool: the layer's cells whose features the marker changes (mean |Δ| over channels and images at
    least ``share`` of the largest cell's): where its evidence is at that layer, through the receptive field."""
    module, _ = resolve_layer(model, layer)
    out: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, o: out.append(o))
    try:
        model(images)
        model(stamp(images, np.ones(len(images), dtype=bool), spec.mask(*images.shape[-2:]), spec.value))
    finally:
        handle.remove()
    change = (out[1] - out[0]).abs().mean((0, 1)).numpy()
    if change.max() <= 0:
        raise ValueError("The marker changes no feature of these images: were they marked already?")
    return change >= share * change.max()


def deleted_predictions(model: nn.Module, layer: str, images: torch.Tensor, cells: np.ndarray) -> np.ndarray:
    """``(N,)`` the model's predictions with ``cells`` (``(h, w)`` bool) zeroed at ``layer`` on every image."""
    assignments = np.broadcast_to(np.asarray(cells, dtype=np.int64), (len(images),) + cells.shape).copy()
    deleter = Deleter(model, layer, images, np.zeros(len(images), dtype=np.int64), assignments, "zero")
    return deleter.logits(np.arange(len(images)), [1]).argmax(1).numpy()


# --- the report's flag: a possible shortcut, found without knowing any marker -------------------------------


@dataclass(frozen=True)
class ShortcutFlag:
    """Prototype ``prototype`` sits on the same cell in most of class ``cls``'s samples and almost never there in
    other classes, and the final model relies on it for ``cls`` (a claimed RELIES_ON edge)."""

    prototype: int
    cls: int
    cell: list[int]  # [row, col] at the explained layer: the cell it holds most often in cls's samples
    region: list[list[int]]  # every cell it holds in at least half of cls's samples
    class_share: float  # share of cls's samples holding the prototype on ``cell``
    other_share: float  # the largest such share among the other classes
    reliance_effect: float  # the held-out drop of cls's confidence when its cells are deleted
    reliance_q: float
    exemplars: list[int]  # sample ids of cls's samples holding it on ``cell``, highest final intensity first
    exemplar_rows: list[int]  # their positions in the probe set


FLAG_MIN_SHARE = 0.8  # "most images of one class" hold it on one fixed cell
FLAG_MAX_OTHER = 0.02  # and no more than this share of any other class's samples do


def _claimed(reliance) -> list:
    return [x for x in reliance.edges if x.q <= reliance.fdr_q and x.effect - x.random_effect >= reliance.min_effect]


def flag_statistics(explanation) -> list[dict]:
    """Every claimed reliance edge (k, c): the cell k holds most often in c's samples, the share of c's samples
    holding it there (``class_share``) and the largest share of another class's (``other_share``): the numbers
    :func:`possible_shortcuts` thresholds (for calibration)."""
    e, r = explanation, explanation.reliance
    if r is None:
        return []
    labels = np.asarray(e.labels)
    n, h, w = np.asarray(e.assignments).shape
    flat = np.asarray(e.assignments).reshape(n, h * w)
    classes = np.unique(labels)
    out = []
    for x in _claimed(r):
        holds = flat == x.prototype
        share = holds[labels == x.cls].mean(0)
        cell = int(np.argmax(share))
        other = max((float(holds[labels == o, cell].mean()) for o in classes if o != x.cls), default=0.0)
        out.append({"prototype": x.prototype, "cls": x.cls, "cell": [cell // w, cell % w],
                    "region": [[int(i // w), int(i % w)] for i in np.flatnonzero(share >= 0.5)],
                    "class_share": round(float(share[cell]), 3), "other_share": round(other, 3),
                    "effect": round(x.effect, 4), "q": float(x.q)})
    return out


def possible_shortcuts(explanation, min_share: float = FLAG_MIN_SHARE, max_other: float = FLAG_MAX_OTHER,
                       exemplars: int = 8) -> list[ShortcutFlag]:
    """Every (prototype, class) that looks like a shortcut (see :class:`ShortcutFlag`): a claimed reliance edge
    (k, c) whose prototype holds one fixed cell in at least ``min_share`` of c's samples and in at most
    ``max_other`` of any other class's. Needs ``explanation.reliance`` (without it: no flag).

    Calibrated in bench/results/shortcut.md (mnist-5k SmallCNN runs, 3 seeds × 2 layers with the planted marker,
    the same without it): every flagged marker prototype has ``other_share`` 0.0 (``class_share`` 0.92–1.0);
    among claimed edges of unmarked runs with ``class_share`` ≥ 0.8 the smallest ``other_share`` is 0.075 (P29 of
    digit 1 on the centre cell, which ``max_other`` = 0.1 flagged in 1 of the 6 unmarked runs). With 0.02 it fires
    in none of them; chosen on those same runs, so a fresh null may still see it fire.
    """
    e = explanation
    stats = flag_statistics(e)
    if not stats:
        return []
    labels, n = np.asarray(e.labels), len(e.labels)
    h, w = np.asarray(e.assignments).shape[1:]
    flat = np.asarray(e.assignments).reshape(n, h * w)
    out = []
    for s in stats:
        if s["class_share"] < min_share or s["other_share"] > max_other:
            continue
        k, c = s["prototype"], s["cls"]
        rows = np.flatnonzero((labels == c) & (flat[:, s["cell"][0] * w + s["cell"][1]] == k))
        best = rows[np.argsort(-np.asarray(e.intensities)[-1, rows, k], kind="stable")[:exemplars]]
        out.append(ShortcutFlag(k, c, s["cell"], s["region"], s["class_share"], s["other_share"], s["effect"],
                                s["q"], [int(np.asarray(e.sample_ids)[i]) for i in best], [int(i) for i in best]))
    return out
