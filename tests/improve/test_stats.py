"""Paired statistics over seeds: scipy's tests on per-seed differences, Holm's correction, the 5-seed floor."""

from __future__ import annotations

import pytest
from scipy import stats

from i2x_plugin.improve.stats import TooFewSeedsError, holm, paired


def test_paired_tests_are_scipys_on_the_per_seed_differences():
    treatment, control = [210, 205, 214, 199, 208, 203], [218, 212, 213, 209, 216, 211]
    out = paired(treatment, control, higher_is_better=False, claim=True)
    assert out["differences"] == [-8, -7, 1, -10, -8, -8] and out["mean_difference"] == pytest.approx(-40 / 6)
    assert out["t_test_p"] == pytest.approx(stats.ttest_rel(treatment, control).pvalue)
    assert out["wilcoxon_p"] == pytest.approx(stats.wilcoxon([-8, -7, 1, -10, -8, -8]).pvalue)
    assert (out["wins"], out["losses"], out["ties"], out["n"]) == (5, 1, 0, 6)


def test_fewer_than_five_seeds_claim_no_significance():
    with pytest.raises(TooFewSeedsError, match="needs ≥ 5 paired seeds, got 4"):
        paired([1, 2, 3, 4], [2, 3, 4, 6], higher_is_better=False, claim=True)
    shown = paired([1, 2, 3, 4], [2, 3, 4, 6], higher_is_better=False)
    assert shown["t_test_p"] is None and shown["wilcoxon_p"] is None and shown["significance"].startswith("not tested")
    assert shown["mean_difference"] == -1.25


def test_equal_differences_give_no_t_p_and_zeros_no_wilcoxon_p():
    out = paired([3, 3, 3, 3, 3], [3, 3, 3, 3, 3], higher_is_better=False, claim=True)
    assert out["t_test_p"] is None and out["wilcoxon_p"] is None and out["ties"] == 5


def test_holm_steps_down_and_keeps_untested_entries_out_of_the_family():
    # Sorted 0.01, 0.03, 0.04 in a family of 3: 0.03, 0.06, max(0.06, 0.04) = 0.06.
    assert holm([0.04, None, 0.01, 0.03]) == pytest.approx([0.06, None, 0.03, 0.06])
    assert holm([0.5, 0.9]) == [1.0, 1.0] and holm([]) == []
