"""Step 9's fine-tuning schedules and table on the real digits run (2 seeds), and their bad-input errors."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import torch

from i2x_plugin.checkpoints import default_load_func
from i2x_plugin.data import load_digits_8x8
from i2x_plugin.improve import (SCHEDULES, ImproveConfig, ImproveError, ImproveResult, ScheduleRun, epoch_order,
                                improve, run_schedules)

CONFIG = ImproveConfig(seeds=2, lr=1e-3, min_positions="auto")  # 4×4 maps: ≥ 1 position can empty a class


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """These machines share 2 cores: one torch thread avoids oversubscription (≈10× faster under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def split():
    """The digits run's training split, and a test split disjoint from it (the run's probe digits)."""
    data = load_digits_8x8()
    return data.subset(range(1200), "digits-train"), data.subset(range(1200, 1797), "digits-test")


@pytest.fixture(scope="module")
def outcome(digits_run, split, tmp_path_factory):
    train, test = split
    model = copy.deepcopy(digits_run.model)
    save_dir = tmp_path_factory.mktemp("finetuned")
    result, curation = improve(digits_run.explanation, model, train, test, CONFIG, save_dir=save_dir)
    return result, curation, model


def test_table_has_every_schedule_seed_and_the_paired_comparison(outcome):
    result, curation, _ = outcome
    data = json.loads(json.dumps(result.to_dict()))  # JSON-ready
    assert set(data["table"]) == set(SCHEDULES)
    for row in data["table"].values():
        assert len(row["accuracy_pct"]["values"]) == 2 and len(row["confusions"]["values"]) == 2
        assert row["accuracy_pct"]["std"] >= 0 and 0 <= row["accuracy_pct"]["mean"] <= 100
    assert len(result.runs) == 2 * len(SCHEDULES)
    comp = data["comparison"]
    guided = {r.seed: r for r in result.of("curated->full")}
    base = {r.seed: r for r in result.of("full->full")}
    assert comp["confusions"]["differences"] == [guided[s].confusions - base[s].confusions for s in (0, 1)]
    assert comp["accuracy_pct"]["wins"] + comp["accuracy_pct"]["losses"] + comp["accuracy_pct"]["ties"] == 2
    assert 0 <= comp["confusions"]["sign_test_p"] <= 1
    assert data["curation"]["removed"] == len(curation.removed) and data["curation"]["pair"] == list(curation.target.pair)
    assert data["verdict"]["text"] and isinstance(data["verdict"]["helped"], bool)
    text = result.format_table()
    assert "curated→full" in text and "full→full" in text and "start (final checkpoint)" in text
    assert "<table>" in result.to_html() and "| curated→full |" in result.to_markdown()
    for run in result.runs:  # every fine-tuned model was saved with its sidecar
        meta = json.loads(open(run.checkpoint.replace(".pt", ".json")).read())
        assert meta["schedule"] == run.schedule and meta["seed"] == run.seed and meta["accuracy"] == run.accuracy


def test_schedules_are_deterministic_per_seed_and_reuse_prefixes_exactly(digits_run, split, outcome):
    train, test = split
    result, curation, model = outcome
    checkpoint = digits_run.explanation.checkpoints[-1].path
    again, _ = run_schedules(model, checkpoint, train, test, curation, CONFIG, seeds=[1])
    assert [dataclasses.replace(r, checkpoint=None) for r in result.runs if r.seed == 1] == again
    # curated->full alone (no shared prefix to reuse) equals the one computed after 'curated'.
    alone, _ = run_schedules(model, checkpoint, train, test, curation,
                             CONFIG.model_copy(update={"schedules": ("curated->full",)}), seeds=[0])
    assert alone == [dataclasses.replace(r, checkpoint=None) for r in result.of("curated->full")[:1]]
    # Seeds differ; a curated epoch is the full epoch's order with the removed samples skipped.
    assert not torch.equal(epoch_order(len(train), 0, 0), epoch_order(len(train), 1, 0))
    full, cur = epoch_order(len(train), 0, 1), epoch_order(len(train), 0, 1, curation.keep_mask)
    assert torch.equal(full[curation.keep_mask[full.numpy()]], cur)


def test_start_row_is_the_final_checkpoint(outcome, split, digits_run):
    result, curation, model = outcome
    _, test = split
    default_load_func(model, digits_run.explanation.checkpoints[-1].path)
    with torch.no_grad():
        preds = model(test.images).argmax(1)
    assert result.start.accuracy == pytest.approx(float((preds == test.labels).float().mean()))
    a, b = curation.target.pair
    y = test.labels
    assert result.start.confusions == int(((y == a) & (preds == b)).sum() + ((y == b) & (preds == a)).sum())


def test_the_verdict_says_plainly_when_curated_full_did_not_help():
    def runs(schedule, accs, confs):
        return [ScheduleRun(schedule, s, a, c, 0) for s, (a, c) in enumerate(zip(accs, confs))]

    result = ImproveResult(
        run_id="x", dataset="d", model_name="m", config=ImproveConfig(seeds=3, schedules=("full->full", "curated->full")),
        curation={"pair": [2, 7], "pair_names": ["2", "7"], "prototypes": [4], "removed": 10, "train_size": 100,
                  "min_positions": 1},
        start=ScheduleRun("start", -1, 0.9, 5, 5),
        runs=runs("full->full", [0.95, 0.96, 0.94], [3, 2, 4]) + runs("curated->full", [0.94, 0.95, 0.94], [5, 4, 4]),
        train_size=100, test_size=50)
    verdict = result.verdict()
    assert verdict["helped"] is False
    assert "did NOT beat" in verdict["text"] and "did not reduce" in verdict["text"]
    assert "did NOT beat" in result.format_table()
    assert result.comparison()["confusions"]["differences"] == [2.0, 2.0, 0.0]


def test_test_split_overlapping_the_training_set_is_refused(digits_run, split):
    train, _ = split
    leaky = load_digits_8x8().subset(range(1100, 1300), "leaky-test")
    with pytest.raises(ImproveError, match="overlaps the training set: 100 of its 200"):
        improve(digits_run.explanation, copy.deepcopy(digits_run.model), train, leaky, CONFIG)


def test_a_frozen_model_cannot_be_fine_tuned(digits_run, split):
    train, test = split
    frozen = copy.deepcopy(digits_run.model).requires_grad_(False)
    with pytest.raises(ImproveError, match="all .* parameter tensors are frozen .*requires_grad_"):
        improve(digits_run.explanation, frozen, train, test, CONFIG)


def test_a_curated_set_for_another_training_set_is_refused(digits_run, split, outcome):
    train, test = split
    _, curation, model = outcome
    with pytest.raises(ImproveError, match="another training set"):
        run_schedules(model, digits_run.explanation.checkpoints[-1].path, train.subset(range(100)), test, curation,
                      CONFIG)


def test_config_rejects_unknown_schedules_and_single_seed():
    with pytest.raises(ValueError, match="unknown schedule"):
        ImproveConfig(schedules=("full->curated->full",))
    with pytest.raises(ValueError):
        ImproveConfig(seeds=1)
