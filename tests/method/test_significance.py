"""The null side of the claims: BH, per-step rank significance, flip counts and suffix scans."""

import itertools

import numpy as np
import pytest

from i2x_plugin import significance as sig


def test_benjamini_hochberg_by_hand():
    # sorted p: .01 .02 .03 .5 → p·m/rank: .04 .04 .04 .5 → running minimum from the top
    q = sig.benjamini_hochberg(np.array([0.03, 0.5, 0.01, 0.02]))
    np.testing.assert_allclose(q, [0.04, 0.5, 0.04, 0.04])


def test_benjamini_hochberg_skips_untested_entries():
    q = sig.benjamini_hochberg(np.array([[0.01, np.nan], [0.04, np.nan]]))
    np.testing.assert_allclose(q[:, 0], [0.02, 0.04])
    assert np.isnan(q[:, 1]).all()


def test_count_flips_ignores_non_significant_steps():
    assert sig.count_flips(np.array([1, 0, -1, -1, 0, 1])) == (2, [2, 5])
    assert sig.count_flips(np.array([0, 0, 1])) == (0, [])


def test_flip_count_p_counts_flips_like_count_flips_and_ranks_among_the_draws():
    rng = np.random.default_rng(5)
    draws = rng.normal(size=(60, 6, 4))  # B + 1 = 60 exchangeable sequences, α = 0.1: 3 hits per side
    sides, flips, p = sig.flip_count_p(draws[0], draws[1:], alpha=0.1)
    expected_sides, _ = sig.significant_side(draws[0], draws[1:], alpha=0.1)
    np.testing.assert_array_equal(sides, expected_sides)
    assert [sig.count_flips(sides[:, k])[0] for k in range(4)] == flips.tolist()
    everyone = [sig.flip_count_p(draws[j], np.delete(draws, j, 0), 0.1)[1] for j in range(60)]
    np.testing.assert_allclose(p, np.where(flips > 0, (np.array(everyone) >= flips).sum(0) / 60, 1.0))


def test_flip_count_p_keeps_its_level_where_the_independent_steps_model_does_not():
    """Anti-correlated steps (ρ = −0.46 between neighbours, as differences of levels make them) flip
    more often than independent ones: the Monte Carlo p keeps its level; the old exact DP over independent
    steps (its tail is enumerated here) does not. Share of p ≤ 0.05 over seeds 0–9: Monte Carlo
    0.0125–0.0375 (conservative: flip counts are discrete), DP 0.065–0.0975."""
    rng = np.random.default_rng(0)
    steps, b, tests = 6, 199, 400
    cov = np.eye(steps) - 0.6 * (np.eye(steps, k=1) + np.eye(steps, k=-1)) / 1.3
    chol = np.linalg.cholesky(cov)
    seqs = (chol @ rng.normal(size=(tests, steps, b + 1))).transpose(2, 1, 0)  # (B + 1, T, tests)
    sides, flips, p = sig.flip_count_p(seqs[0], seqs[1:], alpha=0.2)
    assert (p <= 0.05).mean() <= 0.05
    p_side = np.floor(0.1 * (b + 1)) / (b + 1)
    probability = {1: p_side, -1: p_side, 0: 1 - 2 * p_side}
    pmf = np.zeros(steps + 1)
    for seq in itertools.product((1, 0, -1), repeat=steps):
        pmf[sig.count_flips(np.array(seq))[0]] += np.prod([probability[s] for s in seq])
    dp_p = np.where(flips > 0, pmf[::-1].cumsum()[::-1][flips], 1.0)
    assert (dp_p <= 0.05).mean() > 0.06  # the independent-steps tail: anti-conservative here


def test_significant_side_hits_each_tail_with_the_stated_probability():
    """Under exchangeability the rank rule is exact: ⌊α/2 (B+1)⌋/(B+1) per side."""
    rng = np.random.default_rng(0)
    draws = rng.standard_t(3, size=(40_000, 40))  # heavy tails: no distribution shape is assumed
    observed, null = draws[:, 0], draws[:, 1:].T  # B = 39 draws per test
    side, p_side = sig.significant_side(observed, null, alpha=0.1)
    assert p_side == pytest.approx(2 / 40)
    assert (side == 1).mean() == pytest.approx(p_side, abs=0.004)
    assert (side == -1).mean() == pytest.approx(p_side, abs=0.004)


def test_significant_side_needs_enough_draws():
    with pytest.raises(ValueError, match="cannot resolve"):
        sig.significant_side(np.zeros(3), np.zeros((10, 3)), alpha=0.05)


def test_suffix_scan_by_hand():
    z_for = np.array([0.0, 3.0, 3.0])[:, None]
    z_against = np.array([0.0, -2.0, -4.0])[:, None]
    statistic, onset = sig.suffix_scan(z_for, z_against, min_steps=2)
    # windows [0,3): min(6/√3, 6/√3) = 3.46; [1,3): min(6/√2, 6/√2) = 4.24 → onset 1
    assert onset[0] == 1 and statistic[0] == pytest.approx(6 / np.sqrt(2))


def test_suffix_scan_p_is_valid_under_the_null():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(8, 200_000))
    statistic, _ = sig.suffix_scan(z, -z, min_steps=2)  # the worst case: the two columns move as one
    p = sig.suffix_scan_p(statistic, 8, 2)
    for level in (0.05, 0.01, 0.001):
        assert (p <= level).mean() <= level


def test_within_strata_permutations_stay_inside_each_stratum():
    strata = np.array([0, 1, 0, 1, 1, 2])
    perms = sig.within_strata_permutations(strata, 50, np.random.default_rng(2))
    assert np.all(strata[perms] == strata)
    assert all(sorted(p) == list(range(6)) for p in perms)
    assert len({tuple(p) for p in perms}) > 1


def test_shuffle_trajectories_moves_whole_trajectories_within_strata():
    """The null draws of null_claim_counts: sample i at every step is one other sample of its stratum (the
    per-step shuffle of before gave each step its own permutation)."""
    rng = np.random.default_rng(3)
    strata = np.repeat([0, 1], 20)
    x = rng.normal(size=(5, 40, 2))
    shuffled = sig.shuffle_trajectories(x, strata, rng)
    source = [int(np.flatnonzero((x[0] == row).all(1))[0]) for row in shuffled[0]]
    np.testing.assert_array_equal(shuffled, x[:, source])
    assert np.all(strata[source] == strata) and source != list(range(40))
