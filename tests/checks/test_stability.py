"""Stability of the claims (validation.md §3): re-fitted prototypes, matched, compared."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from i2x_plugin import I2X, I2XConfig
from i2x_plugin.checks import run_stability
from i2x_plugin.method.prototypes import extract_features
from i2x_plugin.checks.stability import StabilityError, match_prototypes, stability_test, with_recurrence


def test_matching_recovers_a_relabelled_partition():
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 5, size=(20, 3, 3))
    relabel = np.array([3, 0, 4, 1, 2])
    mapping, agreement = match_prototypes(reference, relabel[reference], 5)
    assert agreement == 1.0 and np.all(mapping[relabel] == np.arange(5))


def test_the_same_seed_gives_the_same_claims(planted):
    e = planted.explanation
    features = extract_features(planted.model, "block3", planted.shapes.data.images)
    result, recurrence = stability_test(e, features, kmeans_seeds=[e.config.seed] * 2, bootstraps=0)
    assert all(v == [1.0, 1.0] for v in result.jaccard.values()) and result.cell_agreement == [1.0, 1.0]
    assert result.learning_order_tau == [1.0, 1.0]
    assert all(r == 1.0 for kind in recurrence.values() for r in kind.values())


def test_other_seeds_and_resamples_keep_most_drivers(planted):
    """Over 10 seeds of the planted run (bench/test_spread.py) the mean drivers Jaccard of 3 re-fits is
    0.45–0.84 (median 0.65); the bound, 0.3, sits well below it (0.5 sat inside it and failed on fresh machines)."""
    tested = run_stability(planted.explanation, planted.model, planted.shapes.data, kmeans_seeds=2, bootstraps=1)
    s = tested.stability
    assert s.refits == ["kmeans-seed-3", "kmeans-seed-4", "bootstrap-0"]
    assert s.mean_jaccard["drivers"] >= 0.3
    assert all(d.recurrence is not None and 0 <= d.recurrence <= 1 for d in tested.drivers)


def test_stability_drops_on_a_model_trained_on_noise(tmp_path):
    """Pure-noise images with random labels: the model learns nothing but memorises, the run claims little, and
    what re-fits claim does not all recur.

    Over 10 seeds (bench/test_spread.py): 0–9 claims before the stability selection (median 3), 0–5 after it
    (median 2.5), drivers Jaccard of the re-fits 0.0–0.78. The bounds (12 and 8 claims, Jaccard < 1) sit above
    the spread: memorising random labels leaves a little structure in the training dynamics (docs/limits.md)."""
    import torch

    from i2x_plugin.training.data import ImageDataset
    from i2x_plugin.training.models import SmallCNN
    from i2x_plugin.training.loop import seeded, train_with_checkpoints

    generator = torch.Generator().manual_seed(0)
    noise = ImageDataset("noise", torch.rand(600, 1, 16, 16, generator=generator),
                         torch.randint(0, 4, (600,), generator=generator), tuple("abcd"))
    with seeded(0):
        model = SmallCNN(1, 4, pools=1)
    train_with_checkpoints(model, noise, tmp_path, epochs=4, lr=3e-3, seed=0)
    e = I2X(model, "block3", config=I2XConfig(k=12, faithfulness=False, null_draws=0)).explain(tmp_path, noise)
    assert len(e.drivers) + len(e.separators) + len(e.uncertain) <= 12
    tested = run_stability(e, model, noise, kmeans_seeds=2, bootstraps=1)
    assert len(tested.drivers) + len(tested.separators) + len(tested.uncertain) <= 8
    assert tested.stability.mean_jaccard["drivers"] < 1.0


def test_a_run_without_saliency_maps_is_refused(planted):
    bare = dataclasses.replace(planted.explanation, saliency_maps=None)
    with pytest.raises(StabilityError, match="kept no saliency maps.*keep_maps=True"):
        run_stability(bare, planted.model, planted.shapes.data)


def test_stability_selection_reports_only_claims_that_recur(planted):
    """With stability_selection = 0.5 every reported claim recurs in at least half the re-fits, the dropped ones
    are counted, and each class's drivers are ranked 0, 1, … again."""
    e = planted.explanation
    features = extract_features(planted.model, "block3", planted.shapes.data.images)
    result, recurrence = stability_test(e, features, kmeans_seeds=2, bootstraps=2)
    everything = with_recurrence(e, result, recurrence, share=None)
    selected = with_recurrence(e, result, recurrence, share=0.5)
    assert selected.stability.selection_share == 0.5
    for kind in ("drivers", "separators", "uncertain"):
        kept = getattr(selected, kind)
        assert all(c.recurrence >= 0.5 for c in kept)
        assert len(kept) + selected.stability.unstable[kind] == len(getattr(everything, kind))
    assert sum(selected.stability.unstable.values()) > 0  # the planted run has claims that do not recur
    for cls in {d.cls for d in selected.drivers}:
        assert sorted(d.rank for d in selected.drivers if d.cls == cls) == list(range(
            sum(d.cls == cls for d in selected.drivers)))


# --- bad input ------------------------------------------------------------------------------------------------
def test_fewer_than_two_refits_are_refused(planted):
    features = extract_features(planted.model, "block3", planted.shapes.data.images)
    with pytest.raises(StabilityError, match="at least 2 re-fits.*1 were asked.*≥ 2"):
        stability_test(planted.explanation, features, kmeans_seeds=1, bootstraps=0)


@pytest.mark.parametrize("share", [0.0, 1.5, -0.2])
def test_a_selection_share_outside_the_unit_interval_is_refused(planted, share):
    with pytest.raises(ValueError, match=r"stability_selection=.* must lie in \(0, 1\]"):
        I2XConfig(stability_selection=share)
    e = planted.explanation
    with pytest.raises(StabilityError, match=r"outside \(0, 1\]"):
        with_recurrence(e, e.stability or _no_refits(), {kind: {} for kind in ("drivers", "separators", "uncertain")},
                        share=share)


def _no_refits():
    from i2x_plugin.method.evidence import StabilityResult

    return StabilityResult([], {}, [])
