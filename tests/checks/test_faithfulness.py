"""Deletion tests (validation.md §2) on real trained models: planted shapes and digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from i2x_plugin.checks import run_faithfulness
from i2x_plugin.checks.faithfulness import (Deleter, FaithfulnessError, covered_area, delete_and_compare, head_after,
                                            masked)
from i2x_plugin.training.models import SmallCNN
from i2x_plugin.training.synthetic import prototype_shapes


def _shape_prototypes(planted, cls: int, shapes: set[str]) -> list[int]:
    e = planted.explanation
    covers = prototype_shapes(planted.shapes, e.assignments, e.labels, tuple(e.map_size), 4, e.k)
    return sorted(k for (c, k), shape in covers.items() if c == cls and shape in shapes)


def test_the_head_after_the_layer_gives_the_model_output(planted):
    model = planted.model
    head = head_after(model, model.block3, "block3", planted.shapes.data.images[:8])
    assert head is not None
    with torch.no_grad():
        x = planted.shapes.data.images[8:24]
        np.testing.assert_allclose(head(model.block3(model.block2(model.block1(x)))), model(x), rtol=1e-5, atol=1e-6)


def test_deleting_nothing_changes_nothing_and_deleting_everything_changes_the_logits(planted):
    e = planted.explanation
    deleter = Deleter(planted.model, "block3", planted.shapes.data.images, e.labels, e.assignments)
    rows = np.arange(40)
    with torch.no_grad():
        np.testing.assert_allclose(deleter.logits(rows), planted.model(planted.shapes.data.images[rows]), atol=1e-5)
    assert not torch.allclose(deleter.logits(rows, list(range(e.k))), deleter.logits(rows))


@pytest.mark.parametrize("fill", [None, "mean"])
def test_masking_by_arithmetic_gives_the_values_of_a_select(fill):
    """The fast mask equals torch.where bit for bit: kept cells unchanged, deleted cells the fill."""
    generator = torch.Generator().manual_seed(0)
    output = torch.relu(torch.randn(6, 5, 4, 4, generator=generator))
    cells = torch.rand(6, 1, 4, 4, generator=generator) < 0.3
    values = None if fill is None else torch.randn(6, 5, 1, 1, generator=generator)
    expected = torch.where(cells, torch.zeros(1) if values is None else values, output)
    assert torch.equal(masked(output, cells, values), expected)


def test_the_hook_path_gives_the_same_numbers_as_the_head(planted):
    """A model that cannot be split after the layer is rerun whole with a hook: same logits."""
    e = planted.explanation
    fast = Deleter(planted.model, "block3", planted.shapes.data.images, e.labels, e.assignments, "mean")
    slow = Deleter(planted.model, "block3", planted.shapes.data.images, e.labels, e.assignments, "mean")
    slow.head = None
    rows, deleted = np.arange(0, 800, 7), [0, 3, 5]
    torch.testing.assert_close(fast.logits(rows, deleted), slow.logits(rows, deleted), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls, own, other", [(0, "hstripes", "vstripes"), (1, "vstripes", "hstripes")])
def test_deleting_a_class_own_shape_hurts_it_more_than_deleting_another_class_shape(planted, cls, own, other):
    """Expectation from the masks: classes 0 and 1 differ by one shape each; deleting the prototypes of a class's
    own stripes hurts it more than deleting the other class's stripes. (Classes 2 and 3 are left out: the same
    textured prototypes cover checker in one and frame in the other, so their shapes have no prototypes of their
    own.) "Hurts" is measured on the class's log-odds, which a confident class's probability would hide."""
    e = planted.explanation
    mine, theirs = _shape_prototypes(planted, cls, {own}), _shape_prototypes(planted, 1 - cls, {other})
    assert mine and theirs and not set(mine) & set(theirs)
    rows = np.flatnonzero(e.labels == cls)
    deleter = Deleter(planted.model, "block3", planted.shapes.data.images, e.labels, e.assignments)

    def log_odds(logits: torch.Tensor) -> torch.Tensor:
        rest = torch.cat([logits[:, :cls], logits[:, cls + 1:]], 1)
        return logits[:, cls] - torch.logsumexp(rest, 1)

    base = log_odds(deleter.logits(rows))
    drop = {name: float((base - log_odds(deleter.logits(rows, ks))).mean()) for name, ks in
            (("own", mine), ("other", theirs))}
    assert drop["own"] > drop["other"] + 1.0, drop


def test_a_random_claim_sits_near_the_middle_of_random_sets(digits_run):
    """A 'claim' drawn at random is one more random set: its percentile averages about 0.5."""
    e = digits_run.explanation
    final = digits_run.explanation.checkpoints[-1].path
    model = SmallCNN(1, 10, pools=1)
    model.load_state_dict(torch.load(final))
    deleter = Deleter(model.eval(), "block3", digits_run.probe.images, e.labels, e.assignments)
    rng = np.random.default_rng(0)
    percentiles = []
    for c in range(10):
        rows = np.flatnonzero(e.labels == c)
        claim = sorted(rng.choice(np.unique(e.assignments[rows]), 3, replace=False).tolist())
        percentiles.append(delete_and_compare(deleter, "drivers", c, None, rows, claim, 40, rng).percentile)
    assert 0.25 <= np.mean(percentiles) <= 0.75, percentiles


def test_random_sets_are_matched_in_count_and_area(planted):
    e = planted.explanation
    rows = np.flatnonzero(e.labels == 2)
    deleter = Deleter(planted.model, "block3", planted.shapes.data.images, e.labels, e.assignments)
    claim = [d.prototype for d in e.drivers if d.cls == 2][:3]
    result = delete_and_compare(deleter, "drivers", 2, None, rows, claim, 30, np.random.default_rng(1))
    assert result.area == pytest.approx(covered_area(e.assignments, rows, claim))
    assert result.random_area == pytest.approx(result.area, rel=0.25)


def test_every_run_carries_its_deletion_tests(planted):
    results = planted.explanation.faithfulness_results
    drivers = [r for r in results if r.kind == "drivers"]
    assert {r.a for r in drivers} == {d.cls for d in planted.explanation.drivers}
    assert all(r.static_effect is not None and 0 <= r.percentile <= 1 and 0 < r.p <= 1 for r in drivers)
    assert all(r.p == pytest.approx((1 + round((1 - r.percentile) * 50)) / 51, abs=0.021) for r in drivers)


def test_faithfulness_of_a_saved_run_equals_the_run_own(planted):
    again = run_faithfulness(planted.explanation, planted.model, planted.shapes.data)
    assert [(r.kind, r.a, r.b, r.prototypes) for r in again] == \
        [(r.kind, r.a, r.b, r.prototypes) for r in planted.explanation.faithfulness_results]
    np.testing.assert_allclose([r.effect for r in again], [r.effect for r in planted.explanation.faithfulness_results],
                               atol=1e-5)


# --- bad input -------------------------------------------------------------------------------------------
def test_a_model_of_another_architecture_is_refused(planted):
    with pytest.raises(FaithfulnessError, match="outputs but the run has 4 classes"):
        run_faithfulness(planted.explanation, SmallCNN(1, 10, pools=1, width=16), planted.shapes.data)


def test_a_model_without_the_final_weights_is_refused(planted):
    with pytest.raises(FaithfulnessError, match="load the run's final checkpoint"):
        run_faithfulness(planted.explanation, SmallCNN(1, 4, pools=1, width=16), planted.shapes.data)


def test_probe_data_of_another_size_is_refused(planted):
    smaller = planted.shapes.data.subset(torch.arange(100), "fewer")
    with pytest.raises(FaithfulnessError, match="explained 800 probe samples but 100 were given"):
        run_faithfulness(planted.explanation, planted.model, smaller)


def test_an_unknown_deletion_is_refused(planted):
    with pytest.raises(FaithfulnessError, match="Unknown deletion 'blur'; choose one of zero, mean"):
        run_faithfulness(planted.explanation, planted.model, planted.shapes.data, deletion="blur")


def test_a_class_too_small_to_test_is_skipped_and_named(planted):
    import dataclasses

    e = planted.explanation
    strict = dataclasses.replace(e, config=e.config.model_copy(update={"min_scope_samples": 500}))
    with pytest.warns(UserWarning, match="drivers of class 0: 200 samples < 500; not tested for faithfulness"):
        assert run_faithfulness(strict, planted.model, planted.shapes.data) == []
