"""What the checks attach to an explanation: the results of the faithfulness and stability tests, as data.

The checks (:mod:`i2x_plugin.checks`) compute them; :class:`~.structure.StructuredExplanation` holds, saves
and loads them; the report shows them and the graph stores them. Defining them here lets the explanation
carry a check's result without knowing how the check runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class FaithfulnessResult:
    """One claim group deleted: its effect, the random sets' effects, and (drivers) the static baseline."""

    kind: str  # "drivers" | "separators" | "uncertain"
    a: int  # the class (drivers) or the favoured / first class of the pair
    b: int | None  # the other class of the pair
    prototypes: list[int]
    samples: int
    area: float  # share of the samples' cells the prototypes cover
    effect: float
    random_median: float
    random_area: float  # mean area of the matched random sets
    percentile: float  # share of random sets with a smaller effect
    p: float  # (1 + #random ≥ effect) / (1 + #random)
    static_prototypes: list[int]
    static_effect: float | None
    static_percentile: float | None


@dataclass(frozen=True)
class StabilityResult:
    """Overlap of the claims of each re-fit with the run's claims, and the learning order's rank correlation."""

    refits: list[str]  # "kmeans-seed-1", "bootstrap-0", ...
    jaccard: dict[str, list[float]]  # kind (OVERLAPS) -> one value per re-fit
    learning_order_tau: list[float]  # Kendall τ of the separation checkpoints, per re-fit
    cell_agreement: list[float] = field(default_factory=list)  # per re-fit: share of cells whose prototypes agree
    selection_share: float | None = None  # stability selection: claims recurring less often were not reported
    unstable: dict[str, int] = field(default_factory=dict)  # kind -> claims dropped by the selection

    @property
    def mean_jaccard(self) -> dict[str, float]:
        return {kind: float(np.mean(v)) if v else float("nan") for kind, v in self.jaccard.items()}
