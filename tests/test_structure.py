"""The structure rules (method.md step 8) on hand-made β and confusion sequences."""

import numpy as np

from i2x_plugin.structure import (
    find_separators,
    find_uncertain,
    learning_order,
    most_confused_pairs,
    noise_floor,
    pair_separations,
    shared_and_specialised,
)
from i2x_plugin.progress import Betas


def _pair_beta(diffs_a, diffs_b):
    """(T-1, P=1, K=1, C=2) β with β[k, 0] and β[k, 1] given per step."""
    beta = np.zeros((len(diffs_a), 1, 1, 2))
    beta[:, 0, 0, 0], beta[:, 0, 0, 1] = diffs_a, diffs_b
    return beta


def test_uncertain_counts_sign_flips_above_the_floor_only():
    # β[k,a] − β[k,b] per step: +1, −1, +0.01 (below floor, ignored), +1  → flips at steps 1 and 3.
    beta = _pair_beta([1.0, -1.0, 0.01, 1.0], [0.0, 0.0, 0.0, 0.0])
    [u] = find_uncertain(beta, [(0, 1)], [(0, 1)], floor=0.1, min_flips=2)
    assert (u.a, u.b, u.prototype, u.flips, u.flip_steps) == (0, 1, 0, 2, [1, 3])
    assert np.isclose(u.magnitude, 1.0) and np.isclose(u.score, 2.0)
    assert find_uncertain(beta, [(0, 1)], [(0, 1)], floor=0.1, min_flips=3) == []


def test_separator_needs_positive_for_one_and_negative_for_the_other():
    beta = _pair_beta([0.5, 0.5, -0.5], [-0.5, 0.05, 0.5])  # step 0: favours 0; step 2: favours 1
    seps = find_separators(beta, [(0, 1)], floor=0.1)
    by_favour = {s.favours: s for s in seps}
    assert by_favour[0].steps == [0] and by_favour[0].first_step == 0 and np.isclose(by_favour[0].margin, 1.0)
    assert by_favour[1].steps == [2]


def test_separation_checkpoint_is_first_from_which_confusion_stays_low():
    labels = np.repeat([0, 1, 2], 50)  # threshold = max(1, round(0.02 * 100)) = 2
    confusion = np.zeros((5, 3, 3), int)
    confusion[:, 0, 1] = [30, 10, 1, 5, 0]  # back above threshold at checkpoint 3, then separated at 4
    confusion[:, 1, 2] = [20, 0, 0, 0, 0]
    confusion[:, 0, 2] = [9, 9, 9, 9, 9]  # never separated
    seps = {(s.a, s.b): s for s in pair_separations(confusion, labels, [(0, 1), (0, 2), (1, 2)], 0.02)}
    assert seps[(0, 1)].separation_checkpoint == 4
    assert seps[(1, 2)].separation_checkpoint == 1
    assert seps[(0, 2)].separation_checkpoint is None
    assert learning_order(list(seps.values())) == [[1, 2], [0, 1], [0, 2]]
    assert most_confused_pairs(confusion[-1], top=5) == [(0, 2)]


def test_noise_floor_is_a_quantile_of_pair_betas():
    beta = _pair_beta([1.0, 3.0], [2.0, 4.0])
    assert noise_floor(beta, [(0, 1)], 0.5) == 2.5


def test_shared_versus_specialised():
    k, c = 3, 1
    # Class 0 has 4 groups over 2 steps; prototype 0 tops all of them, prototype 1 one of them.
    per_group = {}
    for t in range(2):
        for g in range(2):
            beta = np.zeros((k, c))
            beta[0, 0] = 1.0
            beta[1, 0] = 0.5 if (t, g) == (1, 1) else -0.5
            per_group[(t, 0, g)] = beta
    per_class = np.zeros((2, c, k, c))
    per_class[:, 0, 0, 0] = 1.0
    betas = Betas(np.zeros((2, k, c)), per_class, np.zeros((2, 0, k, c)), per_group)
    result = {(s.prototype, s.kind): s for s in shared_and_specialised(betas, c, m=2, shared_fraction=1.0)}
    assert set(result) == {(0, "shared"), (1, "specialised")}
    assert result[(1, "specialised")].groups == [[1, 1]] and result[(1, "specialised")].fraction == 0.25
