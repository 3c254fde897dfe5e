"""Fine-tuning from a checkpoint: the base's learning rate and optimiser state carried over, pair scores, errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from i2x_plugin.training.checkpoints import checkpoint_lr, default_load_func, optimizer_state_path, resolve_checkpoints
from i2x_plugin.training.data import load_digits_8x8
from i2x_plugin.improve.finetune import FineTuneConfig, ImproveError, check_disjoint, evaluate, fine_tune, make_optimizer
from i2x_plugin.training.models import SmallCNN
from i2x_plugin.training.loop import seeded, train_with_checkpoints


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cosine_run(one_torch_thread, tmp_path_factory):
    """SmallCNN trained 3 epochs on 600 digits with a cosine learning rate from 3e-3 to 1e-4."""
    data = load_digits_8x8()
    train = data.subset(range(600), "train")
    with seeded(0):
        model = SmallCNN(1, 10, pools=1)
    directory = tmp_path_factory.mktemp("cosine")
    train_with_checkpoints(model, train, directory, epochs=3, lr=3e-3, final_lr=1e-4, seed=0)
    return model, train, data.subset(range(600, 900), "test"), resolve_checkpoints(directory)


def test_training_records_the_schedule_and_the_final_optimiser_state(cosine_run):
    _, _, _, infos = cosine_run
    lrs = [checkpoint_lr(i.path) for i in infos]
    assert lrs[0] == 3e-3 and lrs[-1] == pytest.approx(1e-4) and lrs[1] > lrs[2] > lrs[3]  # cosine decay
    assert [optimizer_state_path(i.path) is not None for i in infos] == [False, False, False, True]
    assert len(infos) == 4  # the optimiser state file is not taken for a checkpoint


def test_fine_tuning_continues_at_the_base_lr_with_the_saved_state(cosine_run):
    model, _, _, infos = cosine_run
    final = infos[-1].path
    default_load_func(model, final)
    optimizer = make_optimizer(model, FineTuneConfig(), final)  # lr='base', optimizer_state='carry'
    saved = torch.load(optimizer_state_path(final), weights_only=True)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    carried = optimizer.state_dict()["state"]
    assert carried.keys() == saved["state"].keys()
    assert all(torch.equal(carried[k]["exp_avg"], saved["state"][k]["exp_avg"]) for k in saved["state"])
    fresh = make_optimizer(model, FineTuneConfig(lr=1e-3, optimizer_state="fresh"), final)
    assert not fresh.state_dict()["state"] and fresh.param_groups[0]["lr"] == 1e-3


def test_missing_lr_or_state_and_a_mismatched_optimiser_say_how_to_fix_it(cosine_run, tmp_path):
    model, _, _, infos = cosine_run
    bare = tmp_path / "ckpt.pt"
    shutil.copy(infos[-1].path, bare)  # no sidecar, no optimiser state
    with pytest.raises(ImproveError, match="lr='base' needs the learning rate recorded .*--lr 1e-4"):
        make_optimizer(model, FineTuneConfig(), bare)
    with pytest.raises(ImproveError, match="optimizer_state='carry' needs the optimiser state .* --optimizer-state "
                                           "fresh"):
        make_optimizer(model, FineTuneConfig(lr=1e-4), bare)
    with pytest.raises(ImproveError, match="Adam's, but optimizer='sgd'"):
        make_optimizer(model, FineTuneConfig(optimizer="sgd"), infos[-1].path)


def test_pair_scores_are_the_two_logit_loss_and_margin(cosine_run):
    model, _, test, infos = cosine_run
    default_load_func(model, infos[-1].path)
    scores = evaluate(model, test, (3, 8))
    with torch.no_grad():
        logits = model(test.images)
    y = test.labels
    keep = (y == 3) | (y == 8)
    two, target = logits[keep][:, [3, 8]], (y[keep] == 8).long()
    assert scores["pair_loss"] == pytest.approx(float(torch.nn.functional.cross_entropy(two, target)), rel=1e-5)
    sign = 1 - 2 * target.float()
    assert scores["pair_margin"] == pytest.approx(float((sign * (two[:, 0] - two[:, 1])).mean()), rel=1e-5)
    preds = logits.argmax(1)
    assert scores["a_to_b"] == int(((y == 3) & (preds == 8)).sum()) and scores["accuracy"] == pytest.approx(
        float((preds == y).float().mean()))


def test_every_schedule_of_a_seed_shares_its_epoch_orders(cosine_run):
    model, train, test, infos = cosine_run
    keep = np.ones(len(train), dtype=bool)
    config = FineTuneConfig()
    # A removal set that removes nothing is the full epoch: same model, to the bit.
    runs = fine_tune(model, infos[-1].path, train, test, (3, 8), {"full->full": ("full", "full"),
                                                                  "none->full": ("none", "full")},
                     {"none": lambda seed: keep}, config, [0])
    assert runs[0].accuracy == runs[1].accuracy and runs[0].pair_loss == runs[1].pair_loss
    with pytest.raises(ImproveError, match="no removal set"):
        fine_tune(model, infos[-1].path, train, test, (3, 8), {"x->full": ("x", "full")}, {}, config, [0])


def test_a_validation_split_overlapping_the_test_split_is_refused():
    data = load_digits_8x8()
    with pytest.raises(ImproveError, match="The test split overlaps the validation split: 50 of its 100 images"):
        check_disjoint(data.subset(range(0, 150)), data.subset(range(100, 200)), ("validation split", "test split"))
