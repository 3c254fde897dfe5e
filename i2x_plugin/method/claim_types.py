"""The claims of a structured explanation as typed records, each with the evidence it rests on (β, z, p, q,
and, once the stability test ran, how often it recurs in re-fits)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CLAIM_KINDS = ("drivers", "separators", "uncertain", "shared", "specialised")


@dataclass(frozen=True)
class Driver:
    """Prototype ``prototype`` drives class ``cls``: β of the class's own fit pooled over steps is significantly
    positive (z against the permutation null, p, q). ``saliency_share``: the share of the class's final
    saliency that falls on the prototype; drivers are ranked by it. ``first_step``: the first step whose own
    fit is significantly positive at ``step_alpha`` / steps (Bonferroni over the steps, so a spurious early
    date has probability ≤ ``step_alpha`` under the null)."""

    cls: int
    prototype: int
    beta: float
    z: float
    p: float
    q: float
    saliency_share: float
    rank: int  # among the class's drivers, by saliency_share
    first_step: int | None
    recurrence: float | None = None  # share of the stability test's re-fits that make the claim too


@dataclass(frozen=True)
class Separator:
    """``prototype`` favours ``favours`` over the other class of (a, b) *on average* from step ``first_step`` to
    the last: the window's Stouffer evidence for β[k, favours] > 0 and for β[k, other] < 0, each scaled by its
    null sd under trajectory permutations. Not at every step (``steps`` lists those where both signs hold;
    on the default run 29 % of separators hold at every step of their window). ``first_step`` is descriptive:
    the onset of the window with the strongest evidence, not itself tested."""

    a: int
    b: int
    prototype: int
    favours: int
    first_step: int  # descriptive: the best window's onset
    steps: list[int]  # steps of the window whose own pair fit shows β[k, favours] > 0 > β[k, other]
    margin: float  # mean over the window of β[k, favours] − β[k, other]
    z: float  # the scan statistic (min of the two correlation-scaled Stouffer z over the window)
    p: float
    q: float
    recurrence: float | None = None


@dataclass(frozen=True)
class UncertainPrototype:
    """β[k, a] − β[k, b] is significant with changing sign over steps: ``flips`` sign changes at ``flip_steps``."""

    a: int
    b: int
    prototype: int
    flips: int
    flip_steps: list[int]
    significant_steps: list[int]
    signs: list[int]  # +1 favours a, −1 favours b, at each significant step
    magnitude: float  # mean |β[k, a] − β[k, b]| over the significant steps
    score: float  # flips × magnitude (the paper's ranking)
    p: float
    q: float
    recurrence: float | None = None


@dataclass(frozen=True)
class SharedPrototype:
    """``kind`` "shared": positive in ≥ shared_fraction of the class's tested groups; "specialised": positive in
    some group and larger there than in another group of the same step. ``q``: the claim's own q-value
    (claim-level test, BH over the class-prototype claims of its kind: ``claims.shared_and_specialised``).
    ``fraction`` and ``groups``: where the group fits alone are significant (descriptive)."""

    cls: int
    prototype: int
    kind: str
    fraction: float
    groups: list[list[int]]  # [step, group] pairs where it is significantly positive
    q: float


@dataclass(frozen=True)
class GroupSummary:
    step: int
    cls: int
    group: int  # -1 = HDBSCAN noise
    size: int
    top_prototypes: list[int]  # significantly positive, by β (empty when the group was not tested)
    tested: bool


@dataclass(frozen=True)
class ClaimCounts:
    """Claims per kind in the run, and the mean count the same procedure gives on ΔP whose whole sample
    trajectories are shuffled within class — the false claims noise makes (``null_draws`` shuffles)."""

    real: dict[str, int]
    null_mean: dict[str, float]
    null_max: dict[str, int]
    null_draws: int


@dataclass(frozen=True)
class Claims:
    """Every calibrated claim and the fitted arrays they rest on."""

    drivers: list[Driver]
    separators: list[Separator]
    uncertain: list[UncertainPrototype]
    shared: list[SharedPrototype]
    groups: list[GroupSummary]
    skipped: list[str]
    beta_step: np.ndarray  # (T-1, K, C) fit on all samples of a step
    z_step: np.ndarray  # (T-1, K, C)
    beta_overall: np.ndarray  # (K, C) fit on all samples of all steps
    q_overall: np.ndarray  # (K, C) two-sided, BH over all entries
    beta_class: np.ndarray  # (T-1, C, K) β[k, c] of class c's fit at each step
    z_class: np.ndarray  # (T-1, C, K)
    beta_driver: np.ndarray  # (C, K) class fit pooled over steps
    q_driver: np.ndarray  # (C, K) one-sided (positive), BH over all entries
    beta_pair: np.ndarray  # (T-1, P, K, 2) float32: β[k, a], β[k, b] of the a ∪ b fit
    z_pair: np.ndarray  # (T-1, P, K, 2) float32
    beta_group_keys: np.ndarray  # (G, 3) step, class, group of the tested groups
    beta_group: np.ndarray  # (G, K) β[k, c] of the group's fit
    q_group: np.ndarray  # (G, K)
    counts: ClaimCounts | None = field(default=None)
