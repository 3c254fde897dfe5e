"""Targets of a saliency call: Captum's ``TargetType`` and pytorch-grad-cam target callables, normalised to one
target per sample before any work is done (a bad target raises with the fix)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

#: A pytorch-grad-cam style target: maps one sample's model output to a scalar.
CamTarget = Callable[[Tensor], Tensor]
#: Captum's ``TargetType`` (None, int, list/tuple of ints, 1-D tensor) plus grad-cam callables.
TargetLike = Union[None, int, Tensor, np.ndarray, CamTarget, Sequence[Union[int, CamTarget]]]


@dataclass(frozen=True, eq=False)
class Targets:
    """One target per sample, in one of three forms.

    ``indices`` (int64 ``(N,)`` on CPU) for class indices; ``callables`` for grad-cam style targets
    that are not plain class indices; neither for "the predicted class".
    """

    n: int
    indices: Optional[Tensor] = None
    callables: Optional[tuple[CamTarget, ...]] = None

    @property
    def predicted(self) -> bool:
        return self.indices is None and self.callables is None

    @property
    def max_index(self) -> int:
        return int(self.indices.max()) if self.indices is not None and self.n else -1

    def as_callables(self) -> Optional[list[CamTarget]]:
        """grad-cam's form: a list of callables, or None for the predicted class."""
        if self.callables is not None:
            return list(self.callables)
        if self.indices is not None:
            from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

            return [ClassifierOutputTarget(int(i)) for i in self.indices.tolist()]
        return None


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _plain_class_index(target: Any) -> Optional[int]:
    """The class index of an exact ``ClassifierOutputTarget`` (same gradient as an int target)."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if type(target) is ClassifierOutputTarget and _is_int(target.category):
        return int(target.category)
    return None


def normalize_targets(target: TargetLike, n: int) -> Targets:
    """Normalise ``target`` to one target per sample of a batch of ``n``.

    Accepted: ``None`` (predicted class); an int or a one-element tensor (same class for all);
    a list/tuple/1-D tensor/array of ``n`` ints; a grad-cam callable (for all) or a list of ``n``
    callables or ints. Exact ``ClassifierOutputTarget``s become indices. A length mismatch raises.
    """
    if target is None:
        return Targets(n)
    if isinstance(target, np.ndarray):
        target = torch.from_numpy(target)
    if isinstance(target, Tensor):
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise TypeError(
                f"target tensor has dtype {target.dtype}; targets are class indices: use an integer tensor "
                "(e.g. labels.long())."
            )
        if target.ndim > 1:
            raise ValueError(
                f"target tensor has shape {tuple(target.shape)}; give a 1-D tensor with one class index per "
                "sample (multi-dimensional output targets are not supported by saliency adapters)."
            )
        flat = target.detach().reshape(-1).to("cpu", torch.long)
        if flat.numel() == 1:
            flat = flat.expand(n)
        return _index_targets(flat, n, given=target.numel())
    if _is_int(target):
        return _index_targets(torch.full((n,), int(target), dtype=torch.long), n, given=1)
    if callable(target):
        index = _plain_class_index(target)
        if index is not None:
            return _index_targets(torch.full((n,), index, dtype=torch.long), n, given=1)
        return Targets(n, callables=(target,) * n)
    if isinstance(target, (list, tuple)):
        items = list(target)
        if len(items) != n:
            raise ValueError(
                f"target has {len(items)} entries but the batch has {n} samples. Give one target per sample, "
                "or a single int / callable for all of them."
            )
        indices = [i if _is_int(i) else _plain_class_index(i) if callable(i) else None for i in items]
        if all(i is not None for i in indices):
            return _index_targets(torch.tensor([int(i) for i in indices], dtype=torch.long), n, given=n)
        converted: list[CamTarget] = []
        for item in items:
            if _is_int(item):
                from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

                if int(item) < 0:
                    raise ValueError(f"target class {int(item)} is negative; class indices start at 0.")
                converted.append(ClassifierOutputTarget(int(item)))
            elif callable(item):
                converted.append(item)
            else:
                raise TypeError(
                    f"target entries must be class indices (int) or grad-cam target callables, got "
                    f"{type(item).__name__}. Multi-dimensional (tuple) targets are not supported."
                )
        return Targets(n, callables=tuple(converted))
    raise TypeError(
        f"Unsupported target of type {type(target).__name__}. Use None, an int, a list/tuple/1-D tensor of "
        "ints, or pytorch-grad-cam target callables (e.g. ClassifierOutputTarget)."
    )


def _index_targets(indices: Tensor, n: int, given: int) -> Targets:
    if len(indices) != n:
        raise ValueError(
            f"target has {given} entries but the batch has {n} samples. Give one target per sample, "
            "or a single int for all of them."
        )
    if n and int(indices.min()) < 0:
        raise ValueError(f"target class {int(indices.min())} is negative; class indices start at 0.")
    return Targets(n, indices=indices)
