"""The final model's reliance relation in the graph (issue 21): ``(:Prototype)-[:RELIES_ON]->(:Class)``.

A relationship of its own, beside the training-dynamics ``DRIVES`` and never merged into it: ``DRIVES`` says how
the prototype's saliency change moved the class's confidence during training (β, a statement about training
dynamics); ``RELIES_ON`` says what deleting the prototype's cells at the explained layer does to the *final*
model's confidence in the class on held-out samples (checks/reliance.py). One per tested (prototype, class).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

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
