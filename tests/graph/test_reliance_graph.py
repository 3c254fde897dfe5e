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


def test_pair_relations_are_relationships_of_their_own_beside_separates_and_uncertain(relied, digits_run):
    """MARGIN_RELIES_ON (to the favoured class) and CONFUSES (to both classes of the pair) carry every tested pair
    edge; SEPARATES and UNCERTAIN_BETWEEN are written as before."""
    _, e = relied
    rows, before = explanation_rows(e), explanation_rows(digits_run.explanation)
    for kind in ("SEPARATES", "UNCERTAIN_BETWEEN"):
        assert rows.relationships[kind] == [dict(r, runId="graph-reliance") for r in before.relationships[kind]]
    margin = rows.relationships["MARGIN_RELIES_ON"]
    edges = [x for x in e.reliance.pair_edges if x.kind == "margin"]
    assert len(margin) == len(edges) and {r["relation"] for r in margin} == {"reliance, final model"}
    assert sum(r["claimed"] for r in margin) == len(e.reliance.significant_pairs("margin")) > 0
    assert all(r["to"] == str(r["a"] + r["b"] - r["against"]) for r in margin)
    confuses = rows.relationships.get("CONFUSES", [])
    assert len(confuses) == 2 * len([x for x in e.reliance.pair_edges if x.kind == "confuser"])


def test_q17_pair_reliance_lists_a_pair_top_sets_and_claimed_edges_in_either_order(relied):
    store, e = relied
    s = next(s for s in e.reliance.pair_sets if s.kind == "margin")
    rows = questions.ask(store, "pair_reliance", run_id=e.run_id, a=s.b, b=s.a).rows
    assert rows == questions.ask(store, "pair_reliance", run_id=e.run_id, a=s.a, b=s.b).rows
    mine = [r for r in rows if r.kind == "margin" and r.favours == s.favours]
    assert {r.prototype for r in mine if r.in_top_set} == set(s.test.prototypes)
    assert all(r.relation == "reliance, final model" and r.top_set_percentile == s.test.percentile
               for r in mine if r.in_top_set)
    claimed = questions.ask(store, "pair_reliance", run_id=e.run_id, a=s.a, b=s.b, claimed=True)
    assert claimed and all(r.claimed for r in claimed)


def test_learning_order_reports_both_orders_and_names_each_relation(relied):
    store, e = relied
    rows = questions.ask(store, "learning_order", run_id=e.run_id)
    assert rows and all(r.beta_relation.startswith("training dynamics") and
                        r.margin_relation.startswith("reliance, final model") for r in rows)
    for r in rows:
        formed = [x.formed_at for x in e.reliance.significant_pairs("margin")
                  if (x.a, x.b) == (r.a, r.b) and x.formed_at is not None]
        assert r.margin_relied_at == (min(formed) if formed else None)
        starts = [x.first_step + 1 for x in e.separators if (min(x.a, x.b), max(x.a, x.b)) == (r.a, r.b)]
        assert r.beta_separated_at == (min(starts) if starts else None)


def test_the_example_answers_name_the_confusers_and_both_orders(relied):
    """The most-confused answer names the pair's confusers with effect and q (reliance, final model) beside the
    uncertain prototypes (training dynamics, β); the learning-order answer gives both orders per pair."""
    from i2x_plugin.graph.answers import example_answers

    store, e = relied
    confused, order = example_answers(store, e)[:2]
    if confused.rows and confused.rows[0]["confusers"]:
        first = confused.rows[0]
        assert "Uncertain prototypes (training dynamics, β)" in confused.text
        assert "Confusers (reliance, final model" in confused.text and first["confuserNames"][0] in confused.text
    if any(r["betaSeparatedAt"] is not None and r["marginReliedAt"] is not None for r in order.rows):
        assert "Both orders, pair by pair (β separates: training dynamics; margin reliance" in order.text
