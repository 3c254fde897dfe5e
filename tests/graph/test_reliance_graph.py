"""The reliance relation in the graph: RELIES_ON beside DRIVES (never merged), written by the batched writer,
and question 16 (class_reliance), on the digits run with its reliance check run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from i2x_plugin.graph import questions
from i2x_plugin.checks import run_reliance
from i2x_plugin.graph.ingest import write_explanation
from i2x_plugin.graph_schema import explanation_rows

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def relied(digits_run, graph_store):
    explanation = run_reliance(dataclasses.replace(digits_run.explanation, run_id="graph-reliance"),
                               digits_run.load_final(), digits_run.probe)
    write_explanation(graph_store, explanation)
    return graph_store, explanation


def test_relies_on_is_a_relationship_of_its_own_beside_drives(relied, digits_run):
    _, e = relied
    rows, before = explanation_rows(e), explanation_rows(digits_run.explanation)
    assert rows.relationships["DRIVES"] == [dict(r, runId="graph-reliance") for r in before.relationships["DRIVES"]]
    assert "RELIES_ON" not in before.relationships
    relies = rows.relationships["RELIES_ON"]
    assert len(relies) == len(e.reliance.edges)
    assert sum(r["claimed"] for r in relies) == len(e.reliance.significant) > 0
    assert {r["relation"] for r in relies} == {"reliance, final model"}
    dated = [r for r in relies if r["claimed"]]
    assert all(len(r["effects"]) == len(r["ps"]) == len(e.checkpoints) for r in dated)


def test_q16_class_reliance_lists_a_class_claimed_edges_with_their_formation(relied):
    store, e = relied
    for c in range(e.num_classes):
        expected = sorted((x for x in e.reliance.significant if x.cls == c), key=lambda x: (x.rank, x.prototype))
        rows = questions.ask(store, "class_reliance", run_id=e.run_id, cls=c, top=50)
        assert [(r.prototype, r.rank, r.formed_at) for r in rows] == [(x.prototype, x.rank, x.formed_at)
                                                                      for x in expected]
        assert all(r.claimed and r.half == "held-out" and r.relation == "reliance, final model" for r in rows)
        assert [r.effect for r in rows] == pytest.approx([x.effect for x in expected])
        every = questions.ask(store, "class_reliance", run_id=e.run_id, cls=c, claimed=False, top=50)
        assert len(every) == len([x for x in e.reliance.edges if x.cls == c])


def test_q1_sample_evidence_names_the_prototypes_whose_deletion_moves_the_prediction(relied):
    """For stored samples: the deletion columns are the sample's reliance record, in order, with each
    prototype's RELIES_ON q and formation step toward the predicted class; the relation is named."""
    store, e = relied
    stored = sorted(r["index"] for r in explanation_rows(e).nodes["Sample"])
    by_position = {s.sample: s for s in e.reliance.samples}
    edges = {(x.prototype, x.cls): x for x in e.reliance.edges}
    assert len(e.reliance.samples) == len(e.labels)
    for i in stored[:8]:
        record = by_position[i]
        (row,) = questions.ask(store, "sample_evidence", run_id=e.run_id, sample=int(e.sample_ids[i]))
        assert row.deletion_relation == "reliance, final model" and row.runner_up == record.runner_up
        assert row.deletion_prototypes == record.prototypes and len(record.prototypes) > 0
        assert row.deletion_predicted_drops == pytest.approx(record.predicted_drops)
        assert row.deletion_qs == pytest.approx([edges[k, record.predicted].q for k in record.prototypes])
        assert row.deletion_formed_at == [edges[k, record.predicted].formed_at for k in record.prototypes]
        moves = np.array(record.predicted_drops) - np.array(record.runner_up_drops)
        assert np.all(np.diff(moves) <= 1e-9)


def test_the_example_sample_answer_names_its_deletions_and_the_relation(relied):
    from i2x_plugin.graph.answers import example_answers

    store, e = relied
    answer = example_answers(store, e)[-1]
    assert answer.rows and answer.rows[0]["deletionPrototypes"]
    first = answer.rows[0]["deletionNames"][0]
    assert "Deleting its cells (reliance, final model), these change the prediction most: " + first in answer.text
