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


@dataclass(frozen=True)
class RelianceEdge:
    """The final model's reliance of class ``cls`` on prototype ``prototype`` (checks/reliance.py).

    ``effect`` is the mean drop in the softmax confidence of ``cls`` on the class's held-out samples when the
    prototype's cells are deleted at the explained layer, ``random_effect`` the same for as many random cells
    of the same samples; ``p`` is one-sided (the paired per-sample difference, Wilcoxon signed-rank), ``q`` BH
    over every (prototype, class) tested in the run. ``rank`` orders the class's prototypes by their effect on
    the *selection* half (1: largest), so nothing chosen by effect is tested on the samples it was chosen on.
    """

    prototype: int
    cls: int
    effect: float
    random_effect: float
    p: float
    q: float
    rank: int
    selection_effect: float  # the effect on the selection half, which ``rank`` comes from
    samples: int  # held-out samples the effect is measured on
    half: str = "held-out"  # which half effect, p and q come from
    effect_by_checkpoint: list[float] = field(default_factory=list)  # on the held-out half, every checkpoint
    p_by_checkpoint: list[float] = field(default_factory=list)
    formed_at: int | None = None  # first checkpoint from which it stays significant (p ≤ fdr_q / T) with ≥ ½ its final effect
    random_p: float | None = None  # against as many random cells of the class's samples (Wilcoxon signed-rank)
    contrast_effect: float | None = None  # the same deletion's drop of the class's confidence on other classes' samples
    contrast_p: float | None = None  # the class's samples against the others' (Mann–Whitney U); p = max of the two


@dataclass(frozen=True)
class SampleReliance:
    """For one probe sample: the prototypes whose deletion moves its prediction most toward its runner-up.

    ``predicted_drops`` / ``runner_up_drops``: the drop in the final model's softmax confidence of the predicted
    class and of the runner-up (negative: it gains) when each prototype's cells of this sample are deleted,
    ordered by ``predicted_drop − runner_up_drop`` (largest first)."""

    sample: int  # position in the probe set
    predicted: int
    runner_up: int
    prototypes: list[int]
    predicted_drops: list[float]
    runner_up_drops: list[float]


MARGIN_MEASURE = "drop of the confidence margin p[favours] − p[against] on the pair's held-out samples"
CONFUSER_MEASURE = ("rise of the true class's confidence beyond the other classes' on the pair's held-out "
                    "misclassified samples")


@dataclass(frozen=True)
class PairEdge:
    """A pair relation of the final model (checks/pair_reliance.py), tested like a :class:`RelianceEdge`.

    ``kind`` ``"margin"``: deleting the prototype drops the softmax-confidence margin ``p[favours] − p[against]``
    by ``effect`` on the pair's held-out samples (classes a ∪ b), the faithful counterpart of a separator.
    ``kind`` ``"confuser"``: on the held-out a↔b-misclassified samples, deleting it raises the true class's
    confidence by ``effect`` more than the other classes' (the predicted one left out): it turns them back, the
    faithful counterpart of an uncertain prototype (``favours`` is None). ``random_effect``: as many random cells of
    the same samples; ``q``: BH over every edge of its kind in the run; ``rank`` from the selection half.
    """

    kind: str  # "margin" | "confuser"
    prototype: int
    a: int  # the pair, a < b
    b: int
    favours: int | None  # margin: the class whose margin over the other the prototype carries
    effect: float
    random_effect: float
    p: float
    q: float
    rank: int
    selection_effect: float
    samples: int  # held-out samples the effect is measured on
    half: str = "held-out"
    random_p: float | None = None  # against as many random cells (Wilcoxon signed-rank)
    contrast_effect: float | None = None  # margin: the same deletion's margin drop on other classes' samples
    contrast_p: float | None = None  # margin: the pair's samples against the others' (Mann–Whitney U)
    effect_by_checkpoint: list[float] = field(default_factory=list)
    p_by_checkpoint: list[float] = field(default_factory=list)
    formed_at: int | None = None  # as RelianceEdge.formed_at

    @property
    def against(self) -> int | None:
        return None if self.favours is None else (self.b if self.favours == self.a else self.a)


@dataclass(frozen=True)
class PairSet:
    """A pair group's top prototypes by selection-half effect, deleted together on its held-out samples and
    compared with area-matched random prototype sets (``test``, in the same measure as its edges). It ``passes``
    when it beats 95 % of them (the deletion tests' criterion) *and* their median by ``pair_min_effect``: on
    models trained on shuffled labels, confuser sets beat 95 % of the random sets in 1–2 of 5 pairs by a
    systematic turn-back of at most a few thousandths of confidence (bench/results/reliance.json)."""

    kind: str  # "margin" | "confuser"
    a: int
    b: int
    favours: int | None
    test: FaithfulnessResult
    passes: bool  # beats 95 % of the matched random sets, and their median by the run's pair_min_effect
    turned_back: int | None = None  # confusers: held-out misclassified samples predicted as their true class after


@dataclass(frozen=True)
class RelianceResult:
    """The reliance relation of the final model: every tested edge, each class's top set, what was skipped."""

    measure: str  # what an effect is a drop of ("softmax confidence of the class")
    deletion: str  # "zero" | "mean"
    held_out_fraction: float
    seed: int
    edges: list[RelianceEdge]  # every (prototype, class) tested; ``significant`` filters by q
    top_sets: list[FaithfulnessResult]  # per class, the top prototypes by selection-half effect, on the held-out half
    skipped: list[str]
    fdr_q: float
    formation_alpha: float | None = None  # per-checkpoint level (fdr_q / T), once formation steps are computed
    checkpoint0_false_rate: float | None = None  # share of significant edges passing the formation rule at checkpoint 0
    min_effect: float = 0.0  # a claimed edge beats the random cells by at least this much confidence
    samples: list[SampleReliance] = field(default_factory=list)  # per probe sample, its most moving deletions
    pair_edges: list[PairEdge] = field(default_factory=list)  # margin reliance and confusers (checks/pair_reliance.py)
    pair_sets: list[PairSet] = field(default_factory=list)  # per reported pair group, its top set on the held-out half
    pair_min_effect: float = 0.0  # a claimed pair edge beats the random cells by at least this much confidence
    pair_checkpoint0_false_rate: float | None = None  # as checkpoint0_false_rate, for the claimed pair edges

    @property
    def significant(self) -> list[RelianceEdge]:
        """The claimed edges: q ≤ fdr_q and an effect at least ``min_effect`` above the random cells'."""
        return [e for e in self.edges if e.q <= self.fdr_q and e.effect - e.random_effect >= self.min_effect]

    def significant_pairs(self, kind: str) -> list[PairEdge]:
        """The claimed pair edges of ``kind`` ("margin" | "confuser"): q ≤ fdr_q and the effect at least
        ``pair_min_effect`` above the random cells'."""
        return [e for e in self.pair_edges if e.kind == kind and e.q <= self.fdr_q
                and e.effect - e.random_effect >= self.pair_min_effect]

    @classmethod
    def from_dict(cls, data: dict) -> "RelianceResult":
        data = dict(data)
        data["edges"] = [RelianceEdge(**e) for e in data["edges"]]
        data["top_sets"] = [FaithfulnessResult(**r) for r in data["top_sets"]]
        data["samples"] = [SampleReliance(**r) for r in data.get("samples", [])]
        data["pair_edges"] = [PairEdge(**e) for e in data.get("pair_edges", [])]
        data["pair_sets"] = [PairSet(**{**r, "test": FaithfulnessResult(**r["test"])}) for r in data.get("pair_sets", [])]
        return cls(**data)
