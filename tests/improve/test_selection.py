"""The selection variants V0–V4 and the random control, on the real digits run, and their bad-input errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from i2x_plugin.improve.curation import CurationError, choose_target, curate
from i2x_plugin.improve.selection import (DEFAULT_VARIANT, GUIDED_VARIANTS, NoSamplesError, beta_gap, pair_signals,
                                  pair_uncertain, random_control, select)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def signals(digits_run, digits_train_set):
    e = digits_run.explanation
    return pair_signals(e, digits_run.load_final(), digits_train_set, choose_target(e).pair)


def _per_class(curation):
    return [curation.removed_per_class[c] for c in curation.target.pair]


def test_signals_are_the_final_models_margins_and_intensities(digits_run, digits_train_set, signals):
    a, b = signals.pair
    labels = digits_train_set.labels.numpy()
    with torch.no_grad():
        logits = digits_run.model(digits_train_set.images).numpy()
    own, other = logits[np.arange(len(labels)), labels], np.where(labels == a, logits[:, b], logits[:, a])
    members = np.isin(labels, (a, b))
    np.testing.assert_allclose(signals.margins[members], (own - other)[members], rtol=1e-4, atol=1e-4)
    assert np.isnan(signals.margins[~members]).all()
    assert (signals.intensities[~members] == 0).all() and (signals.intensities[members] >= 0).all()
    # A prototype a sample does not hold has intensity 0 in it; held ones are measured.
    held = signals.presence(3) > 0
    assert (signals.intensities[members & ~held, 3] == 0).all()


def test_v0_is_todays_rule(digits_run, digits_train_set, signals):
    e = digits_run.explanation
    chosen = select("V0", e, signals, min_positions="auto")
    target = choose_target(e, signals.pair)
    today = curate(target, signals.assignments, signals.labels, chosen.min_positions)
    np.testing.assert_array_equal(chosen.removed, today.removed)
    assert chosen.variant == "V0" and chosen.cap is None and chosen.target.prototypes == target.prototypes


def test_capped_variants_respect_the_cap_and_rank_by_their_score(digits_run, signals):
    e = digits_run.explanation
    a, b = signals.pair
    labels = signals.labels
    caps = {c: int(np.floor(0.1 * (labels == c).sum())) for c in (a, b)}
    v1 = select("V1", e, signals, cap=0.1)
    top = pair_uncertain(e, (a, b))[0].prototype
    m = v1.removed_per_class[a]
    assert m == v1.removed_per_class[b] and 0 < m <= min(caps.values())  # balanced and capped
    assert (signals.presence(top)[v1.removed] > 0).all()
    for c in (a, b):  # the most intense holders of the top prototype
        holders = np.flatnonzero((labels == c) & (signals.presence(top) > 0))
        kept = np.setdiff1d(holders, v1.removed)
        if len(kept):
            assert signals.intensities[np.intersect1d(v1.removed, holders), top].min() >= \
                signals.intensities[kept, top].max()
    v3 = select("V3", e, signals, cap=0.1)
    gap = beta_gap(e, a, b)
    score = sum(signals.presence(u.prototype) * gap[u.prototype] for u in pair_uncertain(e, (a, b)))
    for c in (a, b):
        assert v3.removed_per_class[c] <= caps[c]
        members = np.flatnonzero(labels == c)
        assert score[np.intersect1d(v3.removed, members)].min() >= score[np.setdiff1d(members, v3.removed)].max()
    v4 = select("V4", e, signals, cap=0.1)
    assert _per_class(v4) == [caps[a], caps[b]] and v4.target.prototypes == ()
    for c in (a, b):  # the smallest a-vs-b margins of each class
        members = np.flatnonzero(labels == c)
        assert signals.margins[np.intersect1d(v4.removed, members)].max() <= \
            signals.margins[np.setdiff1d(members, v4.removed)].min()


def test_v2_keeps_only_common_and_rare_prototypes(digits_run, signals):
    e = digits_run.explanation
    a, b = signals.pair
    labels = signals.labels
    try:
        v2 = select("V2", e, signals, cap=0.1)
    except NoSamplesError as err:  # allowed, but then it must say why for every prototype
        assert "common to both classes" in str(err) and "found no samples" in str(err)
        return
    for k in v2.target.prototypes:
        held = signals.presence(k) > 0
        ra, rb = held[labels == a].mean(), held[labels == b].mean()
        assert min(ra, rb) > 0 and max(ra, rb) <= 2 * min(ra, rb) and held.mean() < 0.5
    held = np.stack([signals.presence(k) > 0 for k in v2.target.prototypes]).any(0)
    assert held[v2.removed].all()


def test_random_control_matches_counts_and_is_redrawn_per_seed(digits_run, signals):
    chosen = select("V4", digits_run.explanation, signals, cap=0.1)
    r0, r1 = random_control(chosen, 0), random_control(chosen, 1)
    assert r0.removed_per_class == r1.removed_per_class == chosen.removed_per_class
    assert set(signals.labels[r0.removed]) <= set(chosen.target.pair)
    assert not np.array_equal(r0.removed, r1.removed)
    np.testing.assert_array_equal(r0.removed, random_control(chosen, 0).removed)  # seeded
    assert r0.variant == "R(V4)"


def test_a_cap_that_removes_a_whole_class_is_refused(digits_run, signals):
    with pytest.raises(CurationError, match="cap 1.0 must be a fraction in \\(0, 1\\): at 1.0 a capped variant "
                                            "removes a whole class"):
        select("V4", digits_run.explanation, signals, cap=1.0)


def test_a_variant_that_finds_nothing_says_so_and_makes_nothing_up(digits_run, signals):
    e = digits_run.explanation
    bare = dataclasses.replace(e, uncertain=[])
    for variant in GUIDED_VARIANTS:
        with pytest.raises(NoSamplesError, match="found no samples: the explanation has no uncertain prototype"):
            select(variant, bare, signals)
    with pytest.raises(NoSamplesError, match="none of the pair's uncertain prototypes is common to both classes"):
        select("V2", e, signals, rare_fraction=1e-9)
    with pytest.raises(NoSamplesError, match="found no samples"):  # a cap below one sample per class
        select("V4", e, signals, cap=1e-6)
    assert select("V4", bare, signals).removed.size  # the margin control needs no prototype


def test_default_variant_is_the_one_the_study_chose():
    """i2x improve's default is the study's validation choice once the study has written its results."""
    results = Path(__file__).resolve().parents[2] / "bench" / "results" / "improve.json"
    data = json.loads(results.read_text()) if results.is_file() else {}
    if "chosen_variant" not in data:
        assert DEFAULT_VARIANT == "V0"  # before the pre-registered study has run: today's rule
    else:
        assert DEFAULT_VARIANT == (data["chosen_variant"] or "V0"), (
            "set i2x_plugin.improve.selection.DEFAULT_VARIANT to the study's chosen_variant")
