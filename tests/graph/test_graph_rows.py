"""The graph schema without a database: rows from a real digits run, models, DDL, catalog files, style."""

from __future__ import annotations

import dataclasses
import re

import networkx as nx
import numpy as np
import pytest
from pydantic import ValidationError

from i2x_plugin import I2XConfig
from i2x_plugin.method.claim_types import UncertainPrototype
from i2x_plugin.graph_schema import GRASS_PATH, NODE_MODELS, RELATIONSHIP_MODELS, explanation_rows, schema_statements
from i2x_plugin.graph_schema import models as m
from i2x_plugin.graph_schema.catalog import load_catalog
from i2x_plugin.graph_schema.ddl import merge_node_cypher, merge_relationship_cypher
from i2x_plugin.method.structure import CheckpointSummary, Exemplar, PairSeparation, StructuredExplanation

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
    assert count["DRIVES"] == 2 * K * C  # step fit + class fit: one per (prototype, class), β over the steps
    assert count["NEXT"] == T - 1
    assert count["KEY_DRIVER_OF"] == len(e.drivers)
    assert len(rows.nodes["DeletionTest"]) == count["TESTS"] == len(e.faithfulness_results) > 0
    assert count["DELETES"] == sum(len(t.prototypes) for t in e.faithfulness_results)
    assert count["SEPARATES"] == len(e.separators)
    assert count["SEPARATED_FROM"] == len(e.separations)
    assert count["UNCERTAIN_BETWEEN"] == 2 * len(e.uncertain)
    assert count.get("SHARED_BY", 0) + count.get("SPECIALISED_TO", 0) == len(e.shared)
    assert count["EXEMPLAR_OF"] == len(e.exemplars)
    off_diagonal = e.confusion * (1 - np.eye(C, dtype=int))[None]
    assert count["CONFUSED_AS"] == int(off_diagonal.any(0).sum())  # ordered pairs confused at some checkpoint
    assert count["IN_CLASS"] == len(e.groups)
    assert not {"DRIVES_GROUP", "CONTAINS"} & set(count)
    # Samples: every exemplar and every final misclassification, not all N, with what they contain.
    stored = {r["index"] for r in rows.nodes["Sample"]}
    assert {x.sample for x in e.exemplars} <= stored
    assert set(np.flatnonzero(e.predictions[-1] != e.labels).tolist()) <= stored
    assert len(stored) < len(e.labels)
    drives = {(r["scope"], r["from"], r["to"]): r["betas"] for r in rows.relationships["DRIVES"]}
    assert drives[("step", "3", "7")] == e.beta_step[:, 3, 7].astype(float).tolist()
    assert drives[("class", "4", "5")] == e.beta_class[:, 5, 4].astype(float).tolist()
    confused = {(r["from"], r["to"]): r["counts"] for r in rows.relationships["CONFUSED_AS"]}
    i, j = np.argwhere(off_diagonal[-1] > 0)[0]
    assert confused[(str(i), str(j))] == e.confusion[:, i, j].tolist()
    groups = {r["key"]: r for r in rows.nodes["Group"]}
    (step, cls, group) = e.beta_group_keys[0]
    fitted = groups[f"{step}:{cls}:{group}"]
    assert fitted["betas"] == e.group_beta(step, cls, group).astype(float).tolist()
    assert fitted["topPrototypes"] == next(g.top_prototypes for g in e.groups if (g.step, g.cls, g.group) ==
                                           (step, cls, group))


def test_a_sample_lists_what_it_contains(digits_run, rows) -> None:
    """Per stored sample: its prototypes with positions and intensities at the same index, and the
    intensities at every checkpoint prototype by prototype (j * T + t)."""
    e = digits_run.explanation
    T = len(e.checkpoints)
    for row in rows.nodes["Sample"][:20]:
        i = row["index"]
        contained = np.flatnonzero(e.presence[i] > 0)
        assert row["prototypes"] == contained.tolist()
        assert row["prototypePositions"] == e.presence[i, contained].tolist()
        assert row["prototypeIntensities"] == e.intensities[-1, i, contained].astype(float).tolist()
        by_checkpoint = row["prototypeIntensitiesByCheckpoint"]
        for j, k in enumerate(contained):
            assert by_checkpoint[j * T:(j + 1) * T] == e.intensities[:, i, k].astype(float).tolist()


def _tiny_explanation() -> StructuredExplanation:
    """3 checkpoints, 4 samples (ids 100–103) on a 1×2 map, 2 prototypes, classes cat and dog; every value chosen
    here so that the rows below can be written by hand."""
    t, n, k, c = 3, 4, 2, 2
    intensities = np.zeros((t, n, k))
    intensities[:, 1] = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]  # sample 101 holds both prototypes
    intensities[2, 2, 1] = 0.9
    predictions = np.array([[1, 1, 0, 0], [0, 1, 1, 1], [0, 1, 1, 0]])  # final: 101 and 103 misclassified
    confidences = np.full((t, n, c), 0.5)
    confidences[2, 1] = [0.4, 0.6]
    confusion = np.array([[[0, 2], [2, 0]], [[1, 1], [0, 2]], [[1, 1], [1, 1]]])
    beta_step = np.arange(8, dtype=float).reshape(2, k, c) / 10  # β_step[t, k, c] = (4t + 2k + c) / 10
    beta_class = -np.arange(8, dtype=float).reshape(2, c, k) / 10
    arrays = dict(
        sample_ids=np.array([100, 101, 102, 103]), labels=np.array([0, 0, 1, 1]),
        assignments=np.array([[[0, 0]], [[0, 1]], [[1, 1]], [[0, 1]]]),
        presence=np.array([[2, 0], [1, 1], [0, 2], [1, 1]]), intensities=intensities, confidences=confidences,
        predictions=predictions, confusion=confusion, group_labels=np.zeros((t - 1, n), int),
        beta_step=beta_step, z_step=beta_step * 10, beta_overall=np.array([[0.5, -0.5], [0.25, 0.75]]),
        q_overall=np.full((k, c), 0.5), beta_class=beta_class, z_class=beta_class * 10,
        beta_driver=np.array([[1.0, 2.0], [3.0, 4.0]]), q_driver=np.array([[0.01, 0.5], [np.nan, np.nan]]),  # (C, K)
        beta_pair=np.zeros((t - 1, 1, k, 2), np.float32), z_pair=np.zeros((t - 1, 1, k, 2), np.float32),
        beta_group_keys=np.zeros((0, 3), int), beta_group=np.zeros((0, k)), q_group=np.zeros((0, k)))
    return StructuredExplanation(
        run_id="tiny", config=I2XConfig(k=2), model_name="hand", layer="f", method="none", dataset="tiny",
        class_names=["cat", "dog"], map_size=[1, 2],
        checkpoints=[CheckpointSummary(i, f"c{i}", f"c{i}.pt", None, None, None, 0.5) for i in range(t)],
        drivers=[], groups=[], shared=[], separators=[],
        separations=[PairSeparation(0, 1, None, 1, 4, 2, [4, 1, 2])], learning_order=[[0, 1]],
        uncertain=[UncertainPrototype(0, 1, 0, 1, [1], [0, 1], [1, -1], 0.3, 0.3, 0.01, 0.02)],
        exemplars=[Exemplar(1, 2, 0.9, 2, [0, 0, 0, 1])], claim_counts=None, skipped=[],
        created_at="2026-01-01T00:00:00+00:00", faithfulness_results=[], **arrays)


def test_rows_of_a_tiny_explanation_by_hand() -> None:
    rows = explanation_rows(_tiny_explanation())
    samples = {r["key"]: r for r in rows.nodes["Sample"]}
    # Stored: the exemplar (102), the misclassified (101, 103), and the samples of the uncertain pair holding P0,
    # most P0 cells first (100, then 101 and 103).
    assert {key: r["reasons"] for key, r in samples.items()} == {
        "probe:100": ["uncertain"], "probe:101": ["misclassified", "uncertain"], "probe:102": ["exemplar"],
        "probe:103": ["misclassified", "uncertain"]}
    s = samples["probe:101"]
    assert (s["name"], s["index"], s["label"], s["prediction"], s["correct"], s["confidence"]) == (
        "#101 cat→dog", 1, 0, 1, False, 0.6)
    assert (s["prototypes"], s["prototypePositions"], s["prototypeIntensities"]) == ([0, 1], [1, 1], [0.5, 0.6])
    assert s["prototypeIntensitiesByCheckpoint"] == [0.1, 0.3, 0.5, 0.2, 0.4, 0.6]  # P0 at t = 0, 1, 2, then P1
    few = explanation_rows(_tiny_explanation(), uncertain_samples_per_pair=1)
    assert [r["key"] for r in few.nodes["Sample"] if "uncertain" in r["reasons"]] == ["probe:100"]
    protos = {r["key"]: r for r in rows.nodes["Prototype"]}
    assert [(p["support"], p["sampleSupport"], p["supportByClass"]) for p in protos.values()] == [
        (4, 3, [2, 1]), (4, 3, [1, 2])]
    assert (protos["1"]["exemplarSamples"], protos["1"]["exemplarBoxes"]) == (["probe:102"], [0, 0, 0, 1])
    drives = {(r["scope"], r["from"], r["to"]): r for r in rows.relationships["DRIVES"]}
    assert (drives["step", "1", "0"]["betas"], drives["step", "1", "0"]["beta"]) == ([0.2, 0.6], 0.25)
    assert (drives["class", "1", "0"]["betas"], drives["class", "1", "0"]["beta"]) == ([-0.1, -0.5], 2.0)
    assert drives["class", "0", "0"]["q"] == 0.01 and "q" not in drives["class", "0", "1"]  # NaN (not tested): no property
    assert {(r["from"], r["to"]): r["counts"] for r in rows.relationships["CONFUSED_AS"]} == {
        ("0", "1"): [2, 1, 1], ("1", "0"): [2, 0, 1]}
    [separated] = rows.relationships["SEPARATED_FROM"]
    assert (separated["from"], separated["to"], separated["order"]) == ("0", "1", 0)
    assert "checkpoint" not in separated  # never separated
    assert [(r["from"], r["to"], r["rank"]) for r in rows.relationships["UNCERTAIN_BETWEEN"]] == [
        ("0", "0", 0), ("0", "1", 0)]
    assert [(r["from"], r["to"], r["rank"]) for r in rows.relationships["EXEMPLAR_OF"]] == [("probe:102", "1", 0)]


def test_p_and_q_below_the_floor_are_stored_as_the_floor() -> None:
    """Far-tail values carry no precision (i2x_plugin.method.pvalues): the graph holds 1e-6, read "< 1e-6"."""
    e = _tiny_explanation()
    q_driver = e.q_driver.copy()
    q_driver[0, 0] = 1e-15
    uncertain = [dataclasses.replace(u, p=1e-20, q=9e-15) for u in e.uncertain]
    rows = explanation_rows(dataclasses.replace(e, q_driver=q_driver, uncertain=uncertain))
    drives = {(r["scope"], r["from"], r["to"]): r for r in rows.relationships["DRIVES"]}
    assert drives["class", "0", "0"]["q"] == 1e-6
    assert {(r["p"], r["q"]) for r in rows.relationships["UNCERTAIN_BETWEEN"]} == {(1e-6, 1e-6)}


def test_lists_that_share_an_index_must_match() -> None:
    with pytest.raises(ValidationError, match="prototypes, prototypePositions, prototypeIntensities share one index "
                                              "and must have equal lengths; got prototypes=2, prototypePositions=1"):
        m.Sample(run_id="r", key="probe:1", name="#1", index=1, sample_id=1, split="probe", label=0,
                 prototypes=[1, 2], prototype_positions=[3], prototype_intensities=[0.5, 0.1])
    with pytest.raises(ValidationError, match="not a multiple of its 2 prototypes"):
        m.Sample(run_id="r", key="probe:1", name="#1", index=1, sample_id=1, split="probe", label=0,
                 prototypes=[1, 2], prototype_positions=[3, 1], prototype_intensities=[0.5, 0.1],
                 prototype_intensities_by_checkpoint=[0.1, 0.2, 0.3])


def test_to_networkx_is_the_rows_graph(digits_run, rows) -> None:
    graph = explanation_rows(digits_run.explanation).to_networkx()
    assert isinstance(graph, nx.MultiDiGraph)
    assert graph.number_of_nodes() == rows.node_count
    assert graph.number_of_edges() == rows.relationship_count
    assert graph.nodes["Class:3"]["name"] == digits_run.explanation.class_names[3]
    assert graph.has_edge("Prototype:0", "Class:0", key="DRIVES{scope=step}")
    assert graph.has_edge("Prototype:0", "Class:0", key="DRIVES{scope=class}")


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
    assert "MERGE (a)-[r:DRIVES {scope: row.scope}]->(b)" in merge_relationship_cypher("DRIVES")
    with pytest.raises(KeyError, match="Unknown relationship type"):
        merge_relationship_cypher("DRIVEZ")


def test_catalog_files_declare_what_they_use() -> None:
    catalog = load_catalog()
    assert sorted(q.number for q in catalog.values()) == list(range(1, 18))
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
    for rel_type in ("DRIVES", "KEY_DRIVER_OF", "UNCERTAIN_BETWEEN", "SEPARATES"):
        assert re.search(rf"relationship\.{rel_type} \{{[^}}]*shaft-width: [3-9]px", text), rel_type
    assert set(RELATIONSHIP_MODELS) >= {"CONFUSED_AS", "REMOVES", "FOR_PAIR", "FINE_TUNED_FROM"}
