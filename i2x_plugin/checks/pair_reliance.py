"""Pair relations of the final model (issue 21): margin reliance and confusers, tested like the reliance edges.

Both delete a prototype's cells at the explained layer (the :class:`~.faithfulness.Deleter`: only the layers after
it rerun) and measure the final model's softmax confidences, as :mod:`.reliance` does. Confidence, not the logit:
it saturates on samples the model does not take for a class, which is what lets the contrast below tell a pair's
own reliance from a prototype's pull on two output units wherever it appears.

*Margin reliance* of (k, favours f, against g), the faithful counterpart of a separator: the mean drop of
``p_f − p_g`` on the pair's held-out samples (classes f ∪ g) when k's cells are deleted. Tested in both directions
for every pair the run reports separators for and for the ``confused_pairs`` most confused pairs at the final
checkpoint (so a confused pair without a β separator is still tested). ``p`` is the larger of two one-sided
tests, as for reliance: against as many random cells of the same samples (Wilcoxon signed-rank of the per-sample
difference, :func:`~.reliance.shuffled_cells`), and against the same deletion's margin drop on the other classes'
held-out samples that hold k (Mann–Whitney U): a prototype that moves ``p_f − p_g`` on every sample says nothing
about f and g.

*Confusers* of a confused pair (a, b), the faithful counterpart of an uncertain prototype: for the
``confused_pairs`` most confused pairs at the final checkpoint, on the a↔b-misclassified samples (true a predicted
b or true b predicted a, final checkpoint), the effect is the mean *turn-back*: the rise of the true class's
confidence minus the mean rise of the other classes' (the predicted class left out). It is the true class that
must gain, not whichever class the freed confidence spreads to: on a model trained on shuffled labels the true
class is one output among the others and the turn-back is null, although deleting what supports the predicted
class still drops its confidence. ``p``: against as many random cells (Wilcoxon signed-rank).

Cross-fitted: margin edges are ranked on the selection halves of f ∪ g (:func:`~.reliance.split_class`, the
reliance edges' halves) and tested on the held-out halves; a pair's misclassified samples are split the same way,
seeded per pair, and a pair whose halves would hold fewer than ``MIN_HALF`` samples is named in ``skipped``.
``q``: Benjamini–Hochberg over the edges of one kind in the run. An edge is claimed when q ≤ ``fdr_q`` and it beats
the random cells by ``pair_reliance_min_effect`` (0.01 of confidence). Every pair group with a claimed edge also
has its top set (its ``top_prototypes`` best by selection-half effect) deleted together on the held-out samples
and compared with area-matched random prototype sets in the same measure (:class:`PairSet`); so has every tested
confused pair. A set passes when it beats 95 % of them and their median by ``pair_reliance_min_effect``; confuser
sets also count the held-out samples they turn back to their true class.

Measured (``bench/results/reliance.json``): on the default run (mnist-5k, K = 32) 57 of the 58 pair groups with
a claimed margin edge pass, and the confusers of 4 of the 5 most confused pairs; 2 single confuser edges are
claimed, both for 4↔9 (17 held-out misclassified samples; the other pairs have 8–10). On SmallCNNs trained on shuffled digit labels (5 seeds)
no pair edge is claimed and no set passes; before the set's effect had to beat the random median by the
minimum, confuser sets passed for 1–2 of 5 pairs per seed, by systematic turn-backs of a few thousandths.

When it formed: as for reliance (:func:`~.reliance.formation`): each claimed edge is deleted again at every
checkpoint on the same held-out samples and ``formed_at`` is the first checkpoint from which, through the last,
its p stays at or below ``fdr_q / T`` and its effect is at least half its final effect.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import false_discovery_control, mannwhitneyu, wilcoxon
from torch import nn

from ..method.claims import most_confused_pairs
from ..method.evidence import FaithfulnessResult, PairEdge, PairSet, RelianceEdge, RelianceResult
from ..training.checkpoints import default_load_func
from .faithfulness import Deleter, covered_area, matched_random_sets
from .reliance import (FORMATION_DRAWS, MIN_NONZERO, class_points, claimed_edges, every_drop, formed_at, passes_at,
                       replay, shuffled_cells, split_class, with_dates)

EXACT_UP_TO = 50  # held-out samples above which the signed-rank p is the normal approximation (scipy's cut-off)
MIN_HALF = MIN_NONZERO  # misclassified samples per half: a Wilcoxon test on fewer cannot reach 5 %


@dataclass(frozen=True)
class PairGroup:
    """Where a pair relation is measured: its selection and held-out probe rows, and per row the weights that turn
    the ``(rows, C)`` confidence drops into the relation's per-sample effect (``(drops * weights).sum(1)``)."""

    kind: str  # "margin" | "confuser"
    a: int
    b: int
    favours: int | None
    selection: np.ndarray
    held: np.ndarray
    selection_weights: np.ndarray  # (len(selection), C)
    held_weights: np.ndarray  # (len(held), C)


@dataclass(frozen=True)
class PairRelations:
    """Every pair edge measured (q filled in), the top sets of the groups with a claimed edge, what was skipped."""

    edges: list[PairEdge]
    sets: list[PairSet]
    skipped: list[str]
    groups: list[PairGroup]
    contrast: np.ndarray  # the held-out rows the margin edges are contrasted with (all classes' held-out halves)


def _margin_weights(n: int, classes: int, favours: int, against: int) -> np.ndarray:
    w = np.zeros((n, classes))
    w[:, favours], w[:, against] = 1.0, -1.0
    return w


def _turn_back_weights(true: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Weights of the turn-back (confidence *drops* in, so the signs are flipped): −1 on the true class, +1/(C−2)
    on each class that is neither true nor predicted."""
    w = np.full((len(true), classes), 1.0 / max(classes - 2, 1))
    w[np.arange(len(true)), predicted] = 0.0
    w[np.arange(len(true)), true] = -1.0
    return w


def pair_groups(explanation, halves: dict[int, tuple], held_out: float, seed: int
                ) -> tuple[list[PairGroup], list[str]]:
    """The margin groups (both directions of every separator pair and most confused pair) and the confuser groups
    (the most confused pairs' misclassified samples, split in halves), and the pairs skipped, with why."""
    e, labels, classes = explanation, np.asarray(explanation.labels), explanation.num_classes
    confused = most_confused_pairs(e.confusion[-1], e.config.confused_pairs)
    pairs = sorted({(min(s.a, s.b), max(s.a, s.b)) for s in e.separators} | set(confused))
    groups, skipped = [], []
    for a, b in pairs:
        missing = [c for c in (a, b) if c not in halves]
        if missing:
            skipped.append(f"margin reliance of {a}↔{b}: class {missing[0]} is too small to cross-fit")
            continue
        selection = np.concatenate([halves[a][0], halves[b][0]])
        held = np.concatenate([halves[a][1], halves[b][1]])
        for favours, against in ((a, b), (b, a)):
            groups.append(PairGroup("margin", a, b, favours, selection, held,
                                    _margin_weights(len(selection), classes, favours, against),
                                    _margin_weights(len(held), classes, favours, against)))
    predicted = np.asarray(e.predictions[-1])
    for a, b in confused:
        rows = np.flatnonzero(((labels == a) & (predicted == b)) | ((labels == b) & (predicted == a)))
        rng = np.random.default_rng([seed, 21, a, b, 0xC0F])
        rows = rng.permutation(rows)
        n_held = int(round(held_out * len(rows)))
        if min(n_held, len(rows) - n_held) < MIN_HALF:
            skipped.append(f"confusers of {a}↔{b}: {len(rows)} misclassified samples leave a half under {MIN_HALF} "
                           f"(held-out share {held_out:g}); too few to cross-fit")
            continue
        selection, held = np.sort(rows[n_held:]), np.sort(rows[:n_held])
        groups.append(PairGroup("confuser", a, b, None, selection, held,
                                _turn_back_weights(labels[selection], predicted[selection], classes),
                                _turn_back_weights(labels[held], predicted[held], classes)))
    return groups, skipped


def _stats(group: PairGroup, present: np.ndarray, own: np.ndarray, random: np.ndarray, pos: np.ndarray,
           contrast: np.ndarray, labels: np.ndarray, random_from: int = 0) -> dict[str, np.ndarray]:
    """Per prototype (the first axis of ``own`` / ``random``: ``(K', rows, C)`` confidence drops, own and mean
    random; ``pos``: probe row → row; ``present``: ``(K', N)``): selection effect, effect, random effect, random p,
    and for margin groups contrast effect and contrast p, each ``(K',)``. The tests run batched over prototypes.
    ``random`` holds the rows from position ``random_from`` on: the held-out and contrast rows its null is tested on."""
    def effect(drops: np.ndarray, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return np.einsum("knc,nc->kn", drops[:, pos[rows] - (random_from if drops is random else 0)], weights)

    held = effect(own, group.held, group.held_weights)
    diff = held - effect(random, group.held, group.held_weights)
    enough = np.count_nonzero(diff, 1) >= MIN_NONZERO
    random_p = np.ones(len(own))
    if enough.any() and diff.shape[1] > EXACT_UP_TO:
        random_p[enough] = wilcoxon(diff[enough], axis=1, alternative="greater", zero_method="wilcox",
                                    method="approx").pvalue
    for i in np.flatnonzero(enough) if diff.shape[1] <= EXACT_UP_TO else ():
        # few samples: the exact distribution of the non-zero differences (scipy falls back to a slow
        # permutation test when zeros are left in, 10 s for 32 prototypes of 12 samples)
        random_p[i] = wilcoxon(diff[i][diff[i] != 0], alternative="greater").pvalue
    out = {"selection": effect(own, group.selection, group.selection_weights).mean(1) if len(group.selection)
           else np.zeros(len(own)), "effect": held.mean(1), "random": (held - diff).mean(1), "random_p": random_p}
    if group.kind == "margin":
        others = contrast[~np.isin(labels[contrast], (group.a, group.b))]
        weights = _margin_weights(len(others), own.shape[2], group.favours, group.a + group.b - group.favours)
        other_own = effect(own, others, weights)
        other_diff = np.where(present[:, others], other_own - effect(random, others, weights), np.nan)
        mine = np.where(present[:, group.held], diff, np.nan)
        counts = np.minimum((~np.isnan(mine)).sum(1), (~np.isnan(other_diff)).sum(1))
        contrast_p = np.ones(len(own))
        ok = counts >= MIN_NONZERO
        if ok.any():
            contrast_p[ok] = mannwhitneyu(mine[ok], other_diff[ok], axis=1, alternative="greater",
                                          nan_policy="omit").pvalue
        held_other = present[:, others].sum(1)
        out["contrast"] = np.where(held_other > 0, np.where(present[:, others], other_own, 0).sum(1)
                                   / np.maximum(held_other, 1), 0.0)
        out["contrast_p"] = contrast_p
    return out


def _rows_of(groups: list[PairGroup], contrast: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The probe rows the groups and the contrast need, those only ranked on (selection halves) first, then those
    the null is tested on (held-out halves, contrast); probe row → position; how many are only ranked on."""
    tested = np.unique(np.concatenate([contrast] + [g.held for g in groups]))
    ranked = np.setdiff1d(np.concatenate([np.zeros(0, dtype=np.int64)] + [g.selection for g in groups]), tested)
    rows = np.concatenate([ranked, tested]).astype(np.int64)
    pos = np.full(int(rows.max()) + 1 if len(rows) else 0, -1, dtype=np.int64)
    pos[rows] = np.arange(len(rows))
    return rows, pos, len(ranked)


def measure_pair_edges(explanation, deleter: Deleter, groups: list[PairGroup], contrast: np.ndarray,
                       shuffled: list[torch.Tensor]) -> list[PairEdge]:
    """Every (prototype, pair group) edge present in the group's samples, measured on its held-out samples, ranked
    by its selection-half effect, with q by BH over the run's edges of each kind."""
    if not groups:
        return []
    e, labels = explanation, np.asarray(explanation.labels)
    rows, pos, ranked = _rows_of(groups, contrast)
    prototypes = [int(k) for k in np.flatnonzero(e.presence[rows].sum(0) > 0)]
    own, random = every_drop(deleter, rows, shuffled, prototypes, ranked)
    present = (e.presence[:, prototypes] > 0).T
    edges = []
    for g in groups:
        stats = _stats(g, present, own, random, pos, contrast, labels, ranked)
        found = np.flatnonzero(present[:, g.selection].any(1) | present[:, g.held].any(1))
        order = sorted(found, key=lambda i: (-stats["selection"][i], prototypes[i]))
        for rank, i in enumerate(order, 1):
            contrast_p = None if "contrast_p" not in stats else float(stats["contrast_p"][i])
            random_p = float(stats["random_p"][i])
            edges.append(PairEdge(g.kind, prototypes[i], g.a, g.b, g.favours, float(stats["effect"][i]),
                                  float(stats["random"][i]), random_p if contrast_p is None else max(random_p, contrast_p),
                                  float("nan"), rank, float(stats["selection"][i]), len(g.held), random_p=random_p,
                                  contrast_effect=None if contrast_p is None else float(stats["contrast"][i]),
                                  contrast_p=contrast_p))
    out = []
    for kind in ("margin", "confuser"):
        of_kind = [x for x in edges if x.kind == kind]
        if of_kind:
            q = false_discovery_control([x.p for x in of_kind], method="bh")
            out += [dataclasses.replace(x, q=float(v)) for x, v in zip(of_kind, q)]
    return out


def claimed(edges: list[PairEdge], fdr_q: float, min_effect: float) -> list[PairEdge]:
    """The claimed edges: q ≤ fdr_q and an effect at least ``min_effect`` above the random cells'."""
    return [x for x in edges if x.q <= fdr_q and x.effect - x.random_effect >= min_effect]


def _same_group(edge: PairEdge, group: PairGroup) -> bool:
    return (edge.kind, edge.a, edge.b, edge.favours) == (group.kind, group.a, group.b, group.favours)


def set_test(deleter: Deleter, group: PairGroup, prototypes: list[int], random_sets: int,
             rng: np.random.Generator, min_effect: float) -> PairSet:
    """``prototypes`` deleted together on the group's held-out samples, in the group's measure, against
    ``random_sets`` prototype sets matched in count and covered area (:func:`~.faithfulness.matched_random_sets`)."""
    rows, weights = group.held, group.held_weights
    base = torch.softmax(deleter.logits(rows), 1).numpy().astype(np.float64)

    def effect(chosen: list[int]) -> tuple[float, np.ndarray]:
        after = torch.softmax(deleter.logits(rows, chosen), 1).numpy().astype(np.float64)
        return float(((base - after) * weights).sum(1).mean()), after

    assignments = deleter.assignments.numpy()
    area = covered_area(assignments, rows, prototypes)
    value, after = effect(prototypes)
    sets = matched_random_sets(assignments, rows, len(prototypes), area, random_sets, rng)
    random = np.array([effect(s)[0] for s in sets])
    a, b = (group.a, group.b) if group.favours is None else (group.favours, group.b + group.a - group.favours)
    test = FaithfulnessResult(
        group.kind, a, b, list(prototypes), len(rows), area, value, float(np.median(random)),
        float(np.mean([covered_area(assignments, rows, s) for s in sets])), float((random < value).mean()),
        float((1 + (random >= value).sum()) / (1 + len(random))), [], None, None)
    turned = None if group.kind == "margin" else int((after.argmax(1) == deleter.labels[rows]).sum())
    passes = test.percentile >= 0.95 and test.effect - test.random_median >= min_effect
    return PairSet(group.kind, group.a, group.b, group.favours, test, passes, turned)


def pair_relations(explanation, deleter: Deleter, shuffled: list[torch.Tensor], halves: dict[int, tuple]
                   ) -> PairRelations:
    """The margin reliance and confusers of the final model (``deleter``), with the top sets of the groups that
    have a claimed edge; settings from the run's config (see the module docstring)."""
    cfg = explanation.config
    groups, skipped = pair_groups(explanation, halves, cfg.reliance_held_out, cfg.seed)
    contrast = np.concatenate([halves[c][1] for c in sorted(halves)]) if halves else np.zeros(0, dtype=np.int64)
    edges = measure_pair_edges(explanation, deleter, groups, contrast, shuffled)
    kept = claimed(edges, cfg.fdr_q, cfg.pair_reliance_min_effect)
    rng, sets = np.random.default_rng([cfg.seed, 21, 7]), []
    for g in groups:
        if g.kind == "margin" and not any(_same_group(x, g) for x in kept):
            continue  # a margin group is reported when it has a claimed edge; every confused pair is tested
        chosen = [x.prototype for x in sorted((x for x in edges if _same_group(x, g)), key=lambda x: x.rank)
                  if x.selection_effect > 0][: cfg.top_prototypes]
        if not chosen:
            what = "margin reliance" if g.kind == "margin" else "confusers"
            skipped.append(f"{what} of {g.a}↔{g.b}: no prototype has a positive effect on the selection half; "
                           "no top set to test")
            continue
        sets.append(set_test(deleter, g, chosen, cfg.faithfulness_random_sets, rng, cfg.pair_reliance_min_effect))
    return PairRelations(edges, sets, skipped, groups, contrast)


def date_edges(explanation, model: nn.Module, images: torch.Tensor, relations: PairRelations, alpha: float,
               shuffled: list[torch.Tensor], device, load_func: Callable[[nn.Module, str], None],
               class_edges: list[RelianceEdge] = (), held: np.ndarray | None = None
               ) -> tuple[list[PairEdge], float | None, dict[tuple[int, int], list]]:
    """The relations' edges with, for the claimed ones, their effect and p at every checkpoint and ``formed_at``,
    and the share of claimed edges that pass the formation rule at checkpoint 0; and, in the same replay (each
    checkpoint's deletions made once for both), ``class_edges`` measured on the ``held`` rows: per checkpoint,
    their :func:`~.reliance.class_points`. The model is left holding the final checkpoint's weights."""
    e, cfg, labels = explanation, explanation.config, np.asarray(explanation.labels)
    dated = claimed(relations.edges, cfg.fdr_q, cfg.pair_reliance_min_effect)
    held = np.zeros(0, dtype=np.int64) if held is None else held
    if not dated and not class_edges:
        return relations.edges, None, []
    groups = [g for g in relations.groups if any(_same_group(x, g) for x in dated)]
    held_only = [dataclasses.replace(g, selection=g.held[:0], selection_weights=g.held_weights[:0]) for g in groups]
    rows, pos, _ = _rows_of(held_only, np.union1d(relations.contrast, held))  # every row is tested on
    prototypes = sorted({x.prototype for x in dated} | {x.prototype for x in class_edges})
    present = (e.presence[:, prototypes] > 0).T

    def measure(deleter: Deleter) -> dict:
        own, random = every_drop(deleter, rows, shuffled[:FORMATION_DRAWS], prototypes)
        at = class_points(e, list(class_edges), held, own, random, pos, prototypes)
        for g in held_only:
            mine = [x for x in dated if _same_group(x, g)]
            idx = np.array([prototypes.index(x.prototype) for x in mine])  # only the group's dated prototypes
            stats = _stats(g, present[idx], own[idx], random[idx], pos, relations.contrast, labels)
            p = stats["random_p"] if "contrast_p" not in stats else np.maximum(stats["random_p"], stats["contrast_p"])
            for i, x in enumerate(mine):
                at[id(x)] = (float(stats["effect"][i]), float(p[i]))
        return at

    measured = replay(e, model, images, cfg.deletion, device, load_func, measure)
    out = {}
    for x in dated:
        s = [at[id(x)] for at in measured]
        out[id(x)] = dataclasses.replace(x, effect_by_checkpoint=[round(v, 6) for v, _ in s],
                                         p_by_checkpoint=[float(p) for _, p in s], formed_at=formed_at(s, alpha))
    rate = float(np.mean([passes_at(out[id(x)], 0, alpha) for x in dated])) if dated else None
    return [out.get(id(x), x) for x in relations.edges], rate, measured


def class_halves(explanation) -> dict[int, tuple]:
    """Each class's (selection, held-out) rows, exactly as the reliance edges split them (classes too small to
    cross-fit are left out; the reliance check names them)."""
    cfg, labels = explanation.config, np.asarray(explanation.labels)
    halves = {}
    for c in range(explanation.num_classes):
        split = split_class(labels, c, cfg.reliance_held_out, 2 * cfg.faithfulness_samples, cfg.min_scope_samples,
                            cfg.seed)
        if not isinstance(split, str):
            halves[c] = split
    return halves


def with_pair_relations(result: RelianceResult, explanation, model: nn.Module, images: torch.Tensor,
                        device: torch.device | str | None = None,
                        load_func: Callable[[nn.Module, str], None] = default_load_func,
                        date_class_edges: bool = False) -> RelianceResult:
    """``result`` (the reliance relation of ``model``, the run's final weights in eval mode, on its probe
    ``images``) with the pair relations added: margin reliance, confusers, their top sets and (with
    ``reliance_formation``) their formation steps at ``fdr_q / T``; the pairs skipped are added to ``skipped``.
    ``date_class_edges``: ``result`` was measured without dates (``reliance(..., dates=False)``), and its claimed
    edges are dated here, in the pair edges' replay of the checkpoints, instead of a replay of their own."""
    cfg = explanation.config
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # thousands of passes of a small head, as in reliance()
    try:
        deleter = Deleter(model, explanation.layer, images, explanation.labels, explanation.assignments,
                          cfg.deletion, cfg.batch_size, device)
        shuffled = shuffled_cells(np.asarray(explanation.assignments), cfg.reliance_random_draws, cfg.seed)
        halves = class_halves(explanation)
        relations = pair_relations(explanation, deleter, shuffled, halves)
        edges, rate = relations.edges, None
        if cfg.reliance_formation:
            alpha = cfg.fdr_q / len(explanation.checkpoints)
            to_date = claimed_edges(result.edges, cfg) if date_class_edges else []
            held = np.concatenate([halves[c][1] for c in sorted(halves)]) if halves else None
            edges, rate, measured = date_edges(explanation, model, images, relations, alpha, shuffled, device,
                                               load_func, to_date, held)
            if date_class_edges:
                class_dated, class_rate = with_dates(result.edges, to_date, measured, alpha)
                result = dataclasses.replace(result, edges=class_dated, formation_alpha=alpha,
                                             checkpoint0_false_rate=class_rate)
    finally:
        torch.set_num_threads(threads)
    return dataclasses.replace(result, pair_edges=edges, pair_sets=relations.sets,
                               pair_min_effect=cfg.pair_reliance_min_effect, pair_checkpoint0_false_rate=rate,
                               skipped=result.skipped + relations.skipped)
