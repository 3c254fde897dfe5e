"""The 15 catalog questions on a graph written from a real digits run: the graph's answer must agree with
the answer derived from the StructuredExplanation object. Then bad input: names, parameters, missing things."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from i2x_plugin.graph_schema import explanation_rows
from i2x_plugin.graph.ingest import write_nodes, write_relationships
from i2x_plugin import questions
from i2x_plugin.graph.questions import QuestionParameterError, UnknownQuestionError, list_questions
from i2x_plugin.method.structure import StructuredExplanation

APPROX = dict(rel=1e-9, abs=1e-12)


@pytest.fixture(scope="module")
def g(digits_graph):
    return digits_graph


def ask(g, name: str, **params):  # type: ignore[no-untyped-def]
    return questions.ask(g.store, name, run_id=g.explanation.run_id, **params)


def sid(e: StructuredExplanation, position: int) -> int:
    return int(e.sample_ids[position])


def stored_positions(e: StructuredExplanation) -> list[int]:
    return sorted(r["index"] for r in explanation_rows(e).nodes["Sample"])


def misclassified(e: StructuredExplanation) -> list[int]:
    return np.flatnonzero(e.predictions[-1] != e.labels).tolist()


def top_positive(column: np.ndarray, m: int) -> list[int]:
    order = np.argsort(-column, kind="stable")[:m]
    return [int(k) for k in order if column[k] > 0]


def test_q1_sample_evidence(g) -> None:
    e = g.explanation
    for i in stored_positions(e)[:6] + misclassified(e)[:6]:
        present = np.flatnonzero(e.presence[i] > 0)
        k = int(present[np.argmax(e.intensities[-1, i, present])])  # first (smallest k) of the maxima
        pred = int(e.predictions[-1, i])
        (row,) = ask(g, "sample_evidence", sample=sid(e, i))
        assert (row.sample, row.label, row.predicted, row.prototype) == (sid(e, i), int(e.labels[i]), pred, k)
        assert row.intensity == pytest.approx(float(e.intensities[-1, i, k]), **APPROX)
        assert row.positions == int(e.presence[i, k])
        assert row.beta_by_step == pytest.approx(e.beta_step[:, k, pred].astype(float).tolist(), **APPROX)
        assert row.beta == pytest.approx(float(e.beta_overall[k, pred]), **APPROX)
        assert row.q == pytest.approx(float(e.q_overall[k, pred]), **APPROX)


def test_q2_class_drivers(g) -> None:
    e = g.explanation
    for c in range(e.num_classes):
        drivers = sorted((d for d in e.drivers if d.cls == c), key=lambda d: d.rank)[:10]
        rows = ask(g, "class_drivers", cls=c, top=10)
        assert [(r.prototype, r.first_step) for r in rows] == [(d.prototype, d.first_step) for d in drivers]
        assert [r.beta for r in rows] == pytest.approx([d.beta for d in drivers], **APPROX)
        assert [r.q for r in rows] == pytest.approx([d.q for d in drivers], **APPROX)
        assert [r.saliency_share for r in rows] == pytest.approx([d.saliency_share for d in drivers], **APPROX)
        for t in range(len(e.checkpoints) - 1):
            expected = top_positive(e.beta_class[t, c, :], 5)
            rows = ask(g, "class_drivers", cls=c, step=t)
            assert [r.prototype for r in rows] == expected
            assert [r.rank for r in rows] == list(range(len(expected)))


def test_q3_shared_prototypes(g) -> None:
    e = g.explanation
    for c in range(e.num_classes):
        expected = {(s.prototype, s.kind, round(s.fraction, 12), tuple(map(tuple, s.groups)))
                    for s in e.shared if s.cls == c}
        got = {(r.prototype, r.kind, round(r.fraction, 12), tuple(map(tuple, r.groups)))
               for r in ask(g, "shared_prototypes", cls=c)}
        assert got == expected


def test_q4_common_prototypes(g) -> None:
    e = g.explanation
    drivers = defaultdict(dict)
    for d in e.drivers:
        drivers[d.cls][d.prototype] = d
    answered = 0
    for a, b in e.pairs:
        common = set(drivers[a]) & set(drivers[b])
        rows = ask(g, "common_prototypes", a=a, b=b)
        assert {r.prototype for r in rows} == common
        for r in rows:
            assert (r.beta_a, r.beta_b) == pytest.approx((drivers[a][r.prototype].beta, drivers[b][r.prototype].beta))
        answered += bool(rows)
    assert answered > 0


def test_q5_pair_separators(g) -> None:
    e = g.explanation
    for a, b in e.learning_order[:4] + [[0, 1]]:
        expected = {(s.prototype, s.favours, s.first_step, tuple(s.steps)) for s in e.separators
                    if (s.a, s.b) == (a, b)}
        rows = ask(g, "pair_separators", a=b, b=a)  # either order
        assert {(r.prototype, r.favours, r.first_step, tuple(r.steps)) for r in rows} == expected
        sep = next(p for p in e.separations if (p.a, p.b) == (a, b))
        assert all(r.pair_separated_at == sep.separation_checkpoint and r.from_checkpoint == r.first_step + 1
                   for r in rows)
        margins = {(s.prototype, s.favours): s.margin for s in e.separators if (s.a, s.b) == (a, b)}
        assert all(r.margin == pytest.approx(margins[(r.prototype, r.favours)], **APPROX) for r in rows)


def test_q6_learning_order(g) -> None:
    e = g.explanation
    rows = ask(g, "learning_order")
    assert [[r.a, r.b] for r in rows] == e.learning_order
    assert [r.rank for r in rows] == list(range(1, len(rows) + 1))
    by_pair = {(p.a, p.b): p for p in e.separations}
    assert [r.separated_at for r in rows] == [by_pair[(r.a, r.b)].separation_checkpoint for r in rows]
    assert [r.confusion_by_checkpoint for r in rows] == [by_pair[(r.a, r.b)].confusion_by_checkpoint for r in rows]


def test_q7_prototype_evolution(g) -> None:
    e = g.explanation
    steps = list(range(len(e.checkpoints) - 1))
    for k in (0, e.k - 1):
        rows = ask(g, "prototype_evolution", k=k)
        assert [r.cls for r in rows] == list(range(e.num_classes))
        for r in rows:
            assert r.steps == steps
            assert r.betas == pytest.approx(e.beta_step[:, k, r.cls].astype(float).tolist(), **APPROX)
        own = ask(g, "prototype_evolution", k=k, scope="class")
        for r in own:
            assert r.betas == pytest.approx(e.beta_class[:, r.cls, k].astype(float).tolist(), **APPROX)
            assert r.beta == pytest.approx(float(e.beta_driver[r.cls, k]), **APPROX)


def test_q8_uncertain_prototypes(g) -> None:
    e = g.explanation
    pairs = sorted({(u.a, u.b) for u in e.uncertain})
    assert pairs, "the digits run should have uncertain prototypes"
    for a, b in pairs:
        expected = [(u.prototype, u.flips, u.flip_steps) for u in e.uncertain if (u.a, u.b) == (a, b)]
        rows = ask(g, "uncertain_prototypes", a=a, b=b)
        assert [(r.prototype, r.flips, r.flip_steps) for r in rows] == expected  # both sorted by score
    assert len(ask(g, "uncertain_prototypes", a=pairs[0][1], b=pairs[0][0])) > 0


def test_q9_most_confused(g) -> None:
    e = g.explanation
    final = e.confusion[-1]
    ranked = sorted(((int(final[a, b] + final[b, a]), (a, b)) for a, b in e.pairs if final[a, b] + final[b, a] > 0),
                    key=lambda s: -s[0])
    with_uncertain = {(u.a, u.b) for u in e.uncertain}
    rank, (count, (a, b)) = next((i, s) for i, s in enumerate(ranked, 1) if s[1] in with_uncertain)
    rows = ask(g, "most_confused")
    assert {(r.a, r.b, r.confusions, r.confusion_rank) for r in rows} == {(a, b, count, rank)}
    wrong = (e.predictions[-1] != e.labels) & np.isin(e.labels, (a, b))
    for r, u in zip(rows, [u for u in e.uncertain if (u.a, u.b) == (a, b)]):
        assert r.prototype == u.prototype
        expected = sorted(sid(e, i) for i in np.flatnonzero(wrong & (e.presence[:, u.prototype] > 0)))
        assert r.samples == expected


def test_q10_prototype_samples(g) -> None:
    e = g.explanation
    stored = stored_positions(e)
    for k in (0, 5):
        rows = ask(g, "prototype_samples", k=k)
        assert [r.cls for r in rows] == list(range(e.num_classes))
        for r in rows:
            assert r.probe_samples == int(((e.presence[:, k] > 0) & (e.labels == r.cls)).sum())
            expected = sorted(sid(e, i) for i in stored if e.labels[i] == r.cls and e.presence[i, k] > 0)
            assert sorted(int(s.split(":")[1]) for s in r.stored_samples) == expected
            assert r.removed_for_curation == 0


def test_q10_counts_a_curation_set(g) -> None:
    """Training samples removed by a CurationSet on prototype k (as ``i2x improve`` writes it) are counted."""
    store, run = g.store, g.explanation.run_id
    write_nodes(store, "CurationSet", [{"runId": run, "key": "test-curation", "name": "test", "prototypes": [3],
                                       "threshold": 1, "pair": [0, 1], "removedByClass": '{"1": 2}'}])
    write_nodes(store, "Sample", [{"runId": run, "key": f"train:{i}", "name": f"train #{i}", "index": i,
                                  "sampleId": i, "split": "train", "label": 1} for i in (900001, 900002)])
    write_relationships(store, "REMOVES", [{"runId": run, "from": "test-curation", "to": f"train:{i}"}
                                          for i in (900001, 900002)])
    try:
        rows = {r.cls: r.removed_for_curation for r in ask(g, "prototype_samples", k=3)}
        assert rows[1] == 2 and sum(rows.values()) == 2
        assert sum(r.removed_for_curation for r in ask(g, "prototype_samples", k=4)) == 0
    finally:
        store.run_write("MATCH (n {runId: $runId}) WHERE n.key IN $keys DETACH DELETE n", runId=run,
                        keys=["test-curation", "train:900001", "train:900002"])


def test_q11_learning_groups(g) -> None:
    e = g.explanation
    keys = sorted({(s.cls, s.step) for s in e.groups})
    for c, t in keys[::7]:
        expected = sorted((s.group, s.size, s.top_prototypes) for s in e.groups if (s.cls, s.step) == (c, t))
        rows = ask(g, "learning_groups", cls=c, step=t)
        assert [(r.group, r.size, r.top_prototypes) for r in rows] == expected
        assert all(r.noise == (r.group == -1) for r in rows)


def _adoption(e: StructuredExplanation, c: int) -> list[int]:
    ds = sorted((d for d in e.drivers if d.cls == c),
                key=lambda d: (d.first_step is None, d.first_step or 0, -d.beta, d.prototype))
    return [d.prototype for d in ds]


def _matching(a: StructuredExplanation, b: StructuredExplanation) -> dict[int, int]:
    """Each run-A prototype -> the run-B prototype sharing most exemplar samples (ties: smallest index)."""
    ex_a, ex_b = defaultdict(set), defaultdict(set)
    for x in a.exemplars:
        ex_a[x.prototype].add(sid(a, x.sample))
    for x in b.exemplars:
        ex_b[x.prototype].add(sid(b, x.sample))
    out = {}
    for ka, samples in ex_a.items():
        shared = sorted(((len(samples & ex_b[kb]), -kb) for kb in ex_b if samples & ex_b[kb]), reverse=True)
        if shared:
            out[ka] = -shared[0][1]
    return out


def test_q12_compare_runs(g, digits_graph_other) -> None:
    a, b = g.explanation, digits_graph_other
    match = _matching(a, b)
    rows = ask(g, "compare_runs", other=b.run_id)
    assert [r.cls for r in rows] == list(range(a.num_classes))
    assert {(r.run_a, r.run_b) for r in rows} == {(a.run_id, b.run_id)}
    for r in rows:
        order_a, order_b = _adoption(a, r.cls), _adoption(b, r.cls)
        mapped = [match.get(k) for k in order_a]
        assert (r.order_a, r.order_b, r.order_a_in_b) == (order_a, order_b, mapped)
        differ = [i for i in range(max(len(mapped), len(order_b)))
                  if (mapped[i] if i < len(mapped) else None) != (order_b[i] if i < len(order_b) else None)]
        assert r.diverges == bool(differ) and r.first_divergence == (differ[0] if differ else None)
    assert any(r.diverges for r in rows)  # K-Means with another seed numbers and groups prototypes differently
    back = ask(g, "compare_runs", other=a.run_id)  # asked on run A about itself: no other run by that id
    assert len(back) == 0 and "not a complete run" in back.hint


def test_q13_misclassified_evidence(g) -> None:
    e = g.explanation
    for i in misclassified(e)[:8]:
        pred, label = int(e.predictions[-1, i]), int(e.labels[i])
        expected = {}
        for k in np.flatnonzero(e.presence[i] > 0):
            wrong = float(e.beta_overall[k, pred])
            if wrong > 0:
                expected[int(k)] = (wrong, float(e.beta_overall[k, label]))
        rows = ask(g, "misclassified_evidence", sample=sid(e, i))
        assert {r.prototype for r in rows} == set(expected)
        for r in rows:
            assert (r.beta_wrong, r.beta_true) == pytest.approx(expected[r.prototype], rel=1e-9)
            assert r.push == pytest.approx(r.intensity * r.beta_wrong)
            assert (r.label, r.predicted) == (label, pred)
        assert [r.push for r in rows] == sorted((r.push for r in rows), reverse=True)
    correct = next(i for i in stored_positions(e) if e.predictions[-1, i] == e.labels[i])
    answer = ask(g, "misclassified_evidence", sample=sid(e, correct))
    assert len(answer) == 0 and "classified correctly" in answer.hint


def test_q14_prototype_exemplars(g) -> None:
    e = g.explanation
    for k in range(e.k):
        expected = [(sid(e, x.sample), x.box, x.presence) for x in e.exemplars if x.prototype == k]
        rows = ask(g, "prototype_exemplars", k=k)
        assert [(r.sample, r.box, r.positions) for r in rows] == expected
        assert [r.rank for r in rows] == list(range(len(rows)))


def test_every_question_is_listed_with_docstring_and_params() -> None:
    listed = list_questions()
    assert [q["number"] for q in listed] == list(range(1, 18))
    assert all(q["doc"] and q["returns"] for q in listed)
    drivers = next(q for q in listed if q["name"] == "class_drivers")
    assert [(p["name"], p["type"], p["required"], p["default"]) for p in drivers["params"]] == [
        ("cls", "int", True, None), ("step", "int", False, None), ("top", "int", False, 5)]


# --- bad input ---------------------------------------------------------------------------------------------


def test_unknown_question_lists_the_names(g) -> None:
    with pytest.raises(UnknownQuestionError, match="Unknown question 'why_not'.*class_drivers.*prototype_exemplars"):
        questions.ask(g.store, "why_not")


def test_missing_and_mistyped_parameters_are_named(g) -> None:
    with pytest.raises(QuestionParameterError, match=r"needs parameter cls \(int"):
        ask(g, "class_drivers")
    with pytest.raises(QuestionParameterError, match=r"parameter cls .* expects a value of type int; got str '3'"):
        ask(g, "class_drivers", cls="3")
    with pytest.raises(QuestionParameterError,
                       match=r"has no parameter klass; it takes cls:int, step:int\?, top:int=5"):
        ask(g, "class_drivers", klass=3)
    with pytest.raises(QuestionParameterError, match="scope .* expects one of step, class; got 'beta'"):
        ask(g, "prototype_evolution", k=1, scope="beta")
    with pytest.raises(QuestionParameterError, match="got bool True"):
        ask(g, "prototype_exemplars", k=True)


@pytest.mark.parametrize("name, params, hint", [
    ("class_drivers", dict(cls=42), "Class 42 does not exist"),
    ("uncertain_prototypes", dict(a=-1, b=3), "Class -1 does not exist"),
    ("prototype_exemplars", dict(k=999), "Prototype 999 does not exist"),
    ("learning_groups", dict(cls=1, step=99), "Step 99 does not exist"),
    ("sample_evidence", dict(sample=987654), "Sample 987654 is not stored"),
    ("common_prototypes", dict(a=2, b=2), "the same class"),
])
def test_things_that_do_not_exist_give_an_empty_answer_with_a_hint(g, name, params, hint) -> None:
    answer = ask(g, name, **params)
    assert len(answer) == 0 and hint in answer.hint


def test_unknown_run_gives_a_hint(g) -> None:
    answer = questions.ask(g.store, "learning_order", run_id="no-such-run")
    assert len(answer) == 0 and "Run 'no-such-run' is not in the graph" in answer.hint
    assert g.explanation.run_id in answer.hint  # lists the runs there are


def test_cypher_syntax_errors_carry_the_server_message(g) -> None:
    from i2x_plugin.store import StoreQueryError

    with pytest.raises(StoreQueryError, match="SyntaxError"):
        g.store.query("MATCH (n:Run RETURN n")
