"""Node labels of the explanation graph, and the base every graph model shares (Neo4j property types only,
camelCase aliases, parallel lists checked)."""

from __future__ import annotations

import types
import typing
from typing import Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

_SCALARS = (bool, int, float, str)


def _is_property_type(tp: Any) -> bool:
    """True for a Neo4j property type: a scalar, a homogeneous list of scalars, or either | None."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return len(args) == 1 and _is_property_type(args[0])
    if origin is Literal:
        return all(isinstance(a, _SCALARS) for a in typing.get_args(tp))
    if origin is list:
        (item,) = typing.get_args(tp)
        return item in _SCALARS
    return tp in _SCALARS


class GraphModel(BaseModel):
    """Base of every node and relationship model: Neo4j property types only, camelCase aliases, frozen."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)
    parallel: ClassVar[tuple[tuple[str, ...], ...]] = ()  # groups of list fields indexed alike

    @model_validator(mode="after")
    def _parallel_lists_match(self) -> GraphModel:
        fields = type(self).model_fields
        for names in self.parallel:
            sizes = {fields[n].alias or n: len(getattr(self, n)) for n in names if getattr(self, n) is not None}
            if len(set(sizes.values())) > 1:
                raise ValueError(f"{type(self).__name__}: the lists {', '.join(sizes)} share one index and must "
                                 f"have equal lengths; got {', '.join(f'{n}={v}' for n, v in sizes.items())}.")
        return self

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for name, info in cls.model_fields.items():
            if not _is_property_type(info.annotation):
                raise TypeError(f"{cls.__name__}.{name}: {info.annotation} is not a Neo4j property type "
                                "(use bool, int, float, str or a list of one of them).")

    def props(self) -> dict[str, Any]:
        """The graph properties (camelCase), without absent (None) ones."""
        return self.model_dump(by_alias=True, exclude_none=True)


class GraphNode(GraphModel):
    """Base of every node: run membership, MERGE key and caption."""

    label: ClassVar[str]
    run_id: str
    key: str
    name: str


class Run(GraphNode):
    """One I2X run: its configuration and provenance. ``status`` is 'complete' only once all is written."""

    label = "Run"
    config: str = Field(description="I2XConfig as JSON.")
    model: str
    layer: str
    method: str
    dataset: str
    k: int
    num_classes: int
    num_checkpoints: int
    num_samples: int = Field(description="Probe samples N (not all are stored as Sample nodes).")
    class_names: list[str]
    map_size: list[int]
    schema_version: int = Field(description="Layout of the run's graph: 2 = compact series, calibrated claims.")
    fdr_q: float = Field(description="Claims are shown at Benjamini–Hochberg q ≤ this.")
    claim_kinds: list[str] = Field(description="Claim kinds, in the order of claimsReal and claimsNoise.")
    claims_real: list[int] = Field(description="Claims of each kind in this run.")
    claims_noise: list[float] = Field(description="Mean claims of each kind the same procedure makes on ΔP shuffled "
                                      "within (step, class): the false claims to expect. Empty when not measured.")
    stability_jaccard: list[float] = Field(description="Mean Jaccard overlap with re-fitted prototypes' claims: all "
                                           "drivers, each class's top drivers, separators, uncertain prototypes "
                                           "(that order); empty when not measured.")
    stability_tau: float | None = Field(None, description="Mean Kendall τ of the learning order across re-fits.")
    skipped: list[str] = Field(description="Scopes too small to test, and why.")
    created_at: str
    status: Literal["writing", "complete", "failed", "deleting"] | None = None
    updated_at: str | None = None
    error: str | None = None


class Checkpoint(GraphNode):
    """A saved model state. Fine-tuned ones (``i2x improve``) carry ``schedule`` and ``seed``."""

    label = "Checkpoint"
    index: int
    step: int | None = None
    epoch: float | None = None
    accuracy: float | None = None
    train_loss: float | None = None
    path: str | None = None
    schedule: str | None = None
    seed: int | None = None
    test_accuracy: float | None = Field(None, description="Fine-tuned: accuracy on the held-out test split.")
    pair_confusions: int | None = Field(None, description="Fine-tuned: the targeted pair's a→b + b→a test confusions.")


class Class(GraphNode):
    label = "Class"
    index: int
    probe_samples: int


class Prototype(GraphNode):
    """A cluster of the final model's feature vectors. ``support``: positions assigned over the probe
    set; ``sampleSupport``: probe samples containing it; ``supportByClass``: the latter per class."""

    label = "Prototype"
    index: int
    support: int
    sample_support: int
    support_by_class: list[int]
    exemplar_samples: list[str] = Field(description="Sample keys, highest final intensity first.")
    exemplar_boxes: list[int] = Field(
        description="Four ints per exemplar (row0, col0, row1, col1; feature-map cells, inclusive).")


class Group(GraphNode):
    """A learning-pattern group (HDBSCAN on ΔŶ) of class ``cls`` at step ``step`` (checkpoint t → t+1).

    ``betas[k]``: β of prototype k toward the class in the group's own fit (absent when the group
    was too small to fit); ``topPrototypes``: its top positive prototypes, best first."""

    label = "Group"
    step: int
    cls: int
    group: int
    size: int
    noise: bool
    betas: list[float] | None = Field(None, description="Per prototype (index = prototype index).")
    top_prototypes: list[int] = []


class Sample(GraphNode):
    """A stored sample: exemplars, misclassified at the final checkpoint, and samples of an uncertain
    pair's classes containing its uncertain prototypes (``reasons``); train samples of a CurationSet.

    A probe sample lists the prototypes it contains (``prototypes``, ascending) with, at the same
    index, the feature-map cells assigned to each (``prototypePositions``) and its saliency there at
    the final checkpoint (``prototypeIntensities``); ``prototypeIntensitiesByCheckpoint`` holds the
    saliency at every checkpoint, prototype by prototype: entry ``j * T + t`` is ``prototypes[j]`` at
    checkpoint t (T checkpoints)."""

    label = "Sample"
    index: int = Field(description="Position in its split's data set as given to I2X.")
    sample_id: int
    split: str
    label_index: int = Field(alias="label")
    prediction: int | None = None
    correct: bool | None = None
    confidence: float | None = None
    reasons: list[str] = []
    image_uri: str | None = None
    prototypes: list[int] | None = None
    prototype_positions: list[int] | None = None
    prototype_intensities: list[float] | None = None
    prototype_intensities_by_checkpoint: list[float] | None = None
    parallel: ClassVar[tuple[tuple[str, ...], ...]] = (
        ("prototypes", "prototype_positions", "prototype_intensities"),)

    @model_validator(mode="after")
    def _one_trajectory_per_prototype(self) -> Sample:
        by_checkpoint, count = self.prototype_intensities_by_checkpoint, len(self.prototypes or ())
        if by_checkpoint is not None and (not count or len(by_checkpoint) % count):
            raise ValueError(f"Sample {self.key}: prototypeIntensitiesByCheckpoint holds {len(by_checkpoint)} values, "
                             f"not a multiple of its {count} prototypes (one per prototype and checkpoint).")
        return self


class CurationSet(GraphNode):
    """Training samples removed for targeted fine-tuning (written by ``i2x improve``)."""

    label = "CurationSet"
    prototypes: list[int]
    threshold: int | None = Field(None, description="V0: the position threshold; None for the capped variants.")
    pair: list[int]
    removed_by_class: str = Field(description="JSON object: class index -> removed sample count.")
    size: int | None = None
    variant: str | None = Field(None, description="Selection variant V0–V4 (i2x_plugin.improve.selection).")
    cap: float | None = Field(None, description="V1–V4: the per-class cap (fraction).")
    rule: str | None = Field(None, description="How the samples were chosen, in words.")


class DeletionTest(GraphNode):
    """Faithfulness of one claim group on the final model (validation.md §2): its prototypes' cells deleted at the
    explained layer, the effect the claim predicts, and where it falls among matched random prototype sets.
    Drivers: the drop in the class's confidence (``staticEffect``: the same for the prototypes with most final
    saliency); separators: the drop in the logit margin cls − other; uncertain: the change in confusions."""

    label = "DeletionTest"
    kind: Literal["drivers", "separators", "uncertain"]
    cls: int
    other: int | None = None
    prototypes: list[int]
    samples: int
    area: float
    effect: float
    random_median: float
    percentile: float
    p: float
    static_prototypes: list[int]
    static_effect: float | None = None
    static_percentile: float | None = None
