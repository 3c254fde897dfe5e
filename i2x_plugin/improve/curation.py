"""Step 9 of I2X, first half: the curated training set.

The paper: "Curated set = training set minus samples of the confused classes whose assignment map
contains an uncertain prototype". The confused pair and its uncertain prototypes come from the
structured explanation (probe data); every *training* sample is assigned to the explanation's
prototypes with the final model, and the samples of the pair's two classes that contain a chosen
prototype at ``min_positions`` or more positions are removed. Nothing here looks at test data.

>>> target = choose_target(explanation)                       # most confused pair with uncertain prototypes
>>> assignments = training_assignments(explanation, model, train.images)
>>> curated = curate(target, assignments, train.labels, min_positions=1)
>>> curated.removed_per_class
{3: 211, 5: 17}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch import nn

from ..method.prototypes import extract_features
from ..method.structure import StructuredExplanation, UncertainPrototype

PairSelection = Literal["most_confused", "top_uncertain"]


class CurationError(ValueError):
    """The curated set cannot be made as asked; the message names the problem and the fix."""


class NoUncertainPrototypesError(CurationError):
    """The explanation holds no uncertain prototype for the requested pair (or for any pair)."""


@dataclass(frozen=True)
class CurationTarget:
    """The confused pair (a, b) step 9 targets and the uncertain prototypes chosen for it (best first)."""

    a: int
    b: int
    uncertain: tuple[UncertainPrototype, ...]
    probe_confusions: int  # a→b + b→a on the probe set at the final checkpoint

    @property
    def pair(self) -> tuple[int, int]:
        return (self.a, self.b)

    @property
    def prototypes(self) -> tuple[int, ...]:
        return tuple(u.prototype for u in self.uncertain)


@dataclass(frozen=True)
class CurationSet:
    """Training samples removed for the targeted pair: positions into the training set, with counts per class."""

    target: CurationTarget
    min_positions: int | None  # V0's position threshold; None for the capped variants (i2x_plugin.improve.selection)
    removed: np.ndarray = field(repr=False)  # (R,) sorted positions into the training set
    labels: np.ndarray = field(repr=False)  # (N,) training labels
    class_names: tuple[str, ...] = ()
    sample_ids: np.ndarray | None = field(default=None, repr=False)  # (N,) id of each training sample (graph)
    variant: str = "V0"  # the selection variant (V0–V4) or its random control "R(V…)"
    cap: float | None = None  # the per-class cap (fraction) of a capped variant
    rule: str = ""  # how the samples were chosen, in words

    @property
    def train_size(self) -> int:
        return len(self.labels)

    @property
    def keep_mask(self) -> np.ndarray:
        mask = np.ones(self.train_size, dtype=bool)
        mask[self.removed] = False
        return mask

    @property
    def kept(self) -> np.ndarray:
        return np.flatnonzero(self.keep_mask)

    @property
    def removed_per_class(self) -> dict[int, int]:
        counts = np.bincount(self.labels[self.removed], minlength=max(self.target.pair) + 1)
        return {c: int(counts[c]) for c in self.target.pair}

    @property
    def class_sizes(self) -> dict[int, int]:
        return {c: int((self.labels == c).sum()) for c in self.target.pair}

    def removed_ids(self) -> np.ndarray:
        """Ids of the removed samples (``sample_ids`` when given, else training-set positions)."""
        return self.removed if self.sample_ids is None else np.asarray(self.sample_ids)[self.removed]

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts: what was removed, of which class, because of which prototypes."""
        names = self.class_names
        name = (lambda c: names[c] if c < len(names) else str(c))
        return {
            "pair": list(self.target.pair),
            "pair_names": [name(c) for c in self.target.pair],
            "prototypes": list(self.target.prototypes),
            "uncertain": [dataclasses.asdict(u) for u in self.target.uncertain],
            "probe_confusions": self.target.probe_confusions,
            "variant": self.variant,
            "rule": self.rule,
            "cap": self.cap,
            "min_positions": self.min_positions,
            "train_size": self.train_size,
            "removed": int(len(self.removed)),
            "curated_size": int(self.train_size - len(self.removed)),
            "per_class": {name(c): {"removed": self.removed_per_class[c], "of": self.class_sizes[c]}
                          for c in self.target.pair},
        }


def choose_target(explanation: StructuredExplanation, pair: Sequence[int] | None = None, num_prototypes: int = 1,
                  selection: PairSelection = "most_confused") -> CurationTarget:
    """The pair to target and its top ``num_prototypes`` uncertain prototypes (by flips × magnitude).

    ``pair`` given: that pair (either order). Otherwise (D) ``"most_confused"``: the pair with the most
    probe confusions at the final checkpoint among pairs that have uncertain prototypes;
    ``"top_uncertain"``: the pair of the highest-scoring uncertain prototype. Raises
    :class:`NoUncertainPrototypesError` rather than inventing a target.
    """
    if num_prototypes < 1:
        raise CurationError(f"num_prototypes must be ≥ 1, got {num_prototypes}.")
    final = explanation.confusion[-1]
    confusions = (lambda a, b: int(final[a, b] + final[b, a]))
    by_pair: dict[tuple[int, int], list[UncertainPrototype]] = {}
    for u in explanation.uncertain:  # already ranked by score
        by_pair.setdefault((min(u.a, u.b), max(u.a, u.b)), []).append(u)
    cfg = explanation.config
    hint = (f"Run I2X with a larger K (now {cfg.k}), more checkpoints (now {len(explanation.checkpoints)}) or more "
            f"probe samples (now {len(explanation.labels)}) so the test has more to go on. No curated set was made.")
    if pair is not None:
        if len(pair) != 2 or pair[0] == pair[1]:
            raise CurationError(f"pair must be two different classes, got {list(pair)}.")
        a, b = (int(c) for c in pair)
        for c in (a, b):
            if not 0 <= c < explanation.num_classes:
                raise CurationError(f"Class {c} of pair {list(pair)} is outside 0..{explanation.num_classes - 1}.")
        key = (min(a, b), max(a, b))
        if key not in by_pair:
            others = ", ".join(f"{x}-{y}" for x, y in by_pair) or "none"
            raise NoUncertainPrototypesError(
                f"No uncertain prototypes for pair {a}-{b} (pairs that have some: {others}). "
                "Choose one of those pairs, or " + hint[0].lower() + hint[1:])
    else:
        if not by_pair:
            raise NoUncertainPrototypesError(
                f"The explanation of run {explanation.run_id!r} has no uncertain prototypes: for the "
                f"{cfg.confused_pairs} most confused pairs, no prototype's β[k,a] − β[k,b] flipped sign between "
                f"significant steps more often than noise does (q ≤ {cfg.fdr_q:g}). " + hint)
        if selection == "most_confused":
            key = max(by_pair, key=lambda p: (confusions(*p), by_pair[p][0].score))
        elif selection == "top_uncertain":
            key = next(iter(by_pair))
        else:
            raise CurationError(f"Unknown pair selection {selection!r}; use 'most_confused' or 'top_uncertain'.")
    chosen = tuple(by_pair[key][:num_prototypes])
    return CurationTarget(key[0], key[1], chosen, confusions(*key))


def training_assignments(explanation: StructuredExplanation, model: nn.Module, images: torch.Tensor,
                         batch_size: int = 256, device: str | torch.device | None = None) -> np.ndarray:
    """``(N, h, w)`` prototype of every position of every training image, with ``model`` as it is now.

    Load the explanation's final checkpoint into ``model`` first: prototypes are the final model's.
    """
    if explanation.prototypes is None:
        raise CurationError(
            f"The explanation of run {explanation.run_id!r} carries no fitted prototypes (PCA and centres), so "
            "training samples outside the probe set cannot be assigned. Re-run I2X.explain with this version "
            "(it saves prototypes.npz beside the explanation).")
    features = extract_features(model, explanation.layer, images, batch_size, device)
    if list(features.shape[1:3]) != list(explanation.map_size):
        raise CurationError(f"Layer {explanation.layer!r} gives {features.shape[1]}×{features.shape[2]} maps but the "
                            f"explanation's prototypes are {explanation.map_size[0]}×{explanation.map_size[1]}: use "
                            "the same model, layer and image size as the explained run.")
    return explanation.prototypes.assign(features)


def auto_min_positions(target: CurationTarget, assignments: np.ndarray, labels: np.ndarray,
                       max_fraction: float) -> int:
    """(D) The smallest position count that removes at most ``max_fraction`` of each targeted class (training data only)."""
    counts = _positions(target, assignments)
    labels = np.asarray(labels)
    for m in range(1, assignments[0].size + 1):
        hit = counts >= m
        if not hit[np.isin(labels, target.pair)].any():
            break
        if all(hit[labels == c].mean() <= max_fraction for c in target.pair if (labels == c).any()):
            return m
    raise CurationError(
        f"No position threshold removes between 1 sample and {max_fraction:.0%} of each of classes "
        f"{list(target.pair)} for prototypes {list(target.prototypes)}. Give min_positions explicitly or raise "
        "max_removed_fraction.")


def curate(target: CurationTarget, assignments: np.ndarray, labels: np.ndarray | torch.Tensor,
           min_positions: int = 1, class_names: Sequence[str] = (),
           sample_ids: np.ndarray | None = None) -> CurationSet:
    """Remove the samples of classes a, b whose map holds a chosen prototype at ≥ ``min_positions`` positions.

    Raises :class:`CurationError` when nothing would be removed (the comparison would be void) or when a
    class would lose all its samples.
    """
    labels = np.asarray(labels)
    if len(assignments) != len(labels):
        raise CurationError(f"{len(assignments)} assignment maps but {len(labels)} training labels.")
    if min_positions < 1:
        raise CurationError(f"min_positions must be ≥ 1, got {min_positions}.")
    counts = _positions(target, assignments)
    removed = np.flatnonzero(np.isin(labels, target.pair) & (counts >= min_positions))
    a, b = target.pair
    if not len(removed):
        raise CurationError(
            f"No training sample of classes {a} or {b} contains prototype(s) {list(target.prototypes)} at "
            f"≥ {min_positions} positions, so the curated set would equal the training set. Lower min_positions or "
            "choose more prototypes (num_prototypes).")
    result = CurationSet(target, min_positions, removed, labels, tuple(class_names), sample_ids)
    emptied = [c for c in target.pair if result.removed_per_class[c] == result.class_sizes[c]]
    if emptied:
        raise CurationError(
            f"The curated set would remove all {result.class_sizes[emptied[0]]} training samples of class "
            f"{emptied[0]} (prototype(s) {list(target.prototypes)} at ≥ {min_positions} positions). Raise "
            "min_positions (or use min_positions='auto'), or choose fewer prototypes.")
    return result


def _positions(target: CurationTarget, assignments: np.ndarray) -> np.ndarray:
    """(N,) the largest number of positions any chosen prototype occupies in each sample."""
    flat = np.asarray(assignments).reshape(len(assignments), -1)
    return np.stack([(flat == k).sum(1) for k in target.prototypes]).max(0)
