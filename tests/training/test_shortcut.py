"""The planted-shortcut data set: the marker goes where and on whom the spec says, seeded; bad specs are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from i2x_plugin.app.cli import main
from i2x_plugin.runs.run_config import RunConfig, RunError
from i2x_plugin.runs.run_data import load_run_data
from i2x_plugin.training.data import ImageDataset, load_mnist_5k
from i2x_plugin.training.shortcut import (ShortcutConfig, ShortcutError, held_out_versions, layer_mask,
                                          parse_shortcut, plant_shortcut)

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def mnist() -> ImageDataset:
    return load_mnist_5k().subset(np.random.default_rng(0).permutation(5000)[:1500])  # the file is sorted by class


@pytest.mark.parametrize("seed", SEEDS)
def test_the_marker_sits_on_the_chosen_share_of_a_and_b_only(mnist, seed):
    spec = parse_shortcut(f"a=3,b=8,rate=0.6,b_rate=0.2,size=4,row=2,col=20,seed={seed}")
    planted = plant_shortcut(mnist, spec)
    labels = mnist.labels.numpy()
    for cls, rate in ((3, 0.6), (8, 0.2)):
        assert planted.marked[labels == cls].sum() == round(rate * (labels == cls).sum())
    assert not planted.marked[(labels != 3) & (labels != 8)].any()
    masks = planted.masks()
    assert masks.shape == (len(mnist), 28, 28) and masks[planted.marked].sum((1, 2)).min() == 16
    stamped = planted.data.images[:, 0].numpy()
    assert np.all(stamped[torch.as_tensor(masks).numpy()] == 1.0)
    untouched = ~masks
    assert np.array_equal(stamped[untouched], mnist.images[:, 0].numpy()[untouched])  # nothing else changed
    again = plant_shortcut(mnist, spec)
    assert np.array_equal(again.marked, planted.marked) and torch.equal(again.data.images, planted.data.images)
    other = plant_shortcut(mnist, spec.model_copy(update={"seed": seed + 10}))
    assert not np.array_equal(other.marked, planted.marked)  # the seed decides which images are marked


def test_held_out_split_comes_clean_all_marked_and_b_only(mnist):
    spec = ShortcutConfig(a=3, b=8)
    versions = held_out_versions(mnist, spec)
    labels = mnist.labels.numpy()
    assert torch.equal(versions["clean"].data.images, mnist.images) and not versions["clean"].marked.any()
    assert versions["all"].marked.all()
    assert np.array_equal(versions["b_only"].marked, labels == 8)
    assert torch.equal(versions["b_only"].data.images[labels != 8], mnist.images[labels != 8])


@pytest.mark.parametrize("shape", ["square", "frame", "cross", "checker"])
def test_shapes_and_their_cells_at_the_layer_resolution(shape):
    spec = ShortcutConfig(a=0, b=1, shape=shape, size=4, row=4, col=8)
    mask = spec.mask(28, 28)
    assert mask[4:8, 8:12].any() and not mask[:4].any() and mask.sum() == spec.pattern().sum()
    at_7 = layer_mask(mask, (7, 7))
    assert np.flatnonzero(at_7.ravel()).tolist() == [1 * 7 + 2]  # the one 4×4 block it fills
    assert layer_mask(ShortcutConfig(a=0, b=1).mask(28, 28), (14, 14)).sum() == 4


def test_the_run_plants_on_training_images_only_and_records_which():
    config = RunConfig(dataset="digits", shortcut=ShortcutConfig(a=1, b=7, size=2, row=0, col=0))
    data = load_run_data(config)
    assert data.shortcut is not None and data.shortcut.marked.sum() == (data.train.labels.numpy() == 1).sum()
    assert data.probe_marked.sum() == (data.probe.labels.numpy() == 1).sum()
    assert float(data.probe.images[data.probe_marked][:, 0, :2, :2].min()) == 1.0
    clean = load_run_data(RunConfig(dataset="digits"))
    assert torch.equal(data.test.images, clean.test.images)  # the held-out split stays clean


@pytest.mark.parametrize("text, words", [
    ("a=3,b=3", "must differ"),
    ("a=3,b=8,rate=1.5", "rate=1.5 must lie in [0, 1]"),
    ("a=3,b=8,b_rate=-0.1", "b_rate=-0.1 must lie in [0, 1]"),
    ("a=3,b=8,colour=red", "unknown shortcut option(s) colour"),
    ("a=3,b=8,size", "is not key=value"),
    ("b=8", "a: Field required"),
])
def test_bad_specs_are_refused_with_the_fix(text, words):
    with pytest.raises(ShortcutError) as err:
        parse_shortcut(text)
    assert words in str(err.value)


@pytest.mark.parametrize("spec, words", [
    (ShortcutConfig(a=3, b=8, size=30), "larger than the 28×28 images; choose size ≤ 28"),
    (ShortcutConfig(a=3, b=8, size=4, row=26), "partly outside the 28×28 images; choose row ≤ 24"),
    (ShortcutConfig(a=3, b=12), "b=12 is not a class of"),
])
def test_a_marker_that_does_not_fit_or_a_missing_class_is_refused(mnist, spec, words):
    with pytest.raises(ShortcutError) as err:
        plant_shortcut(mnist, spec)
    assert words in str(err.value)
    with pytest.raises(RunError, match=words.split(";")[0][:20]):
        load_run_data(RunConfig(dataset="mnist-5k", shortcut=spec))


def test_cli_refuses_a_bad_shortcut_before_any_work(capsys, tmp_path):
    assert main(["run", "--shortcut", "a=3,b=8,rate=2", "--out", str(tmp_path), "--store", "none"]) == 2
    assert "rate=2.0 must lie in [0, 1]" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
