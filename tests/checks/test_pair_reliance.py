"""The pair relations of the final model (checks/pair_reliance.py) on the real digits run: margin reliance and
confusers, cross-fitted, tested against random cells, dated; bad input skipped visibly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from i2x_plugin import StructuredExplanation
from i2x_plugin.checks import run_reliance
from i2x_plugin.checks.faithfulness import Deleter
from i2x_plugin.checks.pair_reliance import MIN_HALF, class_halves, pair_groups, pair_relations
from i2x_plugin.checks.reliance import shuffled_cells
from i2x_plugin.method.claims import most_confused_pairs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def relied(digits_run) -> StructuredExplanation:
    return run_reliance(digits_run.explanation, digits_run.load_final(), digits_run.probe)


def test_margin_reliance_tests_both_directions_of_every_separator_or_most_confused_pair(relied):
    e, r = relied, relied.reliance
    expected = {(min(s.a, s.b), max(s.a, s.b)) for s in e.separators} | set(
        most_confused_pairs(e.confusion[-1], e.config.confused_pairs))
    margin = [x for x in r.pair_edges if x.kind == "margin"]
    assert {(x.a, x.b) for x in margin} == expected
    assert {(x.a, x.b, x.favours) for x in margin} == {(a, b, f) for a, b in expected for f in (a, b)}
    assert all(x.against == x.a + x.b - x.favours and x.contrast_p is not None for x in margin)


def test_pair_edges_are_ranked_on_the_selection_half_and_tested_on_the_held_out_half(relied):
    e, r = relied, relied.reliance
    groups, _ = pair_groups(e, class_halves(e), e.config.reliance_held_out, e.config.seed)
    for g in groups:
        assert not set(g.selection) & set(g.held)
        edges = sorted((x for x in r.pair_edges if (x.kind, x.a, x.b, x.favours) == (g.kind, g.a, g.b, g.favours)),
                       key=lambda x: x.rank)
        assert [x.rank for x in edges] == list(range(1, len(edges) + 1))
        assert all(a.selection_effect >= b.selection_effect for a, b in zip(edges, edges[1:]))
        assert all(x.half == "held-out" and x.samples == len(g.held) for x in edges)
    for kind in ("margin", "confuser"):
        edges = [x for x in r.pair_edges if x.kind == kind]
        assert all(x.p <= x.q <= 1 for x in edges)


def test_confused_pairs_are_tested_for_confusers_or_named_in_skipped(relied):
    """Every most confused pair has confuser edges and a top-set test, or a line in ``skipped`` saying it has too
    few misclassified samples to cross-fit; a tested pair's held-out samples are a↔b-misclassified ones."""
    e, r = relied, relied.reliance
    wrong = (e.predictions[-1] != e.labels)
    for a, b in most_confused_pairs(e.confusion[-1], e.config.confused_pairs):
        tested = [x for x in r.pair_edges if x.kind == "confuser" and (x.a, x.b) == (a, b)]
        n = int((wrong & np.isin(e.labels, (a, b)) & np.isin(e.predictions[-1], (a, b))).sum())
        if tested:
            assert n >= 2 * MIN_HALF and [s for s in r.pair_sets if (s.kind, s.a, s.b) == ("confuser", a, b)]
        else:
            assert f"confusers of {a}↔{b}: {n} misclassified samples leave a half under {MIN_HALF}" in " ".join(
                r.skipped)


def test_claimed_margin_edges_move_the_margin_and_their_pair_groups_beat_random_sets(relied):
    """On the digits run: margin reliance claims edges and the top set of every reported pair group is compared
    with 50 matched random sets. Measured on the digits setting over seeds 0–2: 19 of 20, 12 of 12 and 9 of 10
    groups pass (0.90–1.0; 57 of 58 on the default mnist-5k run); the test asks for ≥ 0.8, the issue's target."""
    r = relied.reliance
    claimed = r.significant_pairs("margin")
    assert claimed and all(x.effect - x.random_effect >= r.pair_min_effect for x in claimed)
    sets = [s for s in r.pair_sets if s.kind == "margin"]
    reported = {(x.a, x.b, x.favours) for x in claimed}
    assert {(s.a, s.b, s.favours) for s in sets} == reported
    assert np.mean([s.passes for s in sets]) >= 0.8
    assert all(s.test.samples > 0 and len(s.test.prototypes) <= relied.config.top_prototypes for s in sets)


def test_claimed_pair_edges_are_dated_at_every_checkpoint(relied):
    """Measured on the digits setting over seeds 0–2: no claimed pair edge passes the formation rule at the
    untrained checkpoint 0 (1 of 428 on the default run); the test allows 5 %."""
    e, r = relied, relied.reliance
    for x in r.significant_pairs("margin") + r.significant_pairs("confuser"):
        assert len(x.effect_by_checkpoint) == len(e.checkpoints) == len(x.p_by_checkpoint)
        assert x.effect_by_checkpoint[-1] == pytest.approx(x.effect, abs=1e-5)
        if x.formed_at is not None:
            assert all(p <= r.formation_alpha for p in x.p_by_checkpoint[x.formed_at:])
    assert r.pair_checkpoint0_false_rate is not None and r.pair_checkpoint0_false_rate <= 0.05


def test_pair_relations_save_and_load(relied, tmp_path):
    relied.save(tmp_path / "run")
    loaded = StructuredExplanation.load(tmp_path / "run").reliance
    assert loaded.pair_edges == relied.reliance.pair_edges and loaded.pair_sets == relied.reliance.pair_sets


def test_a_confused_pair_with_too_few_misclassified_samples_is_skipped_visibly(digits_run):
    """The final predictions cut down so that the most confused pair keeps 3 misclassified samples: its
    confusers are not tested, and ``skipped`` says why."""
    e = digits_run.explanation
    (a, b), *_ = most_confused_pairs(e.confusion[-1], e.config.confused_pairs)
    predictions = e.predictions.copy()
    wrong = np.flatnonzero(np.isin(e.labels, (a, b)) & np.isin(predictions[-1], (a, b)) & (predictions[-1] != e.labels))
    predictions[-1, wrong[3:]] = e.labels[wrong[3:]]
    cut = dataclasses.replace(e, predictions=predictions)
    groups, skipped = pair_groups(cut, class_halves(cut), 0.5, 0)
    assert f"confusers of {a}↔{b}: 3 misclassified samples leave a half under {MIN_HALF} (held-out share 0.5); " \
           "too few to cross-fit" in skipped
    assert not [g for g in groups if (g.kind, g.a, g.b) == ("confuser", a, b)]


def test_no_pair_is_tested_when_no_class_can_be_cross_fitted(digits_run):
    e = digits_run.explanation
    deleter = Deleter(digits_run.load_final(), e.layer, digits_run.probe.images, e.labels, e.assignments)
    relations = pair_relations(e, deleter, shuffled_cells(e.assignments, 2, 0), {})
    assert not [x for x in relations.edges if x.kind == "margin"]
    assert all("too small to cross-fit" in line for line in relations.skipped if line.startswith("margin"))


def test_the_pair_relations_need_the_reliance_relation_first(digits_run):
    from i2x_plugin.checks.run import with_pair_reliance

    with pytest.raises(ValueError, match="extend the reliance relation: run with_reliance"):
        with_pair_reliance(digits_run.explanation, digits_run.load_final(), digits_run.probe.images)
