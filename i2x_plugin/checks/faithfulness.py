"""Faithfulness of the claims (validation.md §2): does the final model use what a claim names?

A claim names prototypes; deleting them means masking the feature-map cells assigned to them at the
explained layer (``"zero"``: set to 0, "nothing detected" after a ReLU; ``"mean"``: set to the class's
mean feature vector, which removes the cells' information but not their average activation), then
measuring what the claim predicts on the final model:

* drivers of class c: the drop in the softmax confidence for c on c's samples;
* separators of (a, b) favouring a: the drop in the logit margin a − b on the samples of a ∪ b;
* uncertain prototypes of (a, b): the change in a↔b confusions on the samples of a ∪ b (either way).

Each effect is compared with random prototype sets of the same count and about the same covered area
(the ``random_sets`` sets whose share of the samples' cells is closest to the claim's, out of
``20 × random_sets`` draws among prototypes present in those samples): its percentile among them and a
permutation p-value. Beside every driver result stands the *static baseline*: the same number of
prototypes ranked by the final checkpoint's saliency mass on the class (plain saliency, no training
dynamics), deleted the same way. I2X should not tell a user less about the final model than that.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import torch
from torch import nn

from ..adapters import resolve_layer
from ..method.evidence import FaithfulnessResult

Deletion = Literal["zero", "mean"]
DELETIONS = ("zero", "mean")


class FaithfulnessError(ValueError):
    """The model or data do not match the explanation, or a setting is not one of the documented choices."""


def head_after(model: nn.Module, layer: nn.Module, layer_name: str, probe: torch.Tensor) -> nn.Module | None:
    """The part of ``model`` that runs after ``layer``, as a module taking the layer's output, or None.

    Traced with torch.fx (the layer kept as one call). None when the model cannot be traced or something
    after the layer also reads an earlier tensor (a skip connection around it); deletion then reruns the
    whole model with a hook instead, which gives the same numbers more slowly. Checked on ``probe``.
    """
    import torch.fx as fx

    class _Tracer(fx.Tracer):
        def is_leaf_module(self, module: nn.Module, name: str) -> bool:
            return module is layer or super().is_leaf_module(module, name)

    try:
        graph = _Tracer().trace(model)
    except Exception:  # noqa: BLE001 - any tracing failure means: use the hook
        return None
    nodes = list(graph.nodes)
    start = next((i for i, n in enumerate(nodes) if n.op == "call_module" and n.target == layer_name), None)
    if start is None:
        return None
    head = fx.Graph()
    env = {nodes[start]: head.placeholder("features")}
    for node in nodes[start + 1 :]:
        inputs = node.all_input_nodes
        if not any(i in env for i in inputs) and node.op != "output":
            continue  # not downstream of the layer
        for i in inputs:
            if i not in env:
                if i.op != "get_attr":
                    return None  # an earlier tensor is read after the layer
                env[i] = head.node_copy(i, lambda x: env[x])
        env[node] = head.node_copy(node, lambda x: env[x])
    module = fx.GraphModule(model, head)
    with torch.no_grad():
        captured: list[torch.Tensor] = []
        handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
        try:
            expected = model(probe)
        finally:
            handle.remove()
        if not torch.allclose(module(captured[0]), expected, rtol=1e-4, atol=1e-5):
            return None
    return module


def masked(output: torch.Tensor, cells: torch.Tensor, fill: torch.Tensor | None) -> torch.Tensor:
    """``output`` ``(n, d, h, w)`` with ``cells`` ``(n, 1, h, w)`` replaced by ``fill`` (``(n, d, 1, 1)``; None: 0).

    The same values as ``torch.where(cells, fill, output)`` (a kept cell is multiplied by 1 and added 0, a
    deleted one multiplied by 0), but arithmetic on a float mask is several times faster than a broadcast
    boolean select, and the deletion tests run thousands of them."""
    deleted = cells.to(output.dtype)
    kept = output * (1 - deleted)
    return kept if fill is None else kept + fill.to(output.dtype) * deleted


class _CellMask:
    """Forward hook that replaces the layer's output at the masked cells of each sample in the batch."""

    def __init__(self, layer: nn.Module):
        self.mask: torch.Tensor | None = None  # (n, 1, h, w) bool
        self.fill: torch.Tensor | None = None  # (n, d, 1, 1); None: zero
        self.handle = layer.register_forward_hook(self._hook)

    def _hook(self, _module, _inputs, output):
        if self.mask is None:
            return None
        return masked(output, self.mask, self.fill)

    def close(self) -> None:
        self.handle.remove()


class Deleter:
    """Runs the final model with chosen prototypes' cells masked at the explained layer.

    The layer's output is computed once per sample and only the part of the model after the layer is rerun
    for each deletion (:func:`head_after`), so testing a claim against 50 random sets costs about as much as
    50 passes of the model's head.

    Args:
        model: the final model (eval mode; its weights are not changed).
        layer: the explained layer (name or module).
        images: the probe images ``(N, C, H, W)`` in the explanation's order.
        labels: ``(N,)``; assignments: ``(N, h, w)`` prototype of every cell.
        deletion: ``"zero"`` or ``"mean"`` (class-mean feature vector).
    """

    def __init__(self, model: nn.Module, layer: str | nn.Module, images: torch.Tensor, labels: np.ndarray,
                 assignments: np.ndarray, deletion: Deletion = "zero", batch_size: int = 512,
                 device: torch.device | str | None = None):
        if deletion not in DELETIONS:
            raise FaithfulnessError(f"Unknown deletion {deletion!r}; choose one of {', '.join(DELETIONS)} "
                                    "(zero: cells set to 0; mean: cells set to the class's mean feature).")
        self.model, self.images, self.labels = model, images, np.asarray(labels)
        self.assignments = torch.as_tensor(np.asarray(assignments, dtype=np.int64))
        self._prototype_bound = int(self.assignments.max()) + 1 if self.assignments.numel() else 1  # prototype ids < this
        self.layer, layer_name = resolve_layer(model, layer)
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.deletion = deletion
        self.head = head_after(model, self.layer, layer_name, images[:4].to(self.device))
        self.forget()

    def forget(self) -> None:
        """Drop the layer outputs kept so far: call it after loading other weights into the model (the head
        after the layer is traced once, and reads the model's parameters)."""
        self._have = np.zeros(len(self.images), dtype=bool)  # rows whose output is in _kept
        self._kept: torch.Tensor | None = None  # (N, d, h, w), allocated at the first row computed
        self._last: tuple[bytes, torch.Tensor] | None = None
        self._class_mean: dict[int, torch.Tensor] = {}

    @torch.no_grad()
    def features(self, rows: np.ndarray) -> torch.Tensor:
        """The layer's output for probe ``rows``, each sample computed once and kept (the claim groups' rows
        overlap, and each is tested against dozens of random sets)."""
        rows = np.asarray(rows, dtype=np.int64)
        key = rows.tobytes()
        if self._last is not None and self._last[0] == key:  # a claim and its random sets share their rows
            return self._last[1]
        missing = np.unique(rows[~self._have[rows]])
        if len(missing):
            captured: list[torch.Tensor] = []
            handle = self.layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
            try:
                for start in range(0, len(missing), self.batch_size):
                    block = missing[start : start + self.batch_size]
                    self.model(self.images[block].to(self.device))
                    if self._kept is None:
                        self._kept = captured[0].new_empty((len(self.images),) + captured[0].shape[1:])
                    self._kept[torch.as_tensor(block, device=self._kept.device)] = captured.pop()
            finally:
                handle.remove()
            self._have[missing] = True
        self._last = (key, self._kept[torch.as_tensor(rows, device=self._kept.device)])
        return self._last[1]

    @torch.no_grad()
    def logits(self, rows: np.ndarray, prototypes: list[int] | None = None,
               assignments: torch.Tensor | None = None) -> torch.Tensor:
        """``(len(rows), C)`` logits of the final model on probe ``rows`` with ``prototypes`` deleted.

        ``assignments`` (``(N, h, w)``, default the run's) says which cells a prototype holds: the reliance test
        passes each sample's cells shuffled, so that deleting a prototype deletes as many random cells."""
        source = self.assignments if assignments is None else assignments
        deleted = torch.zeros(max([self._prototype_bound, *(k + 1 for k in prototypes or [])]), dtype=torch.bool)
        deleted[list(prototypes or [])] = True  # prototype -> deleted? (a lookup: cheaper than isin per block)
        out = []
        mask = _CellMask(self.layer) if self.head is None else None
        try:
            features = self.features(rows) if self.head is not None else None
            for start in range(0, len(rows), self.batch_size):
                block = rows[start : start + self.batch_size]
                cells = deleted[source[block]][:, None].to(self.device)
                if features is not None:
                    chunk = features[start : start + self.batch_size]
                    if prototypes:
                        chunk = masked(chunk, cells, self._fill(block))
                    out.append(self.head(chunk).float().cpu())
                    continue
                if prototypes:
                    mask.mask, mask.fill = cells, self._fill(block)
                out.append(self.model(self.images[block].to(self.device)).float().cpu())
        finally:
            if mask is not None:
                mask.close()
        return (out[0] if len(out) == 1 else torch.cat(out)) if out else torch.zeros(0)

    def _fill(self, rows: np.ndarray) -> torch.Tensor | None:
        if self.deletion == "zero":
            return None
        return torch.stack([self._mean_feature(int(c)) for c in self.labels[rows]])[..., None, None]

    @torch.no_grad()
    def _mean_feature(self, cls: int) -> torch.Tensor:
        """The class's mean feature vector at the layer (over its probe samples and cells)."""
        if cls not in self._class_mean:
            captured: list[torch.Tensor] = []
            handle = self.layer.register_forward_hook(lambda _m, _i, out: captured.append(out.sum((0, 2, 3))))
            rows = np.flatnonzero(self.labels == cls)
            try:
                for start in range(0, len(rows), self.batch_size):
                    self.model(self.images[rows[start : start + self.batch_size]].to(self.device))
            finally:
                handle.remove()
            cells = len(rows) * self.assignments.shape[1] * self.assignments.shape[2]
            self._class_mean[cls] = torch.stack(captured).sum(0) / cells
        return self._class_mean[cls]


def covered_area(assignments: np.ndarray, rows: np.ndarray, prototypes: list[int]) -> float:
    """Share of the cells of ``rows`` assigned to ``prototypes``."""
    return float(np.isin(assignments[rows], prototypes).mean()) if len(rows) else 0.0


def matched_random_sets(assignments: np.ndarray, rows: np.ndarray, size: int, area: float, count: int,
                        rng: np.random.Generator) -> list[list[int]]:
    """``count`` random sets of ``size`` prototypes present in ``rows`` whose covered area is closest to ``area``
    among ``20 × count`` draws (matched in count and in area, as validation.md asks)."""
    present = np.unique(assignments[rows])
    size = min(size, len(present))
    per_prototype = np.bincount(assignments[rows].ravel(), minlength=int(assignments.max()) + 1)
    cells = assignments[rows].size
    draws = present[np.argsort(rng.random((20 * count, len(present))), axis=1)[:, :size]]
    areas = per_prototype[draws].sum(1) / cells
    order = np.argsort(np.abs(areas - area), kind="stable")[:count]
    return [sorted(int(k) for k in draws[i]) for i in order]


def _confidence(logits: torch.Tensor, cls: int) -> np.ndarray:
    return torch.softmax(logits, 1)[:, cls].numpy()


def _margin(logits: torch.Tensor, favours: int, other: int) -> np.ndarray:
    return (logits[:, favours] - logits[:, other]).numpy()


def _pair_confusions(logits: torch.Tensor, labels: np.ndarray, a: int, b: int) -> int:
    predicted = logits.argmax(1).numpy()
    return int(((labels == a) & (predicted == b)).sum() + ((labels == b) & (predicted == a)).sum())


class _Effect:
    """What a claim predicts when its prototypes are deleted, on fixed rows (the unmasked pass is cached)."""

    def __init__(self, deleter: Deleter, rows: np.ndarray, kind: str, a: int, b: int | None):
        self.deleter, self.rows, self.kind, self.a, self.b = deleter, rows, kind, a, b
        self.base = self._measure(deleter.logits(rows))

    def _measure(self, logits: torch.Tensor):
        if self.kind == "drivers":
            return _confidence(logits, self.a)
        if self.kind == "separators":
            return _margin(logits, self.a, self.b)
        return _pair_confusions(logits, self.deleter.labels[self.rows], self.a, self.b)

    def __call__(self, prototypes: list[int]) -> float:
        after = self._measure(self.deleter.logits(self.rows, prototypes))
        if self.kind == "uncertain":
            return float(abs(after - self.base))
        return float(np.mean(self.base - after))


def delete_and_compare(deleter: Deleter, kind: str, a: int, b: int | None, rows: np.ndarray, prototypes: list[int],
               random_sets: int, rng: np.random.Generator, static: list[int] | None = None) -> FaithfulnessResult:
    """Delete ``prototypes`` on ``rows`` and compare the effect with matched random sets (and ``static``)."""
    effect_of = _Effect(deleter, rows, kind, a, b)
    assignments = deleter.assignments.numpy()
    area = covered_area(assignments, rows, prototypes)
    effect = effect_of(prototypes)
    sets = matched_random_sets(assignments, rows, len(prototypes), area, random_sets, rng)
    random = np.array([effect_of(s) for s in sets])
    static_effect = effect_of(static) if static else None
    return FaithfulnessResult(
        kind, a, b, list(prototypes), len(rows), area, effect, float(np.median(random)),
        float(np.mean([covered_area(assignments, rows, s) for s in sets])), float((random < effect).mean()),
        float((1 + (random >= effect).sum()) / (1 + len(random))), list(static or []), static_effect,
        None if static_effect is None else float((random < static_effect).mean()))


def static_prototypes(intensities_final: np.ndarray, presence: np.ndarray, rows: np.ndarray, m: int) -> list[int]:
    """The ``m`` prototypes holding the most final-checkpoint saliency in ``rows`` (intensity × cells)."""
    mass = (intensities_final[rows] * presence[rows]).sum(0)
    return [int(k) for k in np.argsort(-mass, kind="stable")[:m] if mass[k] > 0]


def deletion_tests(explanation, model: nn.Module, images: torch.Tensor, device: torch.device | str | None = None,
                   deletion: Deletion | None = None, random_sets: int | None = None
                   ) -> tuple[list[FaithfulnessResult], list[str]]:
    """Every claim group of ``explanation`` deleted on ``model`` (the run's final weights, in eval mode) on its
    probe ``images``; settings default to the run's config. Groups too small to test are named in a warning."""
    cfg = explanation.config
    deleter = Deleter(model, explanation.layer, images, explanation.labels, explanation.assignments,
                      deletion or cfg.deletion, cfg.batch_size, device)
    results, skipped = evaluate(explanation, deleter, cfg.top_prototypes, random_sets or cfg.faithfulness_random_sets,
                                cfg.faithfulness_samples, cfg.min_scope_samples, cfg.seed)
    for line in skipped:
        warnings.warn(f"I2X faithfulness: {line}.", stacklevel=3)
    return results, skipped


def evaluate(explanation, deleter: Deleter, top: int, random_sets: int, max_samples: int, min_samples: int,
             seed: int = 0) -> tuple[list[FaithfulnessResult], list[str]]:
    """Faithfulness of every claim group (see :func:`_evaluate`), on one intra-op thread: thousands of passes
    of a small head cost more in thread hand-offs than they gain."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _evaluate(explanation, deleter, top, random_sets, max_samples, min_samples, seed)
    finally:
        torch.set_num_threads(threads)


def _evaluate(explanation, deleter: Deleter, top: int, random_sets: int, max_samples: int, min_samples: int,
              seed: int = 0) -> tuple[list[FaithfulnessResult], list[str]]:
    """Faithfulness of every claim group of ``explanation``: each class's top drivers (with the static
    baseline), each pair's separators favouring each class, each pair's uncertain prototypes.

    ``top`` caps the prototypes deleted per group (the group's best by rank, q or score); ``max_samples`` caps
    the samples (a seeded subset). Groups with fewer than ``min_samples`` samples are skipped and named.
    """
    e, rng = explanation, np.random.default_rng(seed)
    labels = np.asarray(e.labels)
    results, skipped = [], []

    def rows_of(classes: tuple[int, ...], what: str) -> np.ndarray | None:
        rows = np.flatnonzero(np.isin(labels, classes))
        if len(rows) < min_samples:
            skipped.append(f"{what}: {len(rows)} samples < {min_samples}; not tested for faithfulness")
            return None
        return np.sort(rng.choice(rows, max_samples, replace=False)) if len(rows) > max_samples else rows

    for c in range(e.num_classes):
        drivers = sorted((d for d in e.drivers if d.cls == c), key=lambda d: d.rank)[:top]
        rows = rows_of((c,), f"drivers of class {c}")
        if rows is None:
            continue
        if not drivers:
            continue  # nothing claimed, nothing to test
        static = static_prototypes(e.intensities[-1], e.presence, rows, top)
        results.append(delete_and_compare(deleter, "drivers", c, None, rows, [d.prototype for d in drivers],
                                          random_sets, rng, static[: len(drivers)]))
    pairs = sorted({(s.a, s.b, s.favours) for s in e.separators})
    for a, b, favours in pairs:
        chosen = sorted((s for s in e.separators if (s.a, s.b, s.favours) == (a, b, favours)), key=lambda s: s.q)
        rows = rows_of((a, b), f"separators of {a}↔{b}")
        if rows is not None:
            other = b if favours == a else a
            results.append(delete_and_compare(deleter, "separators", favours, other, rows,
                                              [s.prototype for s in chosen[:top]], random_sets, rng))
    for a, b in sorted({(u.a, u.b) for u in e.uncertain}):
        chosen = [u.prototype for u in e.uncertain if (u.a, u.b) == (a, b)][:top]  # ranked by score
        rows = rows_of((a, b), f"uncertain prototypes of {a}↔{b}")
        if rows is not None:
            results.append(delete_and_compare(deleter, "uncertain", a, b, rows, chosen, random_sets, rng))
    return results, skipped


def check_model_and_data(explanation, model: nn.Module, images: torch.Tensor, labels: np.ndarray | None,
                         device: torch.device, batch_size: int = 512) -> None:
    """Refuse a model or probe set that is not the run's: other class count, layer, map size, data size or
    labels, or weights that do not reproduce the final checkpoint's predictions."""
    e = explanation
    if len(images) != len(e.labels):
        raise FaithfulnessError(f"The run explained {len(e.labels)} probe samples but {len(images)} were given; pass "
                                "the same probe set, in the same order.")
    if labels is not None and not np.array_equal(np.asarray(labels), e.labels):
        raise FaithfulnessError("The probe labels differ from the run's: pass the same probe set, in the same order.")
    try:
        layer, _ = resolve_layer(model, e.layer)
    except (AttributeError, KeyError, ValueError) as err:
        raise FaithfulnessError(f"The model has no layer {e.layer!r}, the layer the run explained ({err}); pass a "
                                f"{e.model_name} like the run's.") from err
    captured: list[tuple[int, ...]] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(tuple(out.shape[2:])))
    predicted = []
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                logits = model(images[start : start + batch_size].to(device))
                if logits.shape[1] != e.num_classes:
                    raise FaithfulnessError(f"The model has {logits.shape[1]} outputs but the run has {e.num_classes} "
                                            f"classes; pass a {e.model_name} like the run's.")
                predicted.append(logits.argmax(1).cpu().numpy())
    finally:
        handle.remove()
    if list(captured[0]) != list(e.map_size):
        raise FaithfulnessError(f"Layer {e.layer!r} gives {captured[0]} maps, the run's are {tuple(e.map_size)}: the "
                                "model's architecture or input size is not the run's.")
    agree = float((np.concatenate(predicted) == e.predictions[-1]).mean())
    if agree < 0.99:
        raise FaithfulnessError(f"The model agrees with the run's final predictions on {100 * agree:.1f}% of the probe "
                                f"samples: load the run's final checkpoint ({e.checkpoints[-1].path}) into it first.")
