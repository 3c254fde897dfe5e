"""Paired statistics over fine-tuning seeds: mean ± std, paired t-test, Wilcoxon, sign test, Holm.

Seeds are the unit: run s of every schedule shares seed s's epoch orders, so the per-seed difference
treatment − control is what is tested. A comparison that claims significance needs at least
:data:`MIN_SEEDS` paired seeds; with fewer, :func:`paired` reports the differences without p-values
(or raises, when asked to claim significance).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

MIN_SEEDS = 5


class TooFewSeedsError(ValueError):
    """A comparison that claims significance was given fewer than MIN_SEEDS paired seeds."""


def _num(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def mean_std(values: Sequence[float]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof=1) over seeds, with the values."""
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
            "values": [float(v) for v in arr]}


def paired(treatment: Sequence[float], control: Sequence[float], higher_is_better: bool,
           claim: bool = False, min_seeds: int = MIN_SEEDS) -> dict[str, Any]:
    """Per-seed differences treatment − control; two-sided paired t-test, Wilcoxon and sign test (scipy).

    With fewer than ``min_seeds`` pairs no p-value is given (``significance`` says why), or, when
    ``claim`` is set, :class:`TooFewSeedsError` is raised. All-equal differences give no t/Wilcoxon p.
    """
    from scipy import stats

    t, c = np.asarray(treatment, float), np.asarray(control, float)
    if len(t) != len(c):
        raise ValueError(f"{len(t)} treatment values but {len(c)} control values: pair them by seed.")
    diff = t - c
    n = len(diff)
    if claim and n < min_seeds:
        raise TooFewSeedsError(f"A significance claim needs ≥ {min_seeds} paired seeds, got {n}. Run more seeds "
                               f"(--seeds {min_seeds} or more), or report the differences without a test.")
    good = diff > 0 if higher_is_better else diff < 0
    nonzero = diff != 0
    wins, losses = int((good & nonzero).sum()), int((~good & nonzero).sum())
    out = {"treatment": mean_std(t), "control": mean_std(c), "differences": [float(d) for d in diff],
           "mean_difference": float(diff.mean()), "std_difference": float(diff.std(ddof=1)) if n > 1 else 0.0,
           "wins": wins, "losses": losses, "ties": int((~nonzero).sum()), "n": n,
           "t_test_p": None, "wilcoxon_p": None, "sign_test_p": None, "higher_is_better": higher_is_better}
    if n < min_seeds:
        out["significance"] = f"not tested: {n} paired seeds (< {min_seeds})"
        return out
    out["significance"] = "tested"
    if np.ptp(diff) > 0:  # all differences equal: t is 0/0 or infinite; report no p rather than 1 or 0
        out["t_test_p"] = _num(stats.ttest_rel(t, c).pvalue)
    if nonzero.any():
        out["wilcoxon_p"] = _num(stats.wilcoxon(diff, zero_method="wilcox").pvalue)
    out["sign_test_p"] = float(stats.binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else 1.0
    return out


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone); None (no test) stays None, outside the family."""
    family = [(p, i) for i, p in enumerate(p_values) if p is not None]
    m = len(family)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(family)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted
