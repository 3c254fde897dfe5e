"""Which training samples to remove for one fine-tuning epoch: the variants V0–V4 and the random control.

Every variant works on the training split with the base's final checkpoint and never looks at
validation or test images. n_c is the number of training samples of class c, ``cap`` a fraction.

* **V0** (today's rule): samples of a ∪ b holding the pair's top uncertain prototype(s) at ≥
  ``min_positions`` positions (paper: 1); if that would empty a class, the smallest position count
  removing ≤ 50 % (``auto_fraction``) of each class. Uncapped.
* **V1**: holders of the top uncertain prototype, ranked by its intensity; the same number
  min(⌊cap·n_a⌋, ⌊cap·n_b⌋, holders in a, holders in b) from each class (balanced).
* **V2**: the pair's uncertain prototypes whose presence rates in a and in b are within
  ``common_ratio``× of each other and that are held by < ``rare_fraction`` of all training images
  (not background-like, not class-identifying); holders ranked by summed intensity, ⌊cap·n_c⌋ per class.
* **V3**: score = Σ_k presence_{i,k} × |β_a − β_b|_k over all the pair's uncertain prototypes;
  samples with a positive score, highest first, ⌊cap·n_c⌋ per class.
* **V4** (non-prototype positive control): the smallest a-vs-b logit margins, ⌊cap·n_c⌋ per class.
* **R(V)**: the same per-class counts as V, drawn at random from the same classes, per seed.

A variant that finds nothing raises :class:`NoSamplesError` naming why: nothing is substituted.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from .curation import CurationError, CurationSet, CurationTarget, auto_min_positions, training_assignments
from ..training.data import ImageDataset
from ..method.structure import StructuredExplanation, UncertainPrototype

Variant = Literal["V0", "V1", "V2", "V3", "V4"]
VARIANTS: dict[str, str] = {
    "V0": "today's rule: holders of the top uncertain prototype at ≥ 1 position, uncapped",
    "V1": "top uncertain prototype, balanced between the two classes, capped, by intensity",
    "V2": "uncertain prototypes common to both classes and rare overall, capped, by intensity",
    "V3": "per-sample score Σ presence × |β_a − β_b| over the pair's uncertain prototypes, capped",
    "V4": "smallest a-vs-b logit margin, capped (no prototypes: the positive control)",
}
GUIDED_VARIANTS = ("V0", "V1", "V2", "V3")  # I2X-guided; V4 is the control
# The default of `i2x improve`: the variant the pre-registered study chose on validation
# (bench/improve_plan.md → bench/results/improve.json "chosen_variant"; tests/improve/test_selection.py checks they
# agree). V1 removed the fewest samples for the largest validation gain over random removal (−1.5 confusions);
# on the test split no variant beat random removal (bench/results/improve.md).
DEFAULT_VARIANT: Variant = "V1"


class NoSamplesError(CurationError):
    """A selection variant found no sample to remove; nothing was made up in its place."""


@dataclass(frozen=True)
class PairSignals:
    """What the variants rank training samples by, measured with the base's final checkpoint."""

    pair: tuple[int, int]
    labels: np.ndarray  # (N,) training labels
    assignments: np.ndarray  # (N, h, w) prototype of every map position
    intensities: np.ndarray | None  # (N, K) final saliency on each prototype (0 outside a ∪ b); None: not measured
    margins: np.ndarray  # (N,) logit(true) − logit(other class of the pair); NaN outside a ∪ b

    def presence(self, k: int) -> np.ndarray:
        """(N,) positions of each sample assigned to prototype ``k``."""
        return (self.assignments.reshape(len(self.labels), -1) == k).sum(1)


def pair_uncertain(explanation: StructuredExplanation, pair: tuple[int, int]) -> list[UncertainPrototype]:
    """The pair's uncertain prototypes, in the explanation's own ranking.

    Every entry of ``explanation.uncertain`` counts: the explanation lists only the claims it makes
    (with the calibrated explanation, those that passed its null test).
    """
    key = {min(pair), max(pair)}
    return [u for u in explanation.uncertain if {u.a, u.b} == key]


def beta_gap(explanation: StructuredExplanation, a: int, b: int) -> np.ndarray:
    """(K,) mean over steps of |β[k,a] − β[k,b]| in the pair's own fit (the weight of V3)."""
    beta = np.asarray(explanation.pair_beta(a, b), dtype=float)  # (T-1, K, 2): β[k, a], β[k, b]
    return np.abs(beta[..., 0] - beta[..., 1]).mean(0)


def _adapter_for(explanation: StructuredExplanation, model: nn.Module):
    from ..adapters import available_methods, build_adapter

    kind = "captum" if explanation.method in available_methods("captum") else "gradcam"
    return build_adapter(kind, model, explanation.layer, explanation.method)


def pair_signals(explanation: StructuredExplanation, model: nn.Module, train: ImageDataset, pair: tuple[int, int],
                 intensities: bool = True, batch_size: int = 256,
                 device: str | torch.device | None = None) -> PairSignals:
    """Assign every training sample to the prototypes and measure, on a ∪ b, intensities and margins.

    Load the explanation's final checkpoint into ``model`` first. Intensities use the explanation's
    own saliency method, target (the true label) and normalisation.
    """
    from ..adapters import normalize
    from ..method.progress import prototype_intensity

    device = torch.device(device) if device is not None else next(model.parameters()).device
    labels = train.labels.numpy()
    assignments = training_assignments(explanation, model, train.images, batch_size, device)
    a, b = pair
    members = np.flatnonzero(np.isin(labels, pair))
    margins = np.full(len(labels), np.nan)
    power = np.zeros((len(labels), explanation.k), dtype=np.float32) if intensities else None
    adapter = _adapter_for(explanation, model) if intensities else None
    model.eval()
    for start in range(0, len(members), batch_size):
        index = members[start : start + batch_size]
        x, y = train.images[index].to(device), train.labels[index].to(device)
        with torch.no_grad():
            logits = model(x).float()
        own = logits.gather(1, y[:, None])[:, 0]
        other = logits[:, b].where(y == a, logits[:, a])
        margins[index] = (own - other).cpu().numpy()
        if adapter is not None:
            maps = normalize(adapter.attribute(x, target=y).detach().float().squeeze(1),
                             explanation.config.normalization)
            assign = torch.as_tensor(assignments[index], dtype=torch.long, device=maps.device)
            power[index] = prototype_intensity(maps, assign, explanation.k).cpu().numpy()
    return PairSignals((a, b), labels, assignments, power, margins)


# --- the variants --------------------------------------------------------------------------------------


def _check_cap(cap: float) -> None:
    if not 0 < cap < 1:
        raise CurationError(f"cap {cap} must be a fraction in (0, 1): at {cap} a capped variant removes "
                            f"{'a whole class' if cap >= 1 else 'nothing'}. Use e.g. --cap 0.1 (10 % of each class).")


def _top(score: np.ndarray, labels: np.ndarray, counts: dict[int, int]) -> np.ndarray:
    """Sorted positions: per class c, the ``counts[c]`` highest finite positive-ranked scores (ties by position)."""
    picked = []
    for c, n in counts.items():
        members = np.flatnonzero((labels == c) & np.isfinite(score))
        order = members[np.argsort(-score[members], kind="stable")]
        picked.append(order[:n])
    return np.sort(np.concatenate(picked)).astype(np.int64)


def _made(variant: str, target: CurationTarget, removed: np.ndarray, signals: PairSignals, rule: str,
          cap: float | None, min_positions: int | None, class_names, sample_ids) -> CurationSet:
    if not len(removed):
        raise NoSamplesError(f"{variant} for {target.a}↔{target.b} found no samples ({rule}): nothing was removed "
                             "in its place.")
    curation = CurationSet(target, min_positions, removed, signals.labels, tuple(class_names), sample_ids,
                           variant=variant, cap=cap, rule=rule)
    emptied = [c for c in target.pair if curation.removed_per_class[c] >= curation.class_sizes[c]]
    if emptied:
        raise CurationError(f"{variant} would remove all {curation.class_sizes[emptied[0]]} training samples of class "
                            f"{emptied[0]}; lower the cap (now {cap}) or raise min_positions.")
    return curation


def select(variant: str, explanation: StructuredExplanation, signals: PairSignals, cap: float = 0.1,
           min_positions: int | Literal["auto"] = 1, num_prototypes: int = 1, common_ratio: float = 2.0, rare_fraction: float = 0.5,
           class_names=(), sample_ids: np.ndarray | None = None, auto_fraction: float = 0.5) -> CurationSet:
    """The removal set of ``variant`` (V0–V4, see the module) for ``signals.pair``."""
    if variant not in VARIANTS:
        raise CurationError(f"Unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}.")
    a, b = signals.pair
    labels = signals.labels
    final = explanation.confusion[-1]
    uncertain = pair_uncertain(explanation, (a, b))
    name = f"{variant} for {a}↔{b}"
    if variant != "V4" and not uncertain:
        raise NoSamplesError(f"{name} found no samples: the explanation has no uncertain prototype for the pair "
                             "(nothing was removed in its place). V4 (margin) needs none.")
    if variant != "V0":
        _check_cap(cap)
    per_class = {c: int(np.floor(cap * (labels == c).sum())) for c in (a, b)}
    common = dict(class_names=class_names, sample_ids=sample_ids)
    target = (lambda chosen: CurationTarget(a, b, tuple(chosen), int(final[a, b] + final[b, a])))
    if variant == "V0":
        chosen = uncertain[:num_prototypes]
        held = np.stack([signals.presence(u.prototype) for u in chosen]).max(0) * np.isin(labels, (a, b))
        if not held.any():
            raise NoSamplesError(f"{name} found no samples: no training sample of the pair holds prototype(s) "
                                 f"{[u.prototype for u in chosen]}.")
        if min_positions == "auto":
            m = auto_min_positions(target(chosen), signals.assignments, labels, auto_fraction)
            rule = f"≥ {m} positions (auto: the smallest count removing ≤ {auto_fraction:.0%} of each class)"
        else:
            m, rule = int(min_positions), f"≥ {min_positions} position(s)"
        if any((held[labels == c] >= m).all() for c in (a, b)):
            m = auto_min_positions(target(chosen), signals.assignments, labels, auto_fraction)
            rule = f"≥ {m} positions (≥ {min_positions} would empty a class; the smallest count removing ≤ {auto_fraction:.0%})"
        removed = np.flatnonzero(held >= m)
        if not len(removed):
            raise NoSamplesError(f"{name} found no samples at ≥ {m} positions.")
        return _made(variant, target(chosen), removed, signals, rule, None, m, **common)
    if variant in ("V1", "V2") and signals.intensities is None:
        raise CurationError(f"{variant} ranks by intensity: compute the signals with intensities=True.")
    if variant == "V1":
        top = uncertain[0]
        held = signals.presence(top.prototype) > 0
        m = min([per_class[c] for c in (a, b)] + [int((held & (labels == c)).sum()) for c in (a, b)])
        if m == 0:
            raise NoSamplesError(f"{name} found no samples: P{top.prototype} is held by "
                                 f"{[int((held & (labels == c)).sum()) for c in (a, b)]} training samples of classes "
                                 f"{[a, b]} and the cap allows {[per_class[a], per_class[b]]}.")
        score = np.where(held, signals.intensities[:, top.prototype], np.nan)
        return _made(variant, target([top]), _top(score, labels, {a: m, b: m}), signals,
                     f"balanced {m} per class, by P{top.prototype}'s intensity", cap, None, **common)
    if variant == "V2":
        rates = {}
        for u in uncertain:
            held = signals.presence(u.prototype) > 0
            rates[u.prototype] = (held[labels == a].mean(), held[labels == b].mean(), held.mean())
        kept = [u for u in uncertain if min(rates[u.prototype][:2]) > 0 and rates[u.prototype][2] < rare_fraction
                and max(rates[u.prototype][:2]) <= common_ratio * min(rates[u.prototype][:2])]
        if not kept:
            shown = ", ".join(f"P{k}: {ra:.0%} of {a}, {rb:.0%} of {b}, {r:.0%} of all" for k, (ra, rb, r) in rates.items())
            raise NoSamplesError(f"{name} found no samples: none of the pair's uncertain prototypes is common to both "
                                 f"classes (rates within {common_ratio}×) and rare overall (< {rare_fraction:.0%}): "
                                 f"{shown}.")
        held = np.stack([signals.presence(u.prototype) > 0 for u in kept]).any(0)
        score = np.where(held, signals.intensities[:, [u.prototype for u in kept]].sum(1), np.nan)
        return _made(variant, target(kept), _top(score, labels, per_class), signals,
                     f"holders of {['P%d' % u.prototype for u in kept]}, ≤ {cap:.0%} per class, by intensity",
                     cap, None, **common)
    if variant == "V3":
        gap = beta_gap(explanation, a, b)
        score = sum(signals.presence(u.prototype) * gap[u.prototype] for u in uncertain).astype(float)
        score[score <= 0] = np.nan
        return _made(variant, target(uncertain), _top(score, labels, per_class), signals,
                     f"score Σ presence × |β_a − β_b| over {len(uncertain)} prototypes, ≤ {cap:.0%} per class",
                     cap, None, **common)
    return _made(variant, target([]), _top(-signals.margins, labels, per_class), signals,
                 f"smallest a-vs-b margin, {cap:.0%} per class", cap, None, **common)


def random_control(curation: CurationSet, seed: int) -> CurationSet:
    """R: as many samples of each class of the pair as ``curation`` removes, drawn at random (per ``seed``)."""
    rng = np.random.default_rng([seed, zlib.crc32(curation.variant.encode())])
    labels = curation.labels
    removed = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), n, replace=False)
                                      for c, n in curation.removed_per_class.items()])).astype(np.int64)
    return dataclasses.replace(curation, removed=removed, variant=f"R({curation.variant})",
                               rule=f"random, same per-class counts as {curation.variant}, seed {seed}")
