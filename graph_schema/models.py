"""Pydantic models of the explanation graph: one class per node label and per relationship type.

Python fields are snake_case; graph properties are their camelCase aliases (``sample_support`` ->
``sampleSupport``). Every field is a Neo4j property type (bool, int, float, str, or a list of one of
them); ``None`` means "property absent". A row for the database is ``model.props()``.

Nodes carry ``runId`` (runs coexist and are deleted by it), ``key`` (unique within label and run,
the MERGE key) and ``name`` (Neo4j Browser's caption). A relationship model declares its
``source`` and ``target`` labels and its ``identity``: the properties that, with its two end nodes,
make one relationship unique (the MERGE pattern); the other properties are set on it.

A series (one value per step, per checkpoint or per prototype) is one list property, not one
relationship per entry: ``DRIVES.betas[t]`` is β at step t. Lists that share an index are declared
in a model's ``parallel`` groups and must have equal lengths, so a per-step statistic added later
(p-values beside ``betas``) is one more field in the same group.
"""

from __future__ import annotations

import types
import typing
from typing import Any, ClassVar, Literal, Type, Union

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


class _GraphModel(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)
    parallel: ClassVar[tuple[tuple[str, ...], ...]] = ()  # groups of list fields indexed alike

    @model_validator(mode="after")
    def _parallel_lists_match(self) -> _GraphModel:
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


class GraphNode(_GraphModel):
    """Base of every node: run membership, MERGE key and caption."""

    label: ClassVar[str]
    run_id: str
    key: str
    name: str


class Run(GraphNode):
    """One I2X run: its configuration and provenance. ``status`` is 'complete' only once all is written."""

    label: ClassVar[str] = "Run"
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
    stability_jaccard: list[float] = Field(description="Mean Jaccard overlap of drivers, separators and uncertain "
                                           "prototypes with re-fitted prototypes; empty when not measured.")
    stability_tau: float | None = Field(None, description="Mean Kendall τ of the learning order across re-fits.")
    skipped: list[str] = Field(description="Scopes too small to test, and why.")
    created_at: str
    status: Literal["writing", "complete", "failed", "deleting"] | None = None
    updated_at: str | None = None
    error: str | None = None


class Checkpoint(GraphNode):
    """A saved model state. Fine-tuned ones (``i2x improve``) carry ``schedule`` and ``seed``."""

    label: ClassVar[str] = "Checkpoint"
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
    label: ClassVar[str] = "Class"
    index: int
    probe_samples: int


class Prototype(GraphNode):
    """A cluster of the final model's feature vectors. ``support``: positions assigned over the probe
    set; ``sampleSupport``: probe samples containing it; ``supportByClass``: the latter per class."""

    label: ClassVar[str] = "Prototype"
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

    label: ClassVar[str] = "Group"
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

    label: ClassVar[str] = "Sample"
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

    label: ClassVar[str] = "CurationSet"
    prototypes: list[int]
    threshold: int | None = Field(None, description="V0: the position threshold; None for the capped variants.")
    pair: list[int]
    removed_by_class: str = Field(description="JSON object: class index -> removed sample count.")
    size: int | None = None
    variant: str | None = Field(None, description="Selection variant V0–V4 (i2x_plugin.selection).")
    cap: float | None = Field(None, description="V1–V4: the per-class cap (fraction).")
    rule: str | None = Field(None, description="How the samples were chosen, in words.")


class GraphRelationship(_GraphModel):
    """Base of every relationship: its run, and the keys of its source and target nodes."""

    type: ClassVar[str]
    source: ClassVar[Type[GraphNode]]
    target: ClassVar[Type[GraphNode]]
    identity: ClassVar[tuple[str, ...]] = ()
    run_id: str
    source_key: str = Field(alias="from")
    target_key: str = Field(alias="to")


class HasCheckpoint(GraphRelationship):
    type: ClassVar[str] = "HAS_CHECKPOINT"
    source: ClassVar[Type[GraphNode]] = Run
    target: ClassVar[Type[GraphNode]] = Checkpoint


class HasClass(GraphRelationship):
    type: ClassVar[str] = "HAS_CLASS"
    source: ClassVar[Type[GraphNode]] = Run
    target: ClassVar[Type[GraphNode]] = Class


class HasPrototype(GraphRelationship):
    type: ClassVar[str] = "HAS_PROTOTYPE"
    source: ClassVar[Type[GraphNode]] = Run
    target: ClassVar[Type[GraphNode]] = Prototype


class Next(GraphRelationship):
    """Checkpoint t -> t+1; ``step`` = t, the step index used by every β."""

    type: ClassVar[str] = "NEXT"
    source: ClassVar[Type[GraphNode]] = Checkpoint
    target: ClassVar[Type[GraphNode]] = Checkpoint
    step: int


class FineTunedFrom(GraphRelationship):
    type: ClassVar[str] = "FINE_TUNED_FROM"
    source: ClassVar[Type[GraphNode]] = Checkpoint
    target: ClassVar[Type[GraphNode]] = Checkpoint
    schedule: str | None = None


class Drives(GraphRelationship):
    """β of the prototype toward the class at every step: ``betas[t]`` is step t (checkpoint t → t+1), with
    ``zs[t]`` its normal score against the within-class permutation null. ``scope`` 'step': the fit on all
    samples; 'class': the fit on the target class's own samples (β[k, c] of class c's fit). ``beta`` and ``q``:
    the same fit pooled over all steps, with its Benjamini–Hochberg q-value (two-sided for 'step', one-sided
    positive for 'class'; absent where the class was not tested)."""

    type: ClassVar[str] = "DRIVES"
    source: ClassVar[Type[GraphNode]] = Prototype
    target: ClassVar[Type[GraphNode]] = Class
    identity: ClassVar[tuple[str, ...]] = ("scope",)
    parallel: ClassVar[tuple[tuple[str, ...], ...]] = (("betas", "zs"),)
    scope: Literal["step", "class"]
    betas: list[float] = Field(description="Per step (index = step).")
    zs: list[float] = Field(description="Per step: β's normal score against its permutation null.")
    beta: float = Field(description="Pooled over all steps.")
    q: float | None = None


class KeyDriverOf(GraphRelationship):
    """A driver of the class: β of the class's own fit pooled over steps is significantly positive (q), ranked by
    the share of the class's final saliency on the prototype."""

    type: ClassVar[str] = "KEY_DRIVER_OF"
    source: ClassVar[Type[GraphNode]] = Prototype
    target: ClassVar[Type[GraphNode]] = Class
    beta: float
    z: float
    p: float
    q: float
    saliency_share: float
    rank: int
    first_step: int | None = None
    recurrence: float | None = Field(None, description="Share of the stability test's re-fits that make it too.")


class InClass(GraphRelationship):
    type: ClassVar[str] = "IN_CLASS"
    source: ClassVar[Type[GraphNode]] = Group
    target: ClassVar[Type[GraphNode]] = Class


class _Sharing(GraphRelationship):
    source: ClassVar[Type[GraphNode]] = Prototype
    target: ClassVar[Type[GraphNode]] = Class
    fraction: float
    steps: list[int] = Field(description="With ``groups``: the (step, group) pairs where its β is significantly "
                             "positive.")
    groups: list[int]
    q: float = Field(description="The largest q-value over those groups.")


class SharedBy(_Sharing):
    """Significantly positive in (nearly) every tested learning-pattern group of the class."""

    type: ClassVar[str] = "SHARED_BY"


class SpecialisedTo(_Sharing):
    """Significantly positive in some of the class's tested groups only."""

    type: ClassVar[str] = "SPECIALISED_TO"


class Separates(GraphRelationship):
    """The prototype favours the target class over ``against`` (pair a < b) on the a ∪ b fits, from step
    ``firstStep`` to the last (a tested sequence: z, p, q)."""

    type: ClassVar[str] = "SEPARATES"
    source: ClassVar[Type[GraphNode]] = Prototype
    target: ClassVar[Type[GraphNode]] = Class
    identity: ClassVar[tuple[str, ...]] = ("a", "b")
    a: int
    b: int
    against: int
    first_step: int
    steps: list[int] = Field(description="Steps of the window whose own fit shows β[k, favours] > 0 > β[k, against].")
    margin: float = Field(description="Mean over the window of β[k, favours] − β[k, against].")
    z: float
    p: float
    q: float
    recurrence: float | None = None


class SeparatedFrom(GraphRelationship):
    """Class a -> class b (a < b): when the pair's confusion stayed below threshold; ``order`` in the learning order."""

    type: ClassVar[str] = "SEPARATED_FROM"
    source: ClassVar[Type[GraphNode]] = Class
    target: ClassVar[Type[GraphNode]] = Class
    checkpoint: int | None = None
    threshold: int
    peak_confusion: int
    final_confusion: int
    confusion_by_checkpoint: list[int]
    order: int | None = None


class UncertainBetween(GraphRelationship):
    """β[k,a] − β[k,b] flips sign over steps; one edge to each class of the pair, same numbers."""

    type: ClassVar[str] = "UNCERTAIN_BETWEEN"
    source: ClassVar[Type[GraphNode]] = Prototype
    target: ClassVar[Type[GraphNode]] = Class
    identity: ClassVar[tuple[str, ...]] = ("a", "b")
    a: int
    b: int
    flips: int
    flip_steps: list[int]
    significant_steps: list[int] = Field(description="Steps where β[k,a] − β[k,b] is significant, with ``signs``.")
    signs: list[int] = Field(description="+1 favours a, −1 favours b, at each significant step.")
    magnitude: float
    score: float
    p: float
    q: float
    rank: int
    recurrence: float | None = None


class DeletionTest(GraphNode):
    """Faithfulness of one claim group on the final model (validation.md §2): its prototypes' cells deleted at the
    explained layer, the effect the claim predicts, and where it falls among matched random prototype sets.
    Drivers: the drop in the class's confidence (``staticEffect``: the same for the prototypes with most final
    saliency); separators: the drop in the logit margin cls − other; uncertain: the change in confusions."""

    label: ClassVar[str] = "DeletionTest"
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


class Tests(GraphRelationship):
    """A deletion test -> the class whose claim it tests (for drivers; the favoured class for separators; class a
    for uncertain prototypes)."""

    type: ClassVar[str] = "TESTS"
    source: ClassVar[Type[GraphNode]] = DeletionTest
    target: ClassVar[Type[GraphNode]] = Class


class Deletes(GraphRelationship):
    """A deletion test -> each prototype it deleted."""

    type: ClassVar[str] = "DELETES"
    source: ClassVar[Type[GraphNode]] = DeletionTest
    target: ClassVar[Type[GraphNode]] = Prototype


class ConfusedAs(GraphRelationship):
    """``counts[t]`` probe samples of the source class predicted as the target class at checkpoint t
    (one relationship per ordered pair that is confused at some checkpoint)."""

    type: ClassVar[str] = "CONFUSED_AS"
    source: ClassVar[Type[GraphNode]] = Class
    target: ClassVar[Type[GraphNode]] = Class
    counts: list[int] = Field(description="Per checkpoint (index = checkpoint index).")


class LabelledAs(GraphRelationship):
    type: ClassVar[str] = "LABELLED_AS"
    source: ClassVar[Type[GraphNode]] = Sample
    target: ClassVar[Type[GraphNode]] = Class


class PredictedAs(GraphRelationship):
    """The final checkpoint's prediction."""

    type: ClassVar[str] = "PREDICTED_AS"
    source: ClassVar[Type[GraphNode]] = Sample
    target: ClassVar[Type[GraphNode]] = Class
    confidence: float


class ExemplarOf(GraphRelationship):
    """One of the prototype's highest-intensity samples, with the region (box) it covers."""

    type: ClassVar[str] = "EXEMPLAR_OF"
    source: ClassVar[Type[GraphNode]] = Sample
    target: ClassVar[Type[GraphNode]] = Prototype
    rank: int
    intensity: float
    presence: int
    box: list[int]


class Removes(GraphRelationship):
    type: ClassVar[str] = "REMOVES"
    source: ClassVar[Type[GraphNode]] = CurationSet
    target: ClassVar[Type[GraphNode]] = Sample


class ForPair(GraphRelationship):
    type: ClassVar[str] = "FOR_PAIR"
    source: ClassVar[Type[GraphNode]] = CurationSet
    target: ClassVar[Type[GraphNode]] = Class


NODE_MODELS: dict[str, type[GraphNode]] = {
    m.label: m for m in (Run, Checkpoint, Class, Prototype, Group, Sample, CurationSet, DeletionTest)}
RELATIONSHIP_MODELS: dict[str, type[GraphRelationship]] = {
    m.type: m for m in (HasCheckpoint, HasClass, HasPrototype, Next, FineTunedFrom, Drives, KeyDriverOf,
                        InClass, SharedBy, SpecialisedTo, Separates, SeparatedFrom, UncertainBetween,
                        ConfusedAs, LabelledAs, PredictedAs, ExemplarOf, Removes, ForPair, Tests, Deletes)}


def node_model(label: str) -> type[GraphNode]:
    try:
        return NODE_MODELS[label]
    except KeyError:
        raise KeyError(f"Unknown node label {label!r}; the schema has {', '.join(NODE_MODELS)}.") from None


def relationship_model(rel_type: str) -> type[GraphRelationship]:
    try:
        return RELATIONSHIP_MODELS[rel_type]
    except KeyError:
        raise KeyError(f"Unknown relationship type {rel_type!r}; the schema has "
                       f"{', '.join(RELATIONSHIP_MODELS)}.") from None
