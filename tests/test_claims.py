"""Each claim kind on hand-made ΔP / ΔŶ with a planted relationship, and on the same data shuffled (nothing)."""

import numpy as np
import pytest

from i2x_plugin.claims import calibrated_claims, claim_counts, most_confused_pairs, null_claim_counts
from i2x_plugin.config import I2XConfig

STEPS, PER_CLASS, K, C = 6, 120, 6, 3
CONFIG = I2XConfig(k=K, n_permutations=200, null_draws=0)
SHARE = np.full((C, K), 1 / K)  # every prototype holds the same share of each class's final saliency
SHARE[0, 4], SHARE[0, 0] = 0.5, 0.1  # ...except in class 0, which looks most at P4


def _planted(seed: int = 0):
    """Three classes. P0 (strongly) and P4 (weakly) drive class 0 at every step; P1 favours class 1 over class 2 from step 2 on (in both
    classes' samples); P2's effect on 0 versus 1 changes sign every step; P3 drives class 2 in group 0 only."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(C), PER_CLASS)
    x = rng.normal(size=(STEPS, len(labels), K))
    y = rng.normal(scale=0.5, size=(STEPS, len(labels), C))
    groups = np.tile(np.where(np.arange(len(labels)) % 2 == 0, 0, 1), (STEPS, 1))
    for t in range(STEPS):
        in0, in1, in2 = labels == 0, labels == 1, labels == 2
        y[t, in0, 0] += 0.6 * x[t, in0, 0] + 0.3 * x[t, in0, 4]
        if t >= 2:
            both = in1 | in2
            y[t, both, 1] += 0.6 * x[t, both, 1]
            y[t, both, 2] -= 0.6 * x[t, both, 1]
        sign = 1 if t % 2 == 0 else -1
        pair = in0 | in1
        y[t, pair, 0] += sign * 0.6 * x[t, pair, 2]
        y[t, pair, 1] -= sign * 0.6 * x[t, pair, 2]
        specialised = in2 & (groups[t] == 0)
        y[t, specialised, 2] += 0.8 * x[t, specialised, 3]
    confusion = np.diag([PER_CLASS] * C)
    confusion[0, 1] = confusion[1, 0] = 10  # 0 ↔ 1 is the confused pair
    return x, y, labels, groups, confusion


@pytest.fixture(scope="module")
def planted():
    x, y, labels, groups, confusion = _planted()
    return calibrated_claims(x, y, labels, groups, confusion, SHARE, CONFIG)


def test_the_planted_driver_is_found_and_carries_its_evidence(planted):
    drivers = {(d.cls, d.prototype): d for d in planted.drivers}
    d = drivers[(0, 0)]
    assert d.beta > 0 and d.z > 3 and d.p < 1e-3 and d.q <= 0.05 and d.first_step == 0
    assert planted.q_driver[0, 0] == pytest.approx(d.q)


def test_drivers_are_ranked_by_the_final_saliency_share_not_by_beta(planted):
    drivers = {(d.cls, d.prototype): d for d in planted.drivers}
    strong, weak = drivers[(0, 0)], drivers[(0, 4)]
    assert strong.beta > weak.beta and weak.saliency_share == 0.5
    assert (weak.rank, strong.rank) == (0, 1)


def test_the_planted_separator_starts_where_it_was_planted(planted):
    found = [s for s in planted.separators if (s.a, s.b, s.prototype) == (1, 2, 1)]
    assert len(found) == 1
    s = found[0]
    assert s.favours == 1 and s.first_step == 2 and s.steps == [2, 3, 4, 5] and s.margin > 0 and s.q <= 0.05


def test_the_flipping_prototype_is_uncertain_for_the_confused_pair(planted):
    [u] = [u for u in planted.uncertain if u.prototype == 2]
    assert (u.a, u.b) == (0, 1) and u.flips == STEPS - 1 and u.signs == [1, -1, 1, -1, 1, -1]
    assert u.q <= 0.05 and u.score == pytest.approx(u.flips * u.magnitude)
    assert {(v.a, v.b) for v in planted.uncertain} == {(0, 1)}  # only the confused pair is examined


def test_a_prototype_of_one_group_is_specialised(planted):
    found = {(s.cls, s.prototype): s for s in planted.shared}
    s = found[(2, 3)]
    assert s.kind == "specialised" and {g for _, g in s.groups} == {0} and s.fraction == pytest.approx(0.5)


def test_no_other_claims_than_the_planted_ones(planted):
    assert {(d.cls, d.prototype) for d in planted.drivers} <= {(0, 0), (0, 4), (1, 1), (2, 3), (0, 2), (1, 2)}
    assert all(u.prototype == 2 for u in planted.uncertain)


def test_shuffled_within_class_gives_nothing():
    x, y, labels, groups, confusion = _planted(1)
    counts = null_claim_counts(x, y, labels, groups, confusion, SHARE, CONFIG, draws=4)
    assert all(sum(c.values()) <= 1 for c in counts)


def test_shuffled_globally_gives_nothing():
    x, y, labels, groups, confusion = _planted(2)
    counts = null_claim_counts(x, y, labels, groups, confusion, SHARE, CONFIG, draws=3, shuffle="global")
    assert all(sum(c.values()) <= 1 for c in counts)


def test_pure_noise_gives_nothing():
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(C), PER_CLASS)
    x, y = rng.normal(size=(STEPS, len(labels), K)), rng.exponential(size=(STEPS, len(labels), C))
    claims = calibrated_claims(x, y, labels, np.zeros((STEPS, len(labels)), int), np.ones((C, C), int), SHARE, CONFIG)
    assert sum(claim_counts(claims).values()) <= 1


def test_a_class_too_small_to_test_is_named_and_skipped():
    x, y, labels, groups, confusion = _planted()
    keep = np.flatnonzero((labels != 2) | (np.arange(len(labels)) % 40 == 0))  # class 2 keeps 3 samples
    claims = calibrated_claims(x[:, keep], y[:, keep], labels[keep], groups[:, keep], confusion, SHARE, CONFIG)
    assert any(line.startswith("class 2: 3 probe samples") for line in claims.skipped)
    assert all(d.cls != 2 for d in claims.drivers) and np.isnan(claims.q_driver[2]).all()
    assert all(2 not in (s.a, s.b) for s in claims.separators)


def test_small_groups_are_listed_as_not_tested():
    x, y, labels, _, confusion = _planted()
    groups = np.tile(np.arange(len(labels)) % 30, (STEPS, 1))  # groups of 4 per class
    claims = calibrated_claims(x, y, labels, groups, confusion, SHARE, CONFIG)
    assert len(claims.beta_group_keys) == 0 and claims.shared == []
    assert any("learning-pattern groups have fewer than min_scope_samples" in line for line in claims.skipped)
    assert not any(g.tested for g in claims.groups)


def test_most_confused_pairs_orders_by_confusions_and_drops_zero():
    confusion = np.zeros((3, 3), int)
    confusion[0, 2], confusion[2, 0], confusion[1, 2] = 4, 3, 5
    assert most_confused_pairs(confusion, top=5) == [(0, 2), (1, 2)]
    assert most_confused_pairs(confusion, top=1) == [(0, 2)]


def test_bad_settings_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="n_permutations=10 is too few"):
        I2XConfig(n_permutations=10)
    with pytest.raises(ValueError, match="fdr_q=1.5 must lie strictly between 0 and 1"):
        I2XConfig(fdr_q=1.5)
    with pytest.raises(ValueError, match="fdr_q=0.0 must lie"):
        I2XConfig(fdr_q=0.0)
