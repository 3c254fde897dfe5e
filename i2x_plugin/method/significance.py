"""The null side of every I2X claim: permutation p-values, sequence statistics and the false discovery rate.

Null model (validation.md §1): within each stratum (the samples of one class at one step, or of one
learning-pattern group) the ΔP rows are permuted, so no saliency change belongs to its own confidence
change any more while every marginal distribution stays as it was. Strata are permuted independently,
so under the null the steps of a sequence are independent.

* A single β (or a contrast of βs) is a linear permutation statistic: its exact null cumulants come from
  :mod:`.ridge`, and its p-value is the tail of the three-moment (Pearson III) law they define.
* Inside sequences (uncertain prototypes), whether a step is significant is decided by the rank of the
  real statistic among Monte Carlo permutations, which is exact: a side is hit with probability
  ⌊α/2·(B+1)⌋/(B+1) under the null, whatever the shape of the distribution.
* A claim's p-value is then a tail of the sequence statistic under independent null steps
  (:func:`flip_count_tail`, :func:`suffix_scan_p`); q-values are Benjamini–Hochberg over the claims of
  one kind in a run.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm


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


def flip_count_tail(steps: int, p_side: float) -> np.ndarray:
    """``tail[f]`` = P(at least f sign flips) over ``steps`` independent null steps, each significant
    positive or negative with probability ``p_side`` (exact dynamic programme over (last sign, flips))."""
    dist = np.zeros((3, steps + 1))  # rows: no significant step yet, last +, last −
    dist[0, 0] = 1.0
    quiet = 1.0 - 2 * p_side
    for _ in range(steps):
        new = dist * quiet
        new[1] += (dist[0] + dist[1]) * p_side
        new[2] += (dist[0] + dist[2]) * p_side
        new[1, 1:] += dist[2, :-1] * p_side
        new[2, 1:] += dist[1, :-1] * p_side
        dist = new
    pmf = dist.sum(0)
    return np.minimum(pmf[::-1].cumsum()[::-1], 1.0)


def suffix_scan(z_for: np.ndarray, z_against: np.ndarray, min_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Best onset of a claim that holds from some step to the last: per entry, the largest over suffix
    windows [s, T) with ≥ ``min_steps`` steps of min(Stouffer z of ``z_for``, −Stouffer z of ``z_against``).

    ``z_for`` and ``z_against`` are ``(T, ...)`` per-step standardised βs. Returns ``(statistic, onset)``
    with the earliest onset among ties.
    """
    steps = len(z_for)
    if steps < min_steps:
        shape = z_for.shape[1:]
        return np.full(shape, -np.inf), np.zeros(shape, dtype=int)
    lengths = np.arange(steps, 0, -1).reshape((-1,) + (1,) * (z_for.ndim - 1))
    stouffer_for = np.cumsum(z_for[::-1], 0)[::-1] / np.sqrt(lengths)
    stouffer_against = np.cumsum(z_against[::-1], 0)[::-1] / np.sqrt(lengths)
    windows = np.minimum(stouffer_for, -stouffer_against)[: steps - min_steps + 1]
    onset = windows.argmax(0)
    return np.take_along_axis(windows, onset[None], 0)[0], onset


def suffix_scan_p(statistic: np.ndarray, steps: int, min_steps: int) -> np.ndarray:
    """Valid p-value of :func:`suffix_scan`'s statistic under the null.

    Under the intersection-union null one of the two columns has no link, so the statistic is at most
    that column's best suffix Stouffer z, a maximum over ``W`` windows of N(0, 1) variables; Bonferroni
    over the windows bounds its tail: p = min(1, W · Φ̄(statistic)).
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
