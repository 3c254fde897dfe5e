"""The curated set of step 9, on the real digits run: derived from assignments, and refusing bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from i2x_plugin import StructuredExplanation
from i2x_plugin.improve.curation import (CurationError, CurationTarget, NoUncertainPrototypesError, auto_min_positions,
                                 choose_target, curate, training_assignments)
from i2x_plugin.method.claim_types import UncertainPrototype


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def train_assignments(digits_run, digits_train_set):
    return training_assignments(digits_run.explanation, digits_run.load_final(), digits_train_set.images)


def test_prototypes_travel_with_the_explanation(digits_run, tmp_path):
    e = digits_run.explanation
    digits_run.load_final()
    # Assigning the probe images again reproduces the fit's own assignments...
    np.testing.assert_array_equal(training_assignments(e, digits_run.model, digits_run.probe.images), e.assignments)
    # ...and so do the prototypes after a save/load round trip.
    loaded = StructuredExplanation.load(e.save(tmp_path / "run"))
    np.testing.assert_array_equal(training_assignments(loaded, digits_run.model, digits_run.probe.images),
                                  e.assignments)


def test_target_is_the_most_confused_pair_with_uncertain_prototypes(digits_run):
    e = digits_run.explanation
    assert e.uncertain, "the digits run should have uncertain prototypes"
    target = choose_target(e)
    final = e.confusion[-1]
    pairs = {(min(u.a, u.b), max(u.a, u.b)) for u in e.uncertain}
    assert target.pair in pairs
    assert target.probe_confusions == max(int(final[a, b] + final[b, a]) for a, b in pairs)
    best = [u for u in e.uncertain if (min(u.a, u.b), max(u.a, u.b)) == target.pair][0]
    assert target.prototypes == (best.prototype,)
    top = choose_target(e, selection="top_uncertain")
    assert top.prototypes == (e.uncertain[0].prototype,)
    assert choose_target(e, pair=target.pair[::-1]).pair == target.pair


def test_curated_set_is_exactly_the_samples_of_the_pair_holding_the_prototype(digits_run, digits_train_set,
                                                                               train_assignments):
    target = choose_target(digits_run.explanation, num_prototypes=2)
    labels = digits_train_set.labels.numpy()
    flat = train_assignments.reshape(len(labels), -1)
    holds_at = np.stack([(flat == k).sum(1) for k in target.prototypes]).max(0)  # best prototype's positions
    made = 0
    for m in range(1, flat.shape[1] + 2):
        expected = {i for i in range(len(labels)) if labels[i] in target.pair and holds_at[i] >= m}
        emptied = [c for c in target.pair if all(i in expected for i in np.flatnonzero(labels == c))]
        if not expected:
            with pytest.raises(CurationError, match="would equal the training set"):
                curate(target, train_assignments, labels, m)
            continue
        if emptied:
            with pytest.raises(CurationError, match=f"remove all .* of class {emptied[0]}"):
                curate(target, train_assignments, labels, m)
            continue
        curated = curate(target, train_assignments, labels, m)
        made += 1
        assert set(curated.removed.tolist()) == expected  # of the pair, holding a prototype ≥ m times; no other
        assert all(labels[i] in target.pair and holds_at[i] >= m for i in curated.removed)
        assert sum(curated.removed_per_class.values()) == len(expected)
        assert curated.summary()["curated_size"] == len(labels) - len(expected)
        assert len(curated.kept) + len(curated.removed) == len(labels)
    assert made, "no threshold gave a valid curated set on the digits run"


def test_no_uncertain_prototypes_is_an_error_not_a_made_up_set(digits_run):
    empty = dataclasses.replace(digits_run.explanation, uncertain=[])
    with pytest.raises(NoUncertainPrototypesError, match="larger K .* more checkpoints"):
        choose_target(empty)
    pairs = {(min(u.a, u.b), max(u.a, u.b)) for u in digits_run.explanation.uncertain}
    free = next((a, b) for a in range(10) for b in range(a + 1, 10) if (a, b) not in pairs)
    with pytest.raises(NoUncertainPrototypesError, match=f"pair {free[0]}-{free[1]}"):
        choose_target(digits_run.explanation, pair=free)


def test_a_curated_set_that_empties_a_class_is_refused(digits_train_set, train_assignments):
    labels = digits_train_set.labels.numpy()
    planted = train_assignments.copy()
    planted[labels == 3, 0, 0] = 5  # prototype 5 now sits in every training 3
    target = CurationTarget(3, 8, (UncertainPrototype(3, 8, 5, 2, [1, 2], [0, 1, 2], [1, -1, 1], 0.1, 0.2, 0.001, 0.01),), 4)
    with pytest.raises(CurationError, match="remove all .* samples of class 3"):
        curate(target, planted, labels, 1)
    # The training-data-only 'auto' threshold keeps at least half of each class instead.
    m = auto_min_positions(target, planted, labels, 0.5)
    curated = curate(target, planted, labels, m)
    assert all(curated.removed_per_class[c] <= 0.5 * curated.class_sizes[c] for c in (3, 8))


def test_a_curated_set_that_removes_nothing_is_refused(digits_train_set, train_assignments):
    target = CurationTarget(3, 8, (UncertainPrototype(3, 8, 5, 2, [1, 2], [0, 1, 2], [1, -1, 1], 0.1, 0.2, 0.001, 0.01),), 4)
    with pytest.raises(CurationError, match="would equal the training set"):
        curate(target, train_assignments, digits_train_set.labels.numpy(), train_assignments[0].size + 1)


def test_an_explanation_without_prototypes_says_how_to_fix_it(digits_run, digits_train_set):
    old = dataclasses.replace(digits_run.explanation, prototypes=None)
    with pytest.raises(CurationError, match="Re-run I2X.explain"):
        training_assignments(old, digits_run.model, digits_train_set.images[:4])
