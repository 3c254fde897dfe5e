"""Unit tests of the sweep's formulas on tiny hand-made tensors with hand-computed answers."""

import numpy as np
import torch

from i2x_plugin.progress import Trajectory, confusion_matrix, learning_groups, prototype_intensity


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
