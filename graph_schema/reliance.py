"""The final model's reliance relations in the graph (issue 21): ``(:Prototype)-[:RELIES_ON]->(:Class)`` and the pair
relations ``MARGIN_RELIES_ON`` and ``CONFUSES``.

A relationship of its own, beside the training-dynamics ``DRIVES`` and never merged into it: ``DRIVES`` says how
the prototype's saliency change moved the class's confidence during training (β, a statement about training
dynamics); ``RELIES_ON`` says what deleting the prototype's cells at the explained layer does to the *final*
model's confidence in the class on held-out samples (checks/reliance.py). One per tested (prototype, class).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from i2x_plugin.method.evidence import CONFUSER_MEASURE, MARGIN_MEASURE
from i2x_plugin.method.pvalues import floor_p

from .nodes import Class, Prototype, Sample
from .relationships import GraphRelationship

if TYPE_CHECKING:
    from i2x_plugin.method.structure import StructuredExplanation


class ReliesOn(GraphRelationship):
    """Deleting the prototype drops the final model's confidence in the class by ``effect`` on the class's
    held-out samples (``half``), against ``randomEffect`` for as many random cells; ``p`` / ``q`` (BH over the
    run) test both that and that the drop is the class's own (larger than on other classes' samples). ``rank``
    comes from the selection half. ``claimed``: q ≤ fdr_q and the effect beats the random cells' by the run's
    ``minEffect``. ``effects`` / ``ps``: per checkpoint (claimed edges); ``formedAt``: the first checkpoint from
    which it stays significant (Bonferroni over checkpoints) with at least half its final effect."""

    type, source, target = "RELIES_ON", Prototype, Class
    parallel: ClassVar[tuple[tuple[str, ...], ...]] = (("effects", "ps"),)
    relation: str = Field("reliance, final model", description="Which relation this is (not DRIVES' β).")
    measure: str
    effect: float
    random_effect: float
    contrast_effect: float | None = None
    p: float
    q: float
    rank: int
    half: str
    samples: int
    claimed: bool
    formed_at: int | None = None
    effects: list[float] | None = Field(None, description="Per checkpoint (index = checkpoint).")
    ps: list[float] | None = Field(None, description="Per checkpoint: the edge's p at that checkpoint.")


def add_reliance_rows(rows: Any, explanation: "StructuredExplanation") -> None:
    """One ``RELIES_ON`` per tested edge of ``explanation.reliance`` (nothing when the check was not run) into
    ``rows``, the :class:`~.rows.GraphRows` being built (not imported: rows.py imports this module)."""
    r = explanation.reliance
    if r is None:
        return
    claimed = {(x.prototype, x.cls) for x in r.significant}
    for x in r.edges:
        rows.add(ReliesOn(run_id=explanation.run_id, source_key=str(x.prototype), target_key=str(x.cls),
                          measure=r.measure, effect=x.effect, random_effect=x.random_effect,
                          contrast_effect=x.contrast_effect, p=x.p, q=x.q, rank=x.rank, half=x.half,
                          samples=x.samples, claimed=(x.prototype, x.cls) in claimed, formed_at=x.formed_at,
                          effects=x.effect_by_checkpoint or None, ps=x.p_by_checkpoint or None))


class DeletionMoves(GraphRelationship):
    """Deleting the prototype's cells of this sample moves the final model's prediction toward its runner-up:
    the predicted class's confidence drops by ``predictedDrop`` and the runner-up's by ``runnerUpDrop`` (negative:
    it gains). ``rank`` 0 moves it most. Written for the stored samples (reliance, final model)."""

    type, source, target = "DELETION_MOVES", Sample, Prototype
    rank: int
    predicted: int
    runner_up: int
    predicted_drop: float
    runner_up_drop: float


def add_sample_reliance_rows(rows: Any, explanation: "StructuredExplanation", key_of) -> None:
    """One ``DELETION_MOVES`` per kept prototype of each stored sample (``key_of``: probe position → Sample key)."""
    r = explanation.reliance
    if r is None:
        return
    stored = {row["key"] for row in rows.nodes.get("Sample", [])}
    for s in r.samples:
        key = key_of(s.sample)
        if key not in stored:
            continue
        for rank, (k, drop, other) in enumerate(zip(s.prototypes, s.predicted_drops, s.runner_up_drops)):
            rows.add(DeletionMoves(run_id=explanation.run_id, source_key=key, target_key=str(k), rank=rank,
                                   predicted=s.predicted, runner_up=s.runner_up, predicted_drop=drop,
                                   runner_up_drop=other))


class _PairReliance(GraphRelationship):
    """The fields both pair relations share (checks/pair_reliance.py): effect on the held-out samples (``half``),
    the random cells' effect, p / q (BH over the run's edges of the kind), the rank from the selection half,
    ``claimed`` (q ≤ fdr_q and the effect beats the random cells' by the run's pair minimum), and per checkpoint
    ``effects`` / ``ps`` with ``formedAt`` for the claimed edges (as on RELIES_ON)."""

    source, target = Prototype, Class
    identity = ("a", "b")
    parallel: ClassVar[tuple[tuple[str, ...], ...]] = (("effects", "ps"),)
    relation: str = Field("reliance, final model", description="Which relation this is (not β's training dynamics).")
    measure: str
    a: int
    b: int
    effect: float
    random_effect: float
    p: float
    q: float
    rank: int
    half: str
    samples: int
    claimed: bool
    formed_at: int | None = None
    effects: list[float] | None = Field(None, description="Per checkpoint (index = checkpoint).")
    ps: list[float] | None = Field(None, description="Per checkpoint: the edge's p at that checkpoint.")
    in_top_set: bool = Field(False, description="One of its pair group's top prototypes by selection-half effect.")
    top_set_percentile: float | None = Field(None, description="That top set deleted together on the held-out "
                                             "samples: share of matched random prototype sets it beats.")
    top_set_turned_back: int | None = Field(None, description="Confusers: held-out misclassified samples the top "
                                            "set's deletion turns back to their true class.")


class MarginReliesOn(_PairReliance):
    """Deleting the prototype drops the final model's confidence margin of the target class over ``against`` on
    the pair's held-out samples: the faithful counterpart of ``SEPARATES`` (its β), never merged with it.
    ``contrastEffect``: the same deletion's margin drop on the other classes' samples that hold the prototype."""

    type: ClassVar[str] = "MARGIN_RELIES_ON"
    against: int
    contrast_effect: float | None = None


class Confuses(_PairReliance):
    """On the held-out a↔b-misclassified samples of a most confused pair, deleting the prototype raises the true
    class's confidence more than the other classes' (it turns them back): the faithful counterpart of
    ``UNCERTAIN_BETWEEN``. One edge to each class of the pair, the same numbers."""

    type: ClassVar[str] = "CONFUSES"


def add_pair_reliance_rows(rows: Any, explanation: "StructuredExplanation") -> None:
    """One ``MARGIN_RELIES_ON`` per tested margin edge (to the class it favours) and two ``CONFUSES`` per tested
    confuser edge (to each class of the pair) of ``explanation.reliance`` into ``rows``."""
    r = explanation.reliance
    if r is None:
        return
    kept = {id(x) for kind in ("margin", "confuser") for x in r.significant_pairs(kind)}
    sets = {(s.kind, s.a, s.b, s.favours, k): s for s in r.pair_sets for k in s.test.prototypes}
    for x in r.pair_edges:
        top = sets.get((x.kind, x.a, x.b, x.favours, x.prototype))
        common = dict(run_id=explanation.run_id, source_key=str(x.prototype), a=x.a, b=x.b, effect=x.effect,
                      random_effect=x.random_effect, p=floor_p(x.p), q=floor_p(x.q), rank=x.rank, half=x.half,
                      samples=x.samples, claimed=id(x) in kept, formed_at=x.formed_at,
                      effects=x.effect_by_checkpoint or None, ps=x.p_by_checkpoint or None, in_top_set=top is not None,
                      top_set_percentile=None if top is None else top.test.percentile,
                      top_set_turned_back=None if top is None else top.turned_back)
        if x.kind == "margin":
            rows.add(MarginReliesOn(target_key=str(x.favours), measure=MARGIN_MEASURE, against=x.against,
                                    contrast_effect=x.contrast_effect, **common))
        else:
            for c in (x.a, x.b):
                rows.add(Confuses(target_key=str(c), measure=CONFUSER_MEASURE, **common))
