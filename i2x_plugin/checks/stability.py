"""Stability of the claims (validation.md §3): would another fit of the prototypes say the same?

The prototypes are re-fitted with other K-Means seeds and on bootstrap resamples of the probe set. Each
re-fit re-derives the intensities from the saliency maps the sweep kept (no new sweep: maps do not
depend on the prototypes), then the claims, with the same tests. Re-fitted prototypes are matched to
the run's by the cells they share (Hungarian assignment on the overlap of the two partitions), so a
claim of a re-fit can be compared with the run's. Reported: the Jaccard overlap of
drivers, separators and uncertain prototypes with the run's, the Kendall rank correlation of the
pairs' separation checkpoints (the learning order), and per claim how often it recurs.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from scipy.stats import kendalltau
from threadpoolctl import threadpool_limits

from ..method.claims import calibrated_claims, class_pairs, saliency_share
from ..method.distributed import available_cores
from ..method.evidence import StabilityResult
from ..method.progress import confusion_matrix, prototype_intensity
from ..method.prototypes import fit_prototypes, match_prototypes
from ..method.ridge import standardize_delta_p
from ..method.structure import pair_separations

KINDS = ("drivers", "separators", "uncertain")
OVERLAPS = ("drivers", "top drivers", "separators", "uncertain")


class StabilityError(ValueError):
    """The stability test cannot run on this explanation (no saliency maps kept, mismatched features)."""


_IDENTITY = {  # what makes a claim the same claim across fits: (class, k), (a, b, favours, k), (a, b, k)
    "drivers": lambda d: (d.cls, d.prototype),
    "separators": lambda s: (s.a, s.b, s.favours, s.prototype),
    "uncertain": lambda u: (u.a, u.b, u.prototype),
}


def claim_keys(claims, kind: str, top: int = 5) -> set[tuple[int, ...]]:
    """The identity of each claim of a kind; "top drivers" are the ``top`` drivers of each class by rank (those
    the answers show and the deletion test deletes)."""
    if kind == "top drivers":
        return {_IDENTITY["drivers"](d) for d in claims.drivers if d.rank < top}
    return {_IDENTITY[kind](claim) for claim in getattr(claims, kind)}


def _renamed(keys: set[tuple[int, ...]], mapping: np.ndarray) -> set[tuple[int, ...]]:
    """Replace the prototype (last entry) of each key by the run's prototype it was matched to."""
    return {key[:-1] + (int(mapping[key[-1]]),) for key in keys}


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def _separation_ranks(confusion: np.ndarray, labels: np.ndarray, fraction: float) -> np.ndarray:
    pairs = class_pairs(confusion.shape[1])
    steps = len(confusion)
    return np.array([s.separation_checkpoint if s.separation_checkpoint is not None else steps
                     for s in pair_separations(confusion, labels, pairs, fraction)], dtype=float)


def stability_test(explanation, features: np.ndarray, kmeans_seeds: int | list[int], bootstraps: int,
                   seed: int = 0) -> tuple[StabilityResult, dict[str, dict[tuple[int, ...], float]]]:
    """Re-fit the prototypes with other K-Means seeds and on ``bootstraps`` resamples of the probe set.

    Args:
        explanation: the run's :class:`~.structure.StructuredExplanation`, with its saliency maps.
        features: the final model's features at the explained layer for the probe set ``(N, h, w, d)``.
        kmeans_seeds: how many other seeds (the run's seed + 1, + 2, …), or the seeds themselves.

    Returns:
        The :class:`StabilityResult` and, per claim kind, each of the run's claims' recurrence (the share of
        re-fits that make it too).
    """
    e, cfg = explanation, explanation.config
    refits = (len(kmeans_seeds) if isinstance(kmeans_seeds, list) else kmeans_seeds) + bootstraps
    if refits < 2:
        raise StabilityError(f"The stability test needs at least 2 re-fits to say how often a claim recurs; "
                             f"{refits} were asked. Give stability_kmeans_seeds + stability_bootstraps ≥ 2 "
                             "(the default is 2 + 2).")
    if e.saliency_maps is None:
        raise StabilityError(f"Run {e.run_id!r} kept no saliency maps (I2XConfig.keep_maps was off), so other "
                             "prototypes cannot be measured without a new sweep. Explain it again with keep_maps=True.")
    if features.shape[:3] != e.assignments.shape:
        raise StabilityError(f"Features {features.shape[:3]} do not match the run's assignments {e.assignments.shape}: "
                             "pass the final model's features for the run's own probe set.")
    rng = np.random.default_rng(seed)
    top = cfg.top_prototypes
    run_keys = {kind: claim_keys(e, kind, top) for kind in OVERLAPS}
    hits = {kind: {key: 0 for key in run_keys[kind]} for kind in KINDS}
    ranks = _separation_ranks(e.confusion, e.labels, cfg.separation_confusion_fraction)
    seeds = kmeans_seeds if isinstance(kmeans_seeds, list) else [cfg.seed + 1 + i for i in range(kmeans_seeds)]
    plans = [(f"kmeans-seed-{s}", s, None) for s in seeds]
    plans += [(f"bootstrap-{i}", cfg.seed, rng.choice(len(e.labels), len(e.labels), replace=True))
              for i in range(bootstraps)]

    def refit(plan: tuple[str, int, np.ndarray | None]):
        _name, kmeans_seed, rows = plan
        rows = np.arange(len(e.labels)) if rows is None else np.sort(rows)
        fitted = fit_prototypes(features[rows], e.k, cfg.pca_components, cfg.pca_max_rows, cfg.minibatch_kmeans_rows,
                                kmeans_seed, cfg.kmeans_inits)
        mapping, agreement = match_prototypes(e.assignments[rows], fitted.assignments, e.k)
        claims, confusion = _refit_claims(e, rows, fitted.assignments, fitted.presence())
        keys = {kind: _renamed(claim_keys(claims, kind, top), mapping) for kind in OVERLAPS}
        tau = kendalltau(ranks, _separation_ranks(confusion, e.labels[rows], cfg.separation_confusion_fraction))
        return keys, agreement, float(tau.statistic) if np.isfinite(tau.statistic) else 1.0

    # The re-fits are independent: side by side, one per core (each fit on one BLAS thread: the limit is set
    # here, once, as it holds for the whole process), the same numbers as one after the other.
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(min(len(plans), available_cores())) as pool:
        refits = list(pool.map(refit, plans))
    names, jaccard, taus, agreements = [name for name, _, _ in plans], {kind: [] for kind in OVERLAPS}, [], []
    for keys, agreement, tau in refits:
        agreements.append(agreement)
        taus.append(tau)
        for kind in OVERLAPS:
            jaccard[kind].append(_jaccard(run_keys[kind], keys[kind]))
            if kind in hits:
                for key in run_keys[kind] & keys[kind]:
                    hits[kind][key] += 1
    recurrence = {kind: {key: count / max(len(plans), 1) for key, count in hits[kind].items()} for kind in KINDS}
    return StabilityResult(names, jaccard, taus, agreements), recurrence


def _refit_claims(e, rows: np.ndarray, assignments: np.ndarray, presence: np.ndarray):
    """The claims of the run's sweep re-read with other prototypes on probe ``rows`` (no groups: the stability
    test compares drivers, separators and uncertain prototypes)."""
    maps = torch.from_numpy(e.saliency_maps[:, rows].astype(np.float32))
    assign = torch.from_numpy(assignments.astype(np.int64))
    intensities = np.stack([prototype_intensity(maps[t], assign, e.k).numpy() for t in range(len(maps))])
    labels, confidences = e.labels[rows], e.confidences[:, rows]
    confusion = np.stack([confusion_matrix(labels, p, e.num_classes) for p in e.predictions[:, rows]])
    x = standardize_delta_p(np.diff(intensities, axis=0).astype(np.float64))
    y = np.diff(confidences, axis=0).astype(np.float64)
    share = saliency_share(intensities[-1], presence, labels, e.num_classes)
    no_groups = np.full(x.shape[:2], -1)
    claims = calibrated_claims(x, y, labels, no_groups, confusion[-1], share, e.config)
    return claims, confusion


def with_recurrence(explanation, result: StabilityResult, recurrence: dict[str, dict[tuple[int, ...], float]],
                    share: float | None = None):
    """The explanation with its stability figures and each driver, separator and uncertain claim's recurrence.

    ``share`` given (stability selection): only the claims that recur in at least that share of the re-fits
    are kept, drivers re-ranked within their class; how many of each kind were dropped is in
    ``stability.unstable``. None keeps every claim.
    """
    if share is not None and not 0 < share <= 1:
        raise StabilityError(f"A stability selection share of {share} is outside (0, 1]: it is the share of "
                             "re-fits a claim must recur in (e.g. 0.5), or None to keep every claim.")
    kept, unstable = {}, {}
    for kind in KINDS:
        claims = [dataclasses.replace(claim, recurrence=recurrence[kind].get(_IDENTITY[kind](claim)))
                  for claim in getattr(explanation, kind)]
        stable = [c for c in claims if share is None or (c.recurrence or 0.0) >= share - 1e-9]
        kept[kind], unstable[kind] = stable, len(claims) - len(stable)
    kept["drivers"] = _reranked(kept["drivers"])
    result = dataclasses.replace(result, selection_share=share, unstable=unstable if share is not None else {})
    return dataclasses.replace(explanation, stability=result, **kept)


def _reranked(drivers: list) -> list:
    """Drivers with ``rank`` renumbered 0, 1, … within each class, in their order (by saliency share)."""
    seen: dict[int, int] = {}
    out = []
    for d in sorted(drivers, key=lambda d: (d.cls, d.rank)):
        out.append(dataclasses.replace(d, rank=seen.setdefault(d.cls, 0)))
        seen[d.cls] += 1
    return out


def tested_for_stability(explanation, features: np.ndarray, kmeans_seeds: int | None = None,
                         bootstraps: int | None = None):
    """The stability test with the run's settings (re-fits, seed, ``stability_selection``): the explanation with
    its stability figures and recurrences, and only the claims that recur often enough."""
    cfg = explanation.config
    result, recurrence = stability_test(
        explanation, features, cfg.stability_kmeans_seeds if kmeans_seeds is None else kmeans_seeds,
        cfg.stability_bootstraps if bootstraps is None else bootstraps, cfg.seed)
    return with_recurrence(explanation, result, recurrence, cfg.stability_selection)
