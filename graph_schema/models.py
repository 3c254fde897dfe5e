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

from .nodes import Checkpoint, Class, CurationSet, DeletionTest, GraphNode, Group, Prototype, Run, Sample
from .relationships import (
    ConfusedAs, Deletes, Drives, ExemplarOf, FineTunedFrom, ForPair, GraphRelationship, HasCheckpoint, HasClass,
    HasPrototype, InClass, KeyDriverOf, LabelledAs, Next, PredictedAs, Removes, SeparatedFrom, Separates, SharedBy,
    SpecialisedTo, Tests, UncertainBetween,
)
from .reliance import Confuses, DeletionMoves, MarginReliesOn, ReliesOn

NODE_MODELS: dict[str, type[GraphNode]] = {
    m.label: m for m in (Run, Checkpoint, Class, Prototype, Group, Sample, CurationSet, DeletionTest)}
RELATIONSHIP_MODELS: dict[str, type[GraphRelationship]] = {
    m.type: m for m in (HasCheckpoint, HasClass, HasPrototype, Next, FineTunedFrom, Drives, KeyDriverOf,
                        InClass, SharedBy, SpecialisedTo, Separates, SeparatedFrom, UncertainBetween,
                        ConfusedAs, LabelledAs, PredictedAs, ExemplarOf, Removes, ForPair, Tests, Deletes, ReliesOn,
                        DeletionMoves, MarginReliesOn, Confuses)}


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
