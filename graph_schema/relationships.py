"""Relationship types of the explanation graph: each declares its source and target labels and its identity
(the properties that, with its end nodes, make it unique: the MERGE pattern)."""

from __future__ import annotations

from typing import ClassVar, Literal, Type

from pydantic import Field

from .nodes import (
    Checkpoint, Class, CurationSet, DeletionTest, GraphModel, GraphNode, Group, Prototype, Run, Sample,
)


class GraphRelationship(GraphModel):
    """Base of every relationship: its run, and the keys of its source and target nodes."""

    type: ClassVar[str]
    source: ClassVar[Type[GraphNode]]
    target: ClassVar[Type[GraphNode]]
    identity: ClassVar[tuple[str, ...]] = ()
    run_id: str
    source_key: str = Field(alias="from")
    target_key: str = Field(alias="to")


def _plain_relationship(name: str, rel_type: str, source: type[GraphNode], target: type[GraphNode]
                        ) -> type[GraphRelationship]:
    """A relationship type with no properties of its own."""
    return type(name, (GraphRelationship,), {"type": rel_type, "source": source, "target": target,
                                             "__module__": __name__, "__qualname__": name})


class Next(GraphRelationship):
    """Checkpoint t -> t+1; ``step`` = t, the step index used by every β."""

    type, source, target = "NEXT", Checkpoint, Checkpoint
    step: int


class FineTunedFrom(GraphRelationship):
    type, source, target = "FINE_TUNED_FROM", Checkpoint, Checkpoint
    schedule: str | None = None


class Drives(GraphRelationship):
    """β of the prototype toward the class at every step: ``betas[t]`` is step t (checkpoint t → t+1), with
    ``zs[t]`` its normal score against the within-class permutation null. ``scope`` 'step': the fit on all
    samples; 'class': the fit on the target class's own samples (β[k, c] of class c's fit). ``beta`` and ``q``:
    the same fit pooled over all steps, with its Benjamini–Hochberg q-value (two-sided for 'step', one-sided
    positive for 'class'; absent where the class was not tested)."""

    type, source, target = "DRIVES", Prototype, Class
    identity = ("scope",)
    parallel: ClassVar[tuple[tuple[str, ...], ...]] = (("betas", "zs"),)
    scope: Literal["step", "class"]
    betas: list[float] = Field(description="Per step (index = step).")
    zs: list[float] = Field(description="Per step: β's normal score against its permutation null.")
    beta: float = Field(description="Pooled over all steps.")
    q: float | None = None


class KeyDriverOf(GraphRelationship):
    """A driver of the class: β of the class's own fit pooled over steps is significantly positive (q), ranked by
    the share of the class's final saliency on the prototype. Every p and q in the graph is stored no lower
    than 1e-6 (i2x_plugin.method.pvalues): a stored 1e-6 reads "< 1e-6". ``firstStep``: the first step significant
    at step_alpha / steps (Bonferroni over the steps)."""

    type, source, target = "KEY_DRIVER_OF", Prototype, Class
    beta: float
    z: float
    p: float
    q: float
    saliency_share: float
    rank: int
    first_step: int | None = None
    recurrence: float | None = Field(None, description="Share of the stability test's re-fits that make it too.")


class _Sharing(GraphRelationship):
    source, target = Prototype, Class
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
    """The prototype favours the target class over ``against`` (pair a < b) on the a ∪ b fits, *on average*
    from step ``firstStep`` to the last (a tested sequence: z, p, q; not at every step: see ``steps``).
    ``firstStep`` is descriptive: the onset of the window with the strongest evidence."""

    type, source, target = "SEPARATES", Prototype, Class
    identity = ("a", "b")
    a: int
    b: int
    against: int
    first_step: int = Field(description="Descriptive: the onset of the strongest window (not itself tested).")
    steps: list[int] = Field(description="Steps of the window whose own fit shows β[k, favours] > 0 > β[k, against].")
    margin: float = Field(description="Mean over the window of β[k, favours] − β[k, against].")
    z: float
    p: float
    q: float
    recurrence: float | None = None


class SeparatedFrom(GraphRelationship):
    """Class a -> class b (a < b): when the pair's confusion stayed below threshold; ``order`` in the learning order."""

    type, source, target = "SEPARATED_FROM", Class, Class
    checkpoint: int | None = None
    threshold: int
    peak_confusion: int
    final_confusion: int
    confusion_by_checkpoint: list[int]
    order: int | None = None


class UncertainBetween(GraphRelationship):
    """β[k,a] − β[k,b] flips sign over steps; one edge to each class of the pair, same numbers."""

    type, source, target = "UNCERTAIN_BETWEEN", Prototype, Class
    identity = ("a", "b")
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


class Tests(GraphRelationship):
    """A deletion test -> the class whose claim it tests (for drivers; the favoured class for separators; class a
    for uncertain prototypes)."""

    type, source, target = "TESTS", DeletionTest, Class


class Deletes(GraphRelationship):
    """A deletion test -> each prototype it deleted."""

    type, source, target = "DELETES", DeletionTest, Prototype


class ConfusedAs(GraphRelationship):
    """``counts[t]`` probe samples of the source class predicted as the target class at checkpoint t
    (one relationship per ordered pair that is confused at some checkpoint)."""

    type, source, target = "CONFUSED_AS", Class, Class
    counts: list[int] = Field(description="Per checkpoint (index = checkpoint index).")


class PredictedAs(GraphRelationship):
    """The final checkpoint's prediction."""

    type, source, target = "PREDICTED_AS", Sample, Class
    confidence: float


class ExemplarOf(GraphRelationship):
    """One of the prototype's highest-intensity samples, with the region (box) it covers."""

    type, source, target = "EXEMPLAR_OF", Sample, Prototype
    rank: int
    intensity: float
    presence: int
    box: list[int]


# Relationship types without properties of their own.
HasCheckpoint = _plain_relationship("HasCheckpoint", "HAS_CHECKPOINT", Run, Checkpoint)
HasClass = _plain_relationship("HasClass", "HAS_CLASS", Run, Class)
HasPrototype = _plain_relationship("HasPrototype", "HAS_PROTOTYPE", Run, Prototype)
InClass = _plain_relationship("InClass", "IN_CLASS", Group, Class)
LabelledAs = _plain_relationship("LabelledAs", "LABELLED_AS", Sample, Class)
Removes = _plain_relationship("Removes", "REMOVES", CurationSet, Sample)
ForPair = _plain_relationship("ForPair", "FOR_PAIR", CurationSet, Class)
