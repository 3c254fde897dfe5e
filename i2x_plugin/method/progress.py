"""Steps 3–6 of I2X: replay checkpoints, measure prototype intensity and confidence, group learning patterns.

``sweep`` streams over checkpoints (one loaded at a time into one model instance) and keeps only
O(T·N·K) intensities and O(T·N·C) confidences, never T sets of saliency maps. ``learning_groups``
finds HDBSCAN groups of confidence changes; :mod:`.ridge` and :mod:`.claims` link intensity to confidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from sklearn.cluster import HDBSCAN
from torch import nn

from ..adapters import normalize
from ..training.checkpoints import CheckpointInfo, LoadFunc


def prototype_intensity(saliency: torch.Tensor, assignments: torch.Tensor, k: int) -> torch.Tensor:
    """P[i, k] = mean saliency over the positions of sample i assigned to prototype k (0 where absent).

    ``saliency`` and ``assignments`` are ``(N, h, w)``; returns ``(N, K)``.
    """
    n = len(saliency)
    index = assignments.reshape(n, -1).long()
    sums = torch.zeros(n, k, dtype=saliency.dtype, device=saliency.device).scatter_add_(1, index, saliency.reshape(n, -1))
    counts = torch.zeros(n, k, dtype=saliency.dtype, device=saliency.device).scatter_add_(
        1, index, torch.ones_like(saliency.reshape(n, -1)))
    return sums / counts.clamp_min(1)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` counts, rows = true class, columns = predicted class."""
    return np.bincount(labels * num_classes + predictions, minlength=num_classes**2).reshape(num_classes, num_classes)


@dataclass(frozen=True)
class Trajectory:
    """What the sweep measured at every checkpoint t = 0..T-1 for every probe sample."""

    intensities: np.ndarray  # (T, N, K) float32
    confidences: np.ndarray  # (T, N, C) float32, softmax of the logits
    predictions: np.ndarray  # (T, N) int64
    confusion: np.ndarray  # (T, C, C) int64
    maps: np.ndarray | None = None  # (T, N, h, w) float32: the normalised saliency at the layer (keep_maps)

    @property
    def accuracy(self) -> np.ndarray:
        correct = np.trace(self.confusion, axis1=1, axis2=2)
        return correct / self.confusion.sum((1, 2))

    def deltas(self) -> tuple[np.ndarray, np.ndarray]:
        """ΔP^t = P^{t+1} − P^t and ΔŶ^t = Ŷ^{t+1} − Ŷ^t: ``(T-1, N, K)`` and ``(T-1, N, C)``."""
        return np.diff(self.intensities, axis=0), np.diff(self.confidences, axis=0)

    @classmethod
    def concatenate(cls, parts: Sequence["Trajectory"]) -> "Trajectory":
        """The trajectory of consecutive blocks of samples (a distributed sweep's shards, in rank order)."""
        return cls(np.concatenate([p.intensities for p in parts], axis=1),
                   np.concatenate([p.confidences for p in parts], axis=1),
                   np.concatenate([p.predictions for p in parts], axis=1),
                   np.sum([p.confusion for p in parts], axis=0),
                   None if parts[0].maps is None else np.concatenate([p.maps for p in parts], axis=1))


class _OutputCatcher:
    """Catches the model's output on exactly the clean batch during an attribution call (no second forward).

    Only a forward whose input *is* the batch counts: an adapter that augments (grad-cam's ``aug_smooth``),
    perturbs or expands its inputs gives no logits here, and the sweep runs one clean forward instead.
    """

    def __init__(self, model: nn.Module, batch: torch.Tensor):
        self.batch, self.output = batch, None
        self.handle = model.register_forward_hook(self._hook)

    def _hook(self, _module, inputs, output) -> None:
        if self.output is None and inputs and inputs[0] is self.batch and isinstance(output, torch.Tensor):
            self.output = output.detach()

    def __enter__(self) -> "_OutputCatcher":
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()
        self.batch = None  # the batch must not outlive its step: the next one is read while this object lives


def sweep(
    model: nn.Module,
    attribute: Callable[..., torch.Tensor],
    checkpoints: Sequence[CheckpointInfo],
    load_func: LoadFunc,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    assignments: np.ndarray,
    labels: np.ndarray,
    k: int,
    num_classes: int,
    target: str = "label",
    normalization: str = "minmax",
    device: torch.device | str = "cpu",
    progress: bool = False,
    on_checkpoint: Callable[[CheckpointInfo], None] | None = None,
    keep_maps: bool = False,
) -> Trajectory:
    """Saliency of every checkpoint on the probe samples, reduced to prototype intensities as it streams.

    Args:
        attribute: a saliency adapter's bound ``attribute(inputs, target=...)`` returning ``(b, 1, h, w)``
            maps at the prototype layer; its forward pass on the clean batch also yields the logits (else
            one clean forward does): confidences never come from augmented or perturbed inputs.
        batches: ``(images, labels)`` batches of the N samples in a fixed order, iterated once per
            checkpoint (a :class:`~i2x_plugin.method.probe.ProbeBatches`, or a DataLoader without shuffling).
        assignments: ``(N, h, w)`` prototype of every position; ``labels``: ``(N,)`` the samples' labels,
            checked against every pass (a data set that reorders between passes is refused).
        on_checkpoint: called after each checkpoint (the distributed sweep exchanges its state there).
        keep_maps: also keep every checkpoint's normalised maps, ``(T, N, h, w)`` float16.

    Returns:
        A :class:`Trajectory` of the N samples. Memory: the O(T·N·K + T·N·C) arrays plus one batch.
    """
    device = torch.device(device)
    n, t_count = len(assignments), len(checkpoints)
    assign = torch.as_tensor(assignments, dtype=torch.long)
    intensities = np.zeros((t_count, n, k), dtype=np.float32)
    confidences = np.zeros((t_count, n, num_classes), dtype=np.float32)
    predictions = np.zeros((t_count, n), dtype=np.int64)
    kept = np.zeros((t_count, n) + tuple(assign.shape[1:]), dtype=np.float32) if keep_maps else None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=t_count * n, desc="I2X sweep", unit="img")
    try:
        for ckpt in checkpoints:
            if bar is not None:
                bar.set_postfix_str(f"checkpoint {ckpt.index + 1}/{t_count} ({ckpt.name})")
            load_func(model, ckpt.path)
            model.eval()
            start = 0
            for x, y in batches:
                block = slice(start, start + len(x))
                start += len(x)
                if start > n or not np.array_equal(y.cpu().numpy(), labels[block]):
                    raise ValueError(f"The probe data gave other samples at checkpoint {ckpt.name} than before "
                                     f"(labels differ at samples {block.start}…{block.stop - 1}): it must give the "
                                     "same samples in the same order on every pass (no shuffling, fixed order).")
                x, y = x.to(device), y.to(device)
                with _OutputCatcher(model, x) as catcher:
                    maps = attribute(x, target=y if target == "label" else None)
                logits = catcher.output
                if logits is None:  # the adapter never ran the model on the clean batch itself
                    with torch.no_grad():
                        logits = model(x)
                if not torch.isfinite(logits).all():
                    raise FloatingPointError(f"Checkpoint {ckpt.path} gives NaN/inf logits; the checkpoint is "
                                             "broken or diverged. Drop it from the checkpoint list.")
                maps = maps.detach().float().squeeze(1)
                if not torch.isfinite(maps).all():
                    raise FloatingPointError(f"Checkpoint {ckpt.path} gives NaN/inf saliency maps; the checkpoint "
                                             "is broken or diverged. Drop it from the checkpoint list.")
                if maps.shape[1:] != assign.shape[1:]:
                    raise ValueError(f"Saliency maps are {tuple(maps.shape[1:])} but prototype assignments are "
                                     f"{tuple(assign.shape[1:])}: the adapter must attribute at the prototype layer "
                                     "without upsampling.")
                maps = normalize(maps, normalization)
                intensities[ckpt.index, block] = prototype_intensity(maps, assign[block].to(maps.device), k).cpu().numpy()
                if kept is not None:
                    kept[ckpt.index, block] = maps.cpu().numpy()
                probs = torch.softmax(logits.float(), dim=1)
                confidences[ckpt.index, block] = probs.cpu().numpy()
                predictions[ckpt.index, block] = probs.argmax(1).cpu().numpy()
                if bar is not None:
                    bar.update(len(x))
                del x, y, maps, logits, probs  # before the next batch is read: one batch in memory, not two
            if start != n:
                raise ValueError(f"The probe data gave {start} samples at checkpoint {ckpt.name} but {n} before; it "
                                 "must give the same samples on every pass.")
            if on_checkpoint is not None:
                on_checkpoint(ckpt)
    finally:
        if bar is not None:
            bar.close()
    confusion = np.stack([confusion_matrix(labels, p, num_classes) for p in predictions])
    return Trajectory(intensities, confidences, predictions, confusion, kept)


def learning_groups(delta_conf: np.ndarray, labels: np.ndarray, num_classes: int, min_cluster_size: int = 5,
                    min_cluster_fraction: float = 0.01) -> np.ndarray:
    """HDBSCAN on ΔŶ^t per (step, true class): ``(T-1, N)`` group ids, −1 = noise.

    min_cluster_size = max(``min_cluster_size``, ``min_cluster_fraction`` × class size).
    """
    steps, n, _ = delta_conf.shape
    groups = np.full((steps, n), -1, dtype=np.int64)
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        size = max(min_cluster_size, math.ceil(min_cluster_fraction * len(members)))
        if len(members) <= size:
            continue
        for t in range(steps):
            groups[t, members] = HDBSCAN(min_cluster_size=size, copy=True).fit_predict(delta_conf[t, members])
    return groups
