"""Step 8 of I2X: the structured explanation built from the sweep's β.

Intra-class: which prototypes drive a class, shared by all its learning-pattern groups or
specialised to some. Inter-class: which prototypes separate two classes and from which checkpoint
on, the order in which pairs were separated, and the prototypes whose β keeps flipping between two
confused classes ("uncertain"). :class:`StructuredExplanation` holds it all, is typed, saves to
JSON + NPZ (no pickles) and converts to the graph the store holds.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_open, write_text
from .config import I2XConfig
from .progress import Betas, Trajectory, class_pairs
from .prototypes import Prototypes


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
class Driver:
    """Prototype ``prototype`` pushes class ``cls`` up: mean β over steps, and the first step it was a top driver."""

    cls: int
    prototype: int
    beta: float
    first_step: int | None


@dataclass(frozen=True)
class GroupSummary:
    step: int
    cls: int
    group: int  # -1 = HDBSCAN noise
    size: int
    top_prototypes: list[int]


@dataclass(frozen=True)
class SharedPrototype:
    """``kind`` is "shared" (top in ≥ shared_fraction of the class's groups) or "specialised" (some only)."""

    cls: int
    prototype: int
    kind: str
    fraction: float
    groups: list[list[int]]  # [step, group] pairs where it is a top positive prototype


@dataclass(frozen=True)
class Separator:
    """Prototype ``prototype`` favours ``favours`` over the other class of pair (a, b) at ``steps``."""

    a: int
    b: int
    prototype: int
    favours: int
    first_step: int
    steps: list[int]
    margin: float  # max over steps of β[k, favours] − β[k, other]


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
class UncertainPrototype:
    a: int
    b: int
    prototype: int
    flips: int
    flip_steps: list[int]
    magnitude: float  # mean |β[k,a] − β[k,b]| over the steps above the noise floor
    score: float  # flips × magnitude


@dataclass(frozen=True)
class Exemplar:
    prototype: int
    sample: int  # position in the probe set
    intensity: float  # at the final checkpoint
    presence: int  # positions of the sample assigned to the prototype
    box: list[int]  # [row0, col0, row1, col1] in feature-map cells, inclusive


@dataclass(frozen=True)
class StructuredExplanation:
    """The result of an I2X run: prototypes, per-step β, groups and the structure derived from them."""

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
    noise_floor: float
    created_at: str
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
    beta_step: np.ndarray = field(repr=False)  # (T-1, K, C)
    beta_class: np.ndarray = field(repr=False)  # (T-1, C, K, C)
    beta_pair: np.ndarray = field(repr=False)  # (T-1, P, K, C)
    beta_group_keys: np.ndarray = field(repr=False)  # (G, 3): step, class, group
    beta_group: np.ndarray = field(repr=False)  # (G, K, C)
    # The fitted PCA + centres, to assign samples outside the probe set (e.g. the whole training set for
    # step 9's curated set). Optional: explanations saved before it existed load with None.
    prototypes: Prototypes | None = field(default=None, repr=False, compare=False)

    _ARRAYS = ("sample_ids", "labels", "assignments", "presence", "intensities", "confidences", "predictions",
               "confusion", "group_labels", "beta_step", "beta_class", "beta_pair", "beta_group_keys", "beta_group")

    @property
    def k(self) -> int:
        return self.presence.shape[1]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return class_pairs(self.num_classes)

    def pair_beta(self, a: int, b: int) -> np.ndarray:
        """``(T-1, K, C)`` β fitted on the samples of classes a ∪ b."""
        return self.beta_pair[:, self.pairs.index((min(a, b), max(a, b)))]

    def group_beta(self, step: int, cls: int, group: int) -> np.ndarray:
        hit = np.flatnonzero((self.beta_group_keys == (step, cls, group)).all(1))
        if not len(hit):
            raise KeyError(f"No β for step {step}, class {cls}, group {group}.")
        return self.beta_group[hit[0]]

    def to_networkx(self):
        """The same graph the store holds, as a networkx MultiDiGraph."""
        from .graph_schema.rows import explanation_rows

        return explanation_rows(self).to_networkx()

    # Serialisation: JSON for the structure, NPZ for the arrays; no pickles. Each file is written atomically,
    # the JSON last; a save id in all three tells a directory whose files come from two saves (an interrupted one).
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_id = np.array(secrets.token_hex(8))
        with atomic_open(directory / "arrays.npz") as f:
            np.savez_compressed(f, save_id=save_id, **{name: getattr(self, name) for name in self._ARRAYS})
        if self.prototypes is not None:
            with atomic_open(directory / "prototypes.npz") as f:
                np.savez_compressed(f, save_id=save_id, **prototypes_to_arrays(self.prototypes))
        else:
            (directory / "prototypes.npz").unlink(missing_ok=True)  # an earlier save's would not match
        meta = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in self._ARRAYS and f.name != "prototypes"}
        meta["config"] = self.config.model_dump()
        meta = {k: ([dataclasses.asdict(x) for x in v] if isinstance(v, list) and v and dataclasses.is_dataclass(v[0])
                    else v) for k, v in meta.items()}
        meta["save_id"] = str(save_id)
        write_text(directory / "explanation.json", json.dumps(meta, indent=1))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "StructuredExplanation":
        directory = Path(directory)
        meta: dict[str, Any] = json.loads((directory / "explanation.json").read_text())
        save_id = meta.pop("save_id", None)

        def check(arrays: Any, name: str) -> None:
            if save_id is not None and "save_id" in arrays and str(arrays["save_id"]) != save_id:
                raise ValueError(f"{directory / name} and explanation.json come from different saves (a save was "
                                 "interrupted); save the explanation again.")

        with np.load(directory / "arrays.npz", allow_pickle=False) as arrays:
            check(arrays, "arrays.npz")
            data = {name: arrays[name] for name in cls._ARRAYS}
        types = {"checkpoints": CheckpointSummary, "drivers": Driver, "groups": GroupSummary, "shared": SharedPrototype,
                 "separators": Separator, "separations": PairSeparation, "uncertain": UncertainPrototype,
                 "exemplars": Exemplar}
        for name, kind in types.items():
            meta[name] = [kind(**row) for row in meta[name]]
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


def _top_positive(beta_column: np.ndarray, m: int) -> list[int]:
    order = np.argsort(-beta_column, kind="stable")[:m]
    return [int(k) for k in order if beta_column[k] > 0]


def step_weights(delta_conf: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``(T-1, C)``: how much class c's own confidence moved at each step, mean |ΔŶ[i, c]| over its samples,
    normalised to sum to 1 over steps (uniform where it never moved)."""
    moved = np.stack([np.abs(delta_conf[:, labels == c, c]).mean(1) for c in range(num_classes)], 1)
    total = moved.sum(0, keepdims=True)
    return np.where(total > 0, moved / np.where(total > 0, total, 1), 1 / len(moved))


def find_drivers(beta_class: np.ndarray, weights: np.ndarray, m: int) -> list[Driver]:
    """Per class c: the top-m prototypes by the step-weighted mean of the class fit's β[k, c] (positive only).

    (D) Steps are weighted by how much the class's confidence moved (``step_weights``), so steps where
    the class learnt nothing do not drown the ones where it did.
    """
    steps, num_classes, _, _ = beta_class.shape
    drivers = []
    for c in range(num_classes):
        column = beta_class[:, c, :, c]  # (T-1, K)
        mean = weights[:, c] @ column
        tops = [set(_top_positive(column[t], m)) for t in range(steps)]
        for k in _top_positive(mean, m):
            first = next((t for t in range(steps) if k in tops[t]), None)
            drivers.append(Driver(c, k, float(mean[k]), first))
    return drivers


def summarise_groups(betas: Betas, group_labels: np.ndarray, labels: np.ndarray, num_classes: int,
                     m: int) -> list[GroupSummary]:
    out = []
    for t in range(group_labels.shape[0]):
        for c in range(num_classes):
            ids, sizes = np.unique(group_labels[t, labels == c], return_counts=True)
            for g, size in zip(ids.tolist(), sizes.tolist()):
                beta = betas.per_group.get((t, c, g))
                out.append(GroupSummary(t, c, g, size, _top_positive(beta[:, c], m) if beta is not None else []))
    return out


def shared_and_specialised(betas: Betas, num_classes: int, m: int, shared_fraction: float) -> list[SharedPrototype]:
    """Prototypes that are top positive drivers of c in all (shared) or some (specialised) of c's groups.

    Groups are the non-noise HDBSCAN groups of class c over all steps. A class with no group at all
    falls back to its per-step class fits, each counted as one group.
    """
    out = []
    for c in range(num_classes):
        scopes = [((t, g), beta) for (t, cls, g), beta in sorted(betas.per_group.items()) if cls == c]
        if not scopes:
            scopes = [((t, -1), betas.per_class[t, c]) for t in range(betas.per_class.shape[0])]
        hits: dict[int, list[list[int]]] = {}
        for (t, g), beta in scopes:
            for k in _top_positive(beta[:, c], m):
                hits.setdefault(k, []).append([t, g])
        mean_class = betas.per_class[:, c, :, c].mean(0)
        for k, where in sorted(hits.items()):
            fraction = len(where) / len(scopes)
            if fraction >= shared_fraction and mean_class[k] > 0:
                out.append(SharedPrototype(c, k, "shared", fraction, where))
            elif fraction < shared_fraction:
                out.append(SharedPrototype(c, k, "specialised", fraction, where))
    return out


def noise_floor(beta_pair: np.ndarray, pairs: list[tuple[int, int]], quantile: float) -> float:
    """The ``quantile`` of |β[k, a]| and |β[k, b]| over all pooled pair fits and steps."""
    if not pairs:
        return 0.0
    values = np.concatenate([np.abs(beta_pair[:, p, :, [a, b]]).ravel() for p, (a, b) in enumerate(pairs)])
    return float(np.quantile(values, quantile))


def find_separators(beta_pair: np.ndarray, pairs: list[tuple[int, int]], floor: float) -> list[Separator]:
    """k separates a from b at step t when β[k, a] > floor and β[k, b] < −floor on the a ∪ b fit (and vice versa)."""
    out = []
    for p, (a, b) in enumerate(pairs):
        beta = beta_pair[:, p]  # (T-1, K, C)
        for favours, other in ((a, b), (b, a)):
            holds = (beta[:, :, favours] > floor) & (beta[:, :, other] < -floor)  # (T-1, K)
            for k in np.flatnonzero(holds.any(0)):
                steps = np.flatnonzero(holds[:, k]).tolist()
                margin = float((beta[steps, k, favours] - beta[steps, k, other]).max())
                out.append(Separator(a, b, int(k), favours, steps[0], steps, margin))
    return out


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


def most_confused_pairs(final_confusion: np.ndarray, top: int, thresholds: dict | None = None) -> list[tuple[int, int]]:
    c = final_confusion.shape[0]
    scored = [((final_confusion[a, b] + final_confusion[b, a]), (a, b)) for a, b in class_pairs(c)]
    scored = [s for s in scored if s[0] > 0]
    scored.sort(key=lambda s: -s[0])
    return [pair for _, pair in scored[:top]]


def find_uncertain(beta_pair: np.ndarray, pairs: list[tuple[int, int]], confused: list[tuple[int, int]],
                   floor: float, min_flips: int) -> list[UncertainPrototype]:
    """k is uncertain for (a, b) when the sign of β[k,a] − β[k,b] (above the floor) flips ≥ ``min_flips`` times."""
    out = []
    for a, b in confused:
        beta = beta_pair[:, pairs.index((a, b))]
        diff = beta[:, :, a] - beta[:, :, b]  # (T-1, K)
        for k in range(diff.shape[1]):
            significant = np.flatnonzero(np.abs(diff[:, k]) > floor)
            signs = np.sign(diff[significant, k])
            flip_at = significant[1:][signs[1:] != signs[:-1]].tolist()
            if len(flip_at) >= min_flips:
                magnitude = float(np.abs(diff[significant, k]).mean())
                out.append(UncertainPrototype(a, b, k, len(flip_at), flip_at, magnitude, len(flip_at) * magnitude))
    out.sort(key=lambda u: -u.score)
    return out


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


def build_structure(trajectory: Trajectory, betas: Betas, group_labels: np.ndarray, labels: np.ndarray,
                    assignments: np.ndarray, presence: np.ndarray, config: I2XConfig) -> dict[str, Any]:
    """Every derived part of the explanation, as keyword arguments of :class:`StructuredExplanation`."""
    num_classes = trajectory.confidences.shape[2]
    pairs = class_pairs(num_classes)
    m = config.top_prototypes
    floor = noise_floor(betas.per_pair, pairs, config.noise_floor_quantile)
    separations = pair_separations(trajectory.confusion, labels, pairs, config.separation_confusion_fraction)
    confused = most_confused_pairs(trajectory.confusion[-1], config.confused_pairs)
    keys = sorted(betas.per_group)
    return dict(
        drivers=find_drivers(betas.per_class, step_weights(np.diff(trajectory.confidences, axis=0), labels,
                                                           num_classes), m),
        groups=summarise_groups(betas, group_labels, labels, num_classes, m),
        shared=shared_and_specialised(betas, num_classes, m, config.shared_fraction),
        separators=find_separators(betas.per_pair, pairs, floor),
        separations=separations,
        learning_order=learning_order(separations),
        uncertain=find_uncertain(betas.per_pair, pairs, confused, floor, config.uncertain_min_flips),
        exemplars=find_exemplars(trajectory.intensities[-1], presence, assignments, config.exemplars),
        noise_floor=floor,
        beta_step=betas.step,
        beta_class=betas.per_class,
        beta_pair=betas.per_pair,
        beta_group_keys=np.array(keys, dtype=np.int64).reshape(-1, 3),
        beta_group=np.stack([betas.per_group[key] for key in keys]) if keys
        else np.zeros((0,) + betas.step.shape[1:]),
    )
