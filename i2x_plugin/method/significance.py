"""The null side of every I2X claim: permutation p-values, sequence statistics and the false discovery rate.

Null model (validation.md §1): within each class the samples' whole ΔP trajectories are permuted, one
permutation for every step, so no saliency change belongs to its own confidence change any more while
every marginal distribution, and each sample's own serial dependence, stays as it was. (D) Why whole
trajectories: ΔP at steps t and t+1 share checkpoint t+1; on the default run the step-to-step correlation
of ΔP within a class has median 0.30 (IQR −0.19 to 0.60), so steps permuted independently are not a null
of the data (a pooled β's null variance was up to 2× too small). Learning-pattern groups, which change from
step to step, are permuted within (step, group): their fits are single-step.

* A single β (or a contrast of βs) is a linear permutation statistic: its exact null cumulants come from
  :mod:`.ridge` (with the cross-step terms when it pools steps), and its p-value is the tail of the
  three-moment (Pearson III) law they define.
* A separator's window statistic is a Stouffer sum of per-step scores divided by its null standard
  deviation, from the exact step-to-step null correlation (:func:`.ridge.step_fits`).
* Flip counts (uncertain prototypes) are compared with the flip counts of the Monte Carlo trajectory
  permutations themselves (:func:`flip_count_p`): no independence between steps is assumed.
* q-values are Benjamini–Hochberg over the claims of one kind in a run (the FDR family is the kind).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm, rankdata


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values of ``p`` (any shape; NaN entries are not tests and stay NaN)."""
    p = np.asarray(p, dtype=float)
    q = np.full(p.shape, np.nan)
    tested = ~np.isnan(p)
    values = p[tested]
    m = values.size
    if m == 0:
        return q
    order = np.argsort(values, kind="stable")
    ranked = values[order] * m / np.arange(1, m + 1)
    adjusted = np.empty(m)
    adjusted[order] = np.minimum.accumulate(ranked[::-1])[::-1]
    q[tested] = np.minimum(adjusted, 1.0)
    return q


def significant_side(observed: np.ndarray, null_draws: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Per entry, +1 / −1 where the observed statistic is in the upper / lower α/2 tail of its permutation
    draws (by rank among the B draws and itself), else 0; and the exact per-side null probability.

    ``observed`` is ``(...)``, ``null_draws`` is ``(B, ...)``.
    """
    b = len(null_draws)
    hits = int(np.floor(alpha / 2 * (b + 1)))
    if hits < 1:
        raise ValueError(f"{b} permutations cannot resolve a two-sided level of {alpha}: use at least "
                         f"{int(np.ceil(2 / alpha))} permutations (I2XConfig.n_permutations).")
    above = (null_draws >= observed).sum(0) + 1  # rank from the top, the observed value included
    below = (null_draws <= observed).sum(0) + 1
    side = np.where(above <= hits, 1, np.where(below <= hits, -1, 0))
    return side, hits / (b + 1)


def count_flips(signs: np.ndarray) -> tuple[int, list[int]]:
    """Sign changes between consecutive non-zero entries of a ``(T,)`` sequence, and the steps they occur at."""
    steps = np.flatnonzero(signs)
    values = signs[steps]
    at = steps[1:][values[1:] != values[:-1]]
    return len(at), at.tolist()


def flip_count_p(observed: np.ndarray, null_draws: np.ndarray,
                 alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Monte Carlo p-value of the number of sign flips between significant steps of ``(T, ...)`` sequences.

    The observed sequence and its B trajectory-permutation draws ``(B, T, ...)`` are exchangeable under the
    null, so each of the B + 1 is given its significant sides by its rank among all of them (as in
    :func:`significant_side`) and its flip count; p = share of the B + 1 with at least the observed flips
    (1 for none). Exact at any serial dependence; its smallest value is 1/(B + 1).

    Returns:
        the observed sides ``(T, ...)``, its flip counts ``(...)`` and p ``(...)``.
    """
    everything = np.concatenate([observed[None], null_draws])
    total = len(everything)
    hits = int(np.floor(alpha / 2 * total))
    if hits < 1:
        raise ValueError(f"{total - 1} permutations cannot resolve a two-sided level of {alpha}: use at least "
                         f"{int(np.ceil(2 / alpha))} permutations (I2XConfig.n_permutations).")
    below = rankdata(everything, method="max", axis=0)  # how many are ≤ each, itself included
    above = total + 1 - rankdata(everything, method="min", axis=0)
    sides = np.where(above <= hits, 1, np.where(below <= hits, -1, 0))
    flips, last = np.zeros(sides.shape[:1] + sides.shape[2:], dtype=int), np.zeros_like(sides[:, 0])
    for t in range(sides.shape[1]):
        now = sides[:, t]
        flips += (now != 0) & (last != 0) & (now != last)
        last = np.where(now != 0, now, last)
    p = (flips >= flips[:1]).sum(0) / total
    return sides[0], flips[0], np.where(flips[0] > 0, p, 1.0)


def suffix_scan(z_for: np.ndarray, z_against: np.ndarray, min_steps: int, corr_for: np.ndarray | None = None,
                corr_against: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Best onset of a claim that holds on average from some step to the last: per entry, the largest over
    suffix windows [s, T) with ≥ ``min_steps`` steps of min(Stouffer z of ``z_for``, −Stouffer z of
    ``z_against``).

    ``z_for`` and ``z_against`` are ``(T, ...)`` per-step standardised βs; ``corr_for`` / ``corr_against``
    ``(T, T, ...)`` their null correlation between steps (default: independent steps). A window's sum is
    divided by its null standard deviation √(1ᵀ R_w 1), so each window's statistic is N(0, 1) under the
    null at any serial correlation. Returns ``(statistic, onset)`` with the earliest onset among ties.
    """
    steps = len(z_for)
    if steps < min_steps:
        shape = z_for.shape[1:]
        return np.full(shape, -np.inf), np.zeros(shape, dtype=int)
    stouffer_for = np.cumsum(z_for[::-1], 0)[::-1] / _window_sd(corr_for, z_for.shape)
    stouffer_against = np.cumsum(z_against[::-1], 0)[::-1] / _window_sd(corr_against, z_for.shape)
    windows = np.minimum(stouffer_for, -stouffer_against)[: steps - min_steps + 1]
    onset = windows.argmax(0)
    return np.take_along_axis(windows, onset[None], 0)[0], onset


def _window_sd(corr: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """``(T, ...)``: null sd of the sum over the suffix window [s, T) of unit-variance scores."""
    if corr is None:
        return np.sqrt(np.arange(shape[0], 0, -1)).reshape((-1,) + (1,) * (len(shape) - 1))
    total = np.cumsum(np.cumsum(corr[::-1, ::-1], 0), 1)[::-1, ::-1]  # [s, u]: Σ over t ≥ s, t' ≥ u
    steps = np.arange(shape[0])
    return np.sqrt(np.maximum(total[steps, steps], 1e-12))


def suffix_scan_p(statistic: np.ndarray, steps: int, min_steps: int) -> np.ndarray:
    """Valid p-value of :func:`suffix_scan`'s statistic under the null.

    Under the intersection-union null one of the two columns has no link, so the statistic is at most
    that column's best suffix window statistic, a maximum over ``W`` windows of N(0, 1) variables (their
    serial correlation is in the denominator); Bonferroni over the windows bounds its tail whatever their
    mutual dependence: p = min(1, W · Φ̄(statistic)).
    """
    windows = max(steps - min_steps + 1, 1)
    return np.minimum(1.0, windows * norm.sf(statistic))


def within_strata_permutations(strata: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``(draws, N)`` index arrays, each permuting the positions of every stratum among themselves."""
    n = len(strata)
    out = np.tile(np.arange(n), (draws, 1))
    for s in np.unique(strata):
        members = np.flatnonzero(strata == s)
        out[:, members] = members[np.argsort(rng.random((draws, len(members))), axis=1)]
    return out


def shuffle_trajectories(x: np.ndarray, strata: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``x`` ``(T, N, ...)`` with whole sample trajectories permuted within each stratum: one permutation for
    every step, so each sample's serial dependence stays as it was (the null of :mod:`.significance`)."""
    return x[:, within_strata_permutations(strata, 1, rng)[0]]
