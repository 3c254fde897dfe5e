"""The graph schema without a database: rows from a real digits run, models, DDL, catalog files, style."""

from __future__ import annotations

import dataclasses
import re

import networkx as nx
import numpy as np
import pytest
from pydantic import ValidationError

from i2x_plugin.graph_schema import (
    GRASS_PATH,
    NODE_MODELS,
    RELATIONSHIP_MODELS,
    explanation_rows,
    load_catalog,
    schema_statements,
)
from i2x_plugin.graph_schema import models as m
from i2x_plugin.graph_schema.ddl import merge_node_cypher, merge_relationship_cypher

SCALARS = (bool, int, float, str)


def _is_property_value(v: object) -> bool:
    if isinstance(v, SCALARS):
        return True
    return isinstance(v, list) and len({type(x) for x in v}) <= 1 and all(isinstance(x, SCALARS) for x in v)


@pytest.fixture(scope="module")
def rows(digits_run):
    return explanation_rows(digits_run.explanation)


def test_rows_hold_only_neo4j_property_types(rows) -> None:
    for label, items in rows.nodes.items():
        for row in items:
            assert {"runId", "key", "name"} <= set(row), label
            bad = {k: v for k, v in row.items() if not _is_property_value(v)}
            assert not bad, (label, bad)
    for rel_type, items in rows.relationships.items():
        for row in items:
            bad = {k: v for k, v in row.items() if not _is_property_value(v)}
            assert not bad, (rel_type, bad)


def test_rows_mirror_the_explanation(digits_run, rows) -> None:
    e = digits_run.explanation
    T, K, C = len(e.checkpoints), e.k, e.num_classes
    count = {k: len(v) for k, v in rows.relationships.items()}
    assert [len(rows.nodes[x]) for x in ("Run", "Checkpoint", "Class", "Prototype", "Group")] == [1, T, C, K,
                                                                                                 len(e.groups)]
    assert count["DRIVES"] == 2 * K * C * (T - 1)  # step fit + class fit, every (step, prototype, class)
    assert count["NEXT"] == T - 1
    assert count["KEY_DRIVER_OF"] == len(e.drivers)
    assert count["SEPARATES"] == len(e.separators)
    assert count["SEPARATED_FROM"] == len(e.separations)
    assert count["UNCERTAIN_BETWEEN"] == 2 * len(e.uncertain)
    assert count.get("SHARED_BY", 0) + count.get("SPECIALISED_TO", 0) == len(e.shared)
    assert count["EXEMPLAR_OF"] == len(e.exemplars)
    off_diagonal = e.confusion * (1 - np.eye(C, dtype=int))[None]
    assert count["CONFUSED_AS"] == int((off_diagonal > 0).sum())
    assert count["DRIVES_GROUP"] == K * len(e.beta_group_keys)
    # Samples: every exemplar and every final misclassification, not all N; CONTAINS = their presence.
    stored = {r["index"] for r in rows.nodes["Sample"]}
    assert {x.sample for x in e.exemplars} <= stored
    assert set(np.flatnonzero(e.predictions[-1] != e.labels).tolist()) <= stored
    assert len(stored) < len(e.labels)
    assert count["CONTAINS"] == int((e.presence[sorted(stored)] > 0).sum())
    drives = {(r["scope"], r["step"], r["from"], r["to"]): r["beta"] for r in rows.relationships["DRIVES"]}
    assert drives[("step", 2, "3", "7")] == float(e.beta_step[2, 3, 7])
    assert drives[("class", 1, "4", "5")] == float(e.beta_class[1, 5, 4, 5])


def test_to_networkx_is_the_rows_graph(digits_run, rows) -> None:
    graph = digits_run.explanation.to_networkx()
    assert isinstance(graph, nx.MultiDiGraph)
    assert graph.number_of_nodes() == rows.node_count
    assert graph.number_of_edges() == rows.relationship_count
    assert graph.nodes["Class:3"]["name"] == digits_run.explanation.class_names[3]
    assert graph.has_edge("Prototype:0", "Class:0", key="DRIVES{scope=step,step=0}")


def test_uncertain_sample_cap(digits_run) -> None:
    e = digits_run.explanation
    few = explanation_rows(e, uncertain_samples_per_pair=1)
    every = explanation_rows(e, uncertain_samples_per_pair=None)
    uncertain = lambda r: sum("uncertain" in s["reasons"] for s in r.nodes["Sample"])  # noqa: E731
    assert uncertain(few) <= len({(u.a, u.b) for u in e.uncertain}) < uncertain(every)


def test_duplicate_sample_ids_are_refused(digits_run) -> None:
    e = digits_run.explanation
    bad = dataclasses.replace(e, sample_ids=np.zeros_like(e.sample_ids))
    with pytest.raises(ValueError, match="sample_ids are not unique"):
        explanation_rows(bad)


def test_models_validate_and_refuse_non_property_types() -> None:
    node = m.Class(run_id="r", key="1", name="one", index=1, probe_samples=3)
    assert node.props() == {"runId": "r", "key": "1", "name": "one", "index": 1, "probeSamples": 3}
    with pytest.raises(ValidationError):
        m.Class.model_validate({"runId": "r", "key": "1", "name": "x", "index": "one", "probeSamples": 1})
    with pytest.raises(ValidationError):
        m.Class.model_validate({"runId": "r", "key": "1", "name": "x", "index": 1, "probeSamples": 1, "colour": 2})
    with pytest.raises(TypeError, match="not a Neo4j property type"):
        class Bad(m.GraphNode):  # noqa: F841
            label = "Bad"
            nested: list[list[int]]


def test_schema_covers_every_label() -> None:
    statements = schema_statements()
    assert all("IF NOT EXISTS" in s for s in statements)
    for label in NODE_MODELS:
        assert any(f"FOR (n:{label}) REQUIRE (n.runId, n.key) IS UNIQUE" in s for s in statements), label
    assert "MERGE (n:Sample {runId: row.runId, key: row.key})" in merge_node_cypher("Sample")
    assert "MERGE (a)-[r:DRIVES {scope: row.scope, step: row.step}]->(b)" in merge_relationship_cypher("DRIVES")
    with pytest.raises(KeyError, match="Unknown relationship type"):
        merge_relationship_cypher("DRIVEZ")


def test_catalog_files_declare_what_they_use() -> None:
    catalog = load_catalog()
    assert sorted(q.number for q in catalog.values()) == list(range(1, 15))
    for q in catalog.values():
        used = set(re.findall(r"\$(\w+)", q.cypher)) - {"runId"}
        declared = {p.name for p in q.params}
        assert used == declared, (q.name, used, declared)
        assert q.doc.endswith("?"), q.name
        assert q.row_model.model_fields  # typed rows build


def test_grass_styles_every_label_and_beta_relationships() -> None:
    text = GRASS_PATH.read_text()
    for label in NODE_MODELS:
        assert re.search(rf"node\.{label} \{{[^}}]*color: #[0-9A-F]{{6}};[^}}]*caption: '\{{name\}}'", text), label
    for rel_type in ("DRIVES", "KEY_DRIVER_OF", "DRIVES_GROUP", "UNCERTAIN_BETWEEN", "SEPARATES"):
        assert re.search(rf"relationship\.{rel_type} \{{[^}}]*shaft-width: [3-9]px", text), rel_type
    assert set(RELATIONSHIP_MODELS) >= {"CONTAINS", "REMOVES", "FOR_PAIR", "FINE_TUNED_FROM"}
