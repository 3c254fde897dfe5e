"""The sweep's formulas on tiny hand-made tensors with hand-computed answers, and the sweep itself on real
checkpoints against a model loaded and attributed by hand."""

import copy
import dataclasses

import numpy as np
import pytest
import torch

from i2x_plugin.adapters import CaptumAdapter
from i2x_plugin.training.checkpoints import default_load_func, resolve_checkpoints
from i2x_plugin.method.progress import Trajectory, confusion_matrix, learning_groups, prototype_intensity, sweep


def test_intensity_is_mean_saliency_per_prototype_and_zero_when_absent():
    saliency = torch.tensor([[[0.2, 0.4], [1.0, 0.0]]])
    assignments = torch.tensor([[[0, 0], [2, 0]]])  # prototype 1 absent, prototype 3 absent
    got = prototype_intensity(saliency, assignments, k=4)
    expected = torch.tensor([[(0.2 + 0.4 + 0.0) / 3, 0.0, 1.0, 0.0]])
    assert torch.allclose(got, expected)


def test_deltas_are_consecutive_differences():
    intens = np.array([[[0.0, 1.0]], [[0.5, 0.5]], [[1.0, 0.0]]], dtype=np.float32)  # T=3, N=1, K=2
    conf = np.array([[[0.9, 0.1]], [[0.6, 0.4]], [[0.2, 0.8]]], dtype=np.float32)
    traj = Trajectory(intens, conf, np.zeros((3, 1), int), np.zeros((3, 2, 2), int))
    d_p, d_y = traj.deltas()
    np.testing.assert_allclose(d_p, [[[0.5, -0.5]], [[0.5, -0.5]]])
    np.testing.assert_allclose(d_y, [[[-0.3, 0.3]], [[-0.4, 0.4]]], atol=1e-6)


def test_confusion_matrix_rows_are_true_classes():
    cm = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]), 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 0]])


def test_groups_find_two_planted_learning_patterns_per_class():
    rng = np.random.default_rng(0)
    fast = rng.normal([0.5, -0.5], 0.01, size=(30, 2))
    slow = rng.normal([0.0, 0.0], 0.01, size=(30, 2))
    delta = np.concatenate([fast, slow])[None]  # one step, 60 samples of class 0
    groups = learning_groups(delta, np.zeros(60, int), num_classes=2)
    assert len(set(groups[0, :30])) == 1 and len(set(groups[0, 30:])) == 1
    assert groups[0, 0] != groups[0, 30] and -1 not in groups[0]


# --- the sweep itself, on the digits run's real checkpoints -----------------------------------------

N, K = 40, 16  # probe samples, prototypes (the digits run's K)


@pytest.fixture(scope="module")
def replay(digits_run):
    """The digits checkpoints, and per checkpoint the raw Captum maps and softmax of a model loaded by hand."""
    model = copy.deepcopy(digits_run.model)
    adapter = CaptumAdapter(model, "block3")
    x, y = digits_run.probe.images[:N], digits_run.probe.labels[:N]
    infos = resolve_checkpoints(digits_run.checkpoint_dir)
    raw, probs = [], []
    for info in infos:
        default_load_func(model, info.path)
        model.eval()
        raw.append(adapter.attribute(x, y)[:, 0].numpy())
        with torch.no_grad():
            probs.append(torch.softmax(model(x), 1).numpy())
    assignments = digits_run.explanation.assignments[:N]
    return model, adapter, infos, x, y, assignments, np.stack(raw), np.stack(probs)


def _batches(x: torch.Tensor, y: torch.Tensor, size: int = 64) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]


def _minmax(maps: np.ndarray) -> np.ndarray:
    low, high = maps.min((-2, -1), keepdims=True), maps.max((-2, -1), keepdims=True)
    return np.where(high > low, (maps - low) / np.where(high > low, high - low, 1), 0.0)


def test_sweep_puts_each_checkpoint_at_its_index_and_maps_on_their_assignments(replay):
    model, adapter, infos, x, y, assignments, raw, probs = replay
    forwards = []
    handle = model.register_forward_hook(lambda *_: forwards.append(1))
    order = [3, 0, 4, 1, 2, *range(5, len(infos))]
    try:  # checkpoints given out of order, batches that do not divide N
        got = sweep(model, adapter.attribute, [infos[i] for i in order], default_load_func,
                    _batches(x, y, 7), assignments, y.numpy(), K, 10, keep_maps=True)
    finally:
        handle.remove()
    assert len(forwards) == len(infos) * 6  # one forward per batch: the logits are caught from the attribution's
    np.testing.assert_allclose(got.maps, _minmax(raw), atol=1e-5)
    np.testing.assert_allclose(got.confidences, probs, rtol=1e-5, atol=1e-6)  # the logits equal model(x)
    np.testing.assert_array_equal(got.predictions, probs.argmax(2))
    for t in range(len(infos)):  # intensity = mean map over the sample's cells assigned to the prototype
        for i in range(N):
            for k in range(K):
                cells = got.maps[t, i][assignments[i] == k]
                assert got.intensities[t, i, k] == pytest.approx(cells.mean() if len(cells) else 0.0, abs=1e-6)
        expected = np.zeros((10, 10), int)
        for label, prediction in zip(y.tolist(), probs[t].argmax(1)):
            expected[label, prediction] += 1
        np.testing.assert_array_equal(got.confusion[t], expected)


def test_sweep_targets_the_prediction_when_asked(replay):
    model, adapter, infos, x, y, assignments, raw, probs = replay
    first = infos[:1]  # accuracy about 0.1: the prediction is mostly not the label
    got = sweep(model, adapter.attribute, first, default_load_func, _batches(x, y), assignments, y.numpy(), K, 10,
                target="prediction", keep_maps=True)
    default_load_func(model, first[0].path)
    predicted = torch.as_tensor(probs[0].argmax(1))
    assert (predicted != y).sum() > N // 2
    expected = adapter.attribute(x, predicted)[:, 0].numpy()
    np.testing.assert_allclose(got.maps[0], _minmax(expected), atol=1e-5)
    assert np.abs(got.maps[0] - _minmax(raw[0])).max() > 0.1  # not the label's maps


@pytest.mark.parametrize("mode", ["max", "sum", "none"])
def test_sweep_normalises_each_map_as_configured(replay, mode):
    model, adapter, infos, x, y, assignments, raw, _ = replay
    final_only = [dataclasses.replace(infos[-1], index=0)]  # a one-checkpoint sweep: its result at index 0

    def raised(inputs: torch.Tensor, target=None) -> torch.Tensor:
        """GradCAM's maps have a zero cell here, where 'max' is 'minmax'; raised maps have none and tell them apart."""
        return adapter.attribute(inputs, target) + 0.5

    got = sweep(model, raised, final_only, default_load_func, _batches(x, y), assignments, y.numpy(), K,
                10, normalization=mode, keep_maps=True)
    final = raw[-1] + 0.5
    assert (final.min((1, 2)) > 0).all()
    scale = {"max": final.max((1, 2)), "sum": final.sum((1, 2)), "none": np.ones(N)}[mode]
    np.testing.assert_allclose(got.maps[0], final / scale[:, None, None], rtol=1e-5, atol=1e-7)
