"""Step 8 of I2X: the structured explanation, the result of a run.

The claims (drivers, shared/specialised, separators, uncertain prototypes) come from :mod:`.claims`,
each with its evidence. Here: when each pair of classes was separated and in which order (from the
confusion counts per checkpoint), each prototype's exemplars, and :class:`StructuredExplanation`, which
holds it all, is typed and saves to JSON + NPZ (no pickles). It is data: the checks
(:mod:`i2x_plugin.checks`) return a new one with their results, the graph stage turns it into rows
(:func:`i2x_plugin.graph_schema.explanation_rows`) and the report shows it.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_open, write_text
from .claim_types import Claims, ClaimCounts, Driver, GroupSummary, Separator, SharedPrototype, UncertainPrototype
from .claims import class_pairs
from .config import I2XConfig
from .evidence import FaithfulnessResult, RelianceResult, StabilityResult
from .progress import Trajectory
from .prototypes import Prototypes

FORMAT_VERSION = 2  # 2: calibrated claims with p/q-values (issue 9); 1 (no field): i2x-plugin 0.1


class ExplanationFormatError(ValueError):
    """A saved explanation was written by another version of i2x-plugin."""


@dataclass(frozen=True)
class CheckpointSummary:
    index: int
    name: str
    path: str
    epoch: float | None
    step: int | None
    train_loss: float | None
    accuracy: float


@dataclass(frozen=True)
class PairSeparation:
    a: int
    b: int
    separation_checkpoint: int | None  # first checkpoint from which confusions stay ≤ threshold
    threshold: int
    peak_confusion: int
    final_confusion: int
    confusion_by_checkpoint: list[int]


@dataclass(frozen=True)
class Exemplar:
    prototype: int
    sample: int  # position in the probe set
    intensity: float  # at the final checkpoint
    presence: int  # positions of the sample assigned to the prototype
    box: list[int]  # [row0, col0, row1, col1] in feature-map cells, inclusive


@dataclass(frozen=True)
class StructuredExplanation:
    """The result of an I2X run: prototypes, per-step β, groups, and the claims that passed their tests.

    Every claim (drivers, separators, uncertain, shared) carries its p-value, Benjamini–Hochberg q-value and
    effect size; ``claim_counts`` gives the run's count of each kind beside the count the same procedure
    makes on noise, and ``skipped`` names the scopes too small to test.
    """

    run_id: str
    config: I2XConfig
    model_name: str
    layer: str
    method: str
    dataset: str
    class_names: list[str]
    map_size: list[int]
    checkpoints: list[CheckpointSummary]
    drivers: list[Driver]
    groups: list[GroupSummary]
    shared: list[SharedPrototype]
    separators: list[Separator]
    separations: list[PairSeparation]
    learning_order: list[list[int]]
    uncertain: list[UncertainPrototype]
    exemplars: list[Exemplar]
    claim_counts: ClaimCounts | None
    skipped: list[str]
    created_at: str
    faithfulness_results: list[FaithfulnessResult]  # the deletion tests, once run (checks.run_faithfulness)
    # Arrays (saved to NPZ).
    sample_ids: np.ndarray = field(repr=False)  # (N,) index of each probe sample in its data set
    labels: np.ndarray = field(repr=False)  # (N,)
    assignments: np.ndarray = field(repr=False)  # (N, h, w)
    presence: np.ndarray = field(repr=False)  # (N, K)
    intensities: np.ndarray = field(repr=False)  # (T, N, K)
    confidences: np.ndarray = field(repr=False)  # (T, N, C)
    predictions: np.ndarray = field(repr=False)  # (T, N)
    confusion: np.ndarray = field(repr=False)  # (T, C, C)
    group_labels: np.ndarray = field(repr=False)  # (T-1, N)
    beta_step: np.ndarray = field(repr=False)  # (T-1, K, C) fit on all samples of a step
    z_step: np.ndarray = field(repr=False)  # (T-1, K, C) normal score against the permutation null
    beta_overall: np.ndarray = field(repr=False)  # (K, C) fit on all samples of all steps
    q_overall: np.ndarray = field(repr=False)  # (K, C) two-sided q-values
    beta_class: np.ndarray = field(repr=False)  # (T-1, C, K) β[k, c] of class c's own fit per step
    z_class: np.ndarray = field(repr=False)  # (T-1, C, K)
    beta_driver: np.ndarray = field(repr=False)  # (C, K) class c's own fit pooled over steps
    q_driver: np.ndarray = field(repr=False)  # (C, K) one-sided (positive) q-values; NaN: not tested
    beta_pair: np.ndarray = field(repr=False)  # (T-1, P, K, 2) float32: β[k, a], β[k, b] of the a ∪ b fit
    z_pair: np.ndarray = field(repr=False)  # (T-1, P, K, 2) float32
    beta_group_keys: np.ndarray = field(repr=False)  # (G, 3): step, class, group of the tested groups
    beta_group: np.ndarray = field(repr=False)  # (G, K) β[k, c] of the group's fit
    q_group: np.ndarray = field(repr=False)  # (G, K) one-sided q-values
    saliency_maps: np.ndarray | None = field(default=None, repr=False)  # (T, N, h, w) float32 (keep_maps)
    # The fitted PCA + centres, to assign samples outside the probe set (e.g. the whole training set for
    # step 9's curated set).
    prototypes: Prototypes | None = field(default=None, repr=False, compare=False)
    stability: StabilityResult | None = None  # the stability test's figures, once run (checks.run_stability)
    reliance: RelianceResult | None = None  # the final model's reliance relation, once run (checks.run_reliance)

    _ARRAYS = ("sample_ids", "labels", "assignments", "presence", "intensities", "confidences", "predictions",
               "confusion", "group_labels", "beta_step", "z_step", "beta_overall", "q_overall", "beta_class",
               "z_class", "beta_driver", "q_driver", "beta_pair", "z_pair", "beta_group_keys", "beta_group",
               "q_group")
    _CLAIM_TYPES = {"checkpoints": CheckpointSummary, "drivers": Driver, "groups": GroupSummary,
                    "shared": SharedPrototype, "separators": Separator, "separations": PairSeparation,
                    "uncertain": UncertainPrototype, "exemplars": Exemplar,
                    "faithfulness_results": FaithfulnessResult}

    @property
    def k(self) -> int:
        return self.presence.shape[1]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return class_pairs(self.num_classes)

    def pair_index(self, a: int, b: int) -> int:
        """Position of the pair {a, b} in ``pairs`` (and in ``beta_pair``'s second axis)."""
        if a == b or not (0 <= a < self.num_classes and 0 <= b < self.num_classes):
            raise ValueError(f"({a}, {b}) is not a pair of two different classes of 0..{self.num_classes - 1}.")
        lo, hi = min(a, b), max(a, b)
        return lo * (2 * self.num_classes - lo - 1) // 2 + hi - lo - 1

    def pair_beta(self, a: int, b: int) -> np.ndarray:
        """``(T-1, K, 2)``: β[k, a] and β[k, b] (in that order) of the fits on the samples of a ∪ b."""
        beta = self.beta_pair[:, self.pair_index(a, b)]
        return beta if a < b else beta[..., ::-1]

    def group_beta(self, step: int, cls: int, group: int) -> np.ndarray:
        """``(K,)`` β[k, cls] of a tested group's own fit."""
        hit = np.flatnonzero((self.beta_group_keys == (step, cls, group)).all(1))
        if not len(hit):
            raise KeyError(f"No β for step {step}, class {cls}, group {group}: the group does not exist or has "
                           f"fewer than min_scope_samples={self.config.min_scope_samples} samples (not tested).")
        return self.beta_group[hit[0]]

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_id = np.array(secrets.token_hex(8))
        with atomic_open(directory / "arrays.npz") as f:
            optional = {"saliency_maps": self.saliency_maps} if self.saliency_maps is not None else {}
            np.savez_compressed(f, save_id=save_id, **{name: getattr(self, name) for name in self._ARRAYS},
                                **optional)
        if self.prototypes is not None:
            with atomic_open(directory / "prototypes.npz") as f:
                np.savez_compressed(f, save_id=save_id, **prototypes_to_arrays(self.prototypes))
        else:
            (directory / "prototypes.npz").unlink(missing_ok=True)  # an earlier save's would not match
        meta: dict[str, Any] = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                                if f.name not in self._ARRAYS + ("prototypes", "saliency_maps")}
        meta["config"] = self.config.model_dump()
        meta = {k: ([dataclasses.asdict(x) for x in v] if isinstance(v, list) and v and dataclasses.is_dataclass(v[0])
                    else dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v) for k, v in meta.items()}
        meta["save_id"] = str(save_id)
        meta["format_version"] = FORMAT_VERSION
        write_text(directory / "explanation.json", json.dumps(meta, indent=1))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "StructuredExplanation":
        """Read an explanation written by :meth:`save` (of this version of i2x-plugin)."""
        directory = Path(directory)
        meta: dict[str, Any] = json.loads((directory / "explanation.json").read_text())
        version = meta.pop("format_version", 1)
        if version != FORMAT_VERSION:
            raise ExplanationFormatError(
                f"{directory} holds an explanation in format {version}, written by "
                f"{'i2x-plugin 0.1, before claims were tested against a null' if version == 1 else 'another version'}"
                f"; this version reads format {FORMAT_VERSION}. Explain the run again (i2x run --checkpoints "
                "DIR, or I2X.explain) to get calibrated claims.")
        save_id = meta.pop("save_id", None)

        def check(arrays: Any, name: str) -> None:
            if save_id is not None and "save_id" in arrays and str(arrays["save_id"]) != save_id:
                raise ValueError(f"{directory / name} and explanation.json come from different saves (a save was "
                                 "interrupted); save the explanation again.")

        with np.load(directory / "arrays.npz", allow_pickle=False) as arrays:
            check(arrays, "arrays.npz")
            data = {name: arrays[name] for name in cls._ARRAYS + ("saliency_maps",) if name in arrays}
        for name, kind in cls._CLAIM_TYPES.items():
            meta[name] = [kind(**row) for row in meta[name]]
        meta["claim_counts"] = ClaimCounts(**meta["claim_counts"]) if meta["claim_counts"] else None
        meta["stability"] = StabilityResult(**meta["stability"]) if meta.get("stability") else None
        meta["reliance"] = RelianceResult.from_dict(meta["reliance"]) if meta.get("reliance") else None
        meta["config"] = I2XConfig.model_validate(meta["config"])
        if (directory / "prototypes.npz").is_file():
            with np.load(directory / "prototypes.npz", allow_pickle=False) as arrays:
                check(arrays, "prototypes.npz")
                meta["prototypes"] = prototypes_from_arrays(arrays)
        return cls(**meta, **data)


def prototypes_to_arrays(prototypes: Prototypes) -> dict[str, np.ndarray]:
    """The arrays that define fitted prototypes (PCA mean/components/variance, centres, probe assignments)."""
    pca = prototypes.pca
    return {"pca_mean": pca.mean_, "pca_components": pca.components_, "pca_variance": pca.explained_variance_,
            "pca_whiten": np.array(bool(pca.whiten)), "centers": prototypes.centers,
            "assignments": prototypes.assignments}


def prototypes_from_arrays(arrays: Any) -> Prototypes:
    """Rebuild :class:`Prototypes` saved by :func:`prototypes_to_arrays` (no pickles)."""
    from sklearn.decomposition import PCA

    components = np.asarray(arrays["pca_components"])
    pca = PCA(n_components=len(components), whiten=bool(arrays["pca_whiten"]))
    pca.components_, pca.mean_ = components, np.asarray(arrays["pca_mean"])
    pca.explained_variance_ = np.asarray(arrays["pca_variance"])
    pca.n_components_, pca.n_features_in_ = len(components), components.shape[1]
    return Prototypes(pca=pca, centers=np.asarray(arrays["centers"]), assignments=np.asarray(arrays["assignments"]))


# --- building the structure ------------------------------------------------------------------------


def pair_separations(confusion: np.ndarray, labels: np.ndarray, pairs: list[tuple[int, int]],
                     fraction: float) -> list[PairSeparation]:
    """Separation checkpoint of each pair: the first from which a↔b confusions stay ≤ the threshold."""
    counts = np.bincount(labels, minlength=confusion.shape[1])
    out = []
    for a, b in pairs:
        series = (confusion[:, a, b] + confusion[:, b, a]).astype(int)
        threshold = max(1, int(round(fraction * (counts[a] + counts[b]))))
        above = np.flatnonzero(series > threshold)
        if not len(above):
            checkpoint: int | None = 0
        elif above[-1] == len(series) - 1:
            checkpoint = None
        else:
            checkpoint = int(above[-1] + 1)
        out.append(PairSeparation(a, b, checkpoint, threshold, int(series.max()), int(series[-1]), series.tolist()))
    return out


def learning_order(separations: list[PairSeparation]) -> list[list[int]]:
    """Pairs that were ever confused above threshold, by separation checkpoint (never separated last)."""
    confused = [s for s in separations if s.peak_confusion > s.threshold]
    confused.sort(key=lambda s: (s.separation_checkpoint is None, s.separation_checkpoint or 0, -s.peak_confusion))
    return [[s.a, s.b] for s in confused]


def find_exemplars(intensities_final: np.ndarray, presence: np.ndarray, assignments: np.ndarray,
                   per_prototype: int) -> list[Exemplar]:
    """Per prototype: the probe samples where it is most salient at the final checkpoint, with its region."""
    out = []
    for k in range(presence.shape[1]):
        score = np.where(presence[:, k] > 0, intensities_final[:, k], -np.inf)
        order = np.argsort(-score, kind="stable")[:per_prototype]
        for i in order[np.isfinite(score[order])]:
            rows, cols = np.nonzero(assignments[i] == k)
            out.append(Exemplar(k, int(i), float(intensities_final[i, k]), int(presence[i, k]),
                                [int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())]))
    return out


def build_structure(trajectory: Trajectory, claims: Claims, labels: np.ndarray, assignments: np.ndarray,
                    presence: np.ndarray, config: I2XConfig) -> dict[str, Any]:
    """Every derived part of the explanation, as keyword arguments of :class:`StructuredExplanation`."""
    separations = pair_separations(trajectory.confusion, labels, class_pairs(trajectory.confidences.shape[2]),
                                   config.separation_confusion_fraction)
    return dict(
        drivers=claims.drivers, groups=claims.groups, shared=claims.shared, separators=claims.separators,
        separations=separations, learning_order=learning_order(separations), uncertain=claims.uncertain,
        exemplars=find_exemplars(trajectory.intensities[-1], presence, assignments, config.exemplars),
        claim_counts=claims.counts, skipped=claims.skipped,
        beta_step=claims.beta_step, z_step=claims.z_step, beta_overall=claims.beta_overall,
        q_overall=claims.q_overall, beta_class=claims.beta_class, z_class=claims.z_class,
        beta_driver=claims.beta_driver, q_driver=claims.q_driver, beta_pair=claims.beta_pair, z_pair=claims.z_pair,
        beta_group_keys=claims.beta_group_keys, beta_group=claims.beta_group, q_group=claims.q_group,
    )
