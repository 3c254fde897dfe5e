"""How a p- or q-value is shown: below a floor its digits carry no information, so it reads ``p < 1e-6``.

(D) Why 1e-6: the far tail of a p-value is the tail of a model of its null, and small changes to that
model move it by orders of magnitude. On the default run, the drivers' p-values under steps permuted
independently and under whole trajectories permuted (the model error of issue 22) differ by a median
factor 1.5 where p ≥ 1e-4, 3.4 where 1e-6 ≤ p < 1e-4, 13 where 1e-9 ≤ p < 1e-6 (up to 700×) and 300 below
1e-9 (up to 10⁶×); the three-moment tail itself is checked against permutations only down to ~1e-3. So
below 1e-6 not even the order of magnitude is known: answers, report and graph all say "< 1e-6".
"""

from __future__ import annotations

import math

P_FLOOR = 1e-6


def floor_p(value: float | None) -> float | None:
    """``value`` raised to :data:`P_FLOOR` (what the graph stores: read a stored 1e-6 as "< 1e-6"); None and
    NaN (not tested) stay as they are."""
    if value is None or math.isnan(value):
        return value
    return max(float(value), P_FLOOR)


def format_p(value: float | None, name: str = "p") -> str:
    """``"q = 0.0031"`` (two significant digits), ``"q < 1e-06"`` at or below the floor, ``"q n/a"`` if not tested."""
    if value is None or math.isnan(value):
        return f"{name} n/a"
    if value <= P_FLOOR:  # the graph stores values below the floor as the floor
        return f"{name} < {P_FLOOR:g}"
    return f"{name} = {value:.2g}"
