"""Unit tests of the sweep's formulas on tiny hand-made tensors with hand-computed answers."""

import numpy as np
import torch

from i2x_plugin.progress import (
    Trajectory,
    class_pairs,
    confusion_matrix,
    learning_groups,
    prototype_intensity,
    ridge_beta,
    ridge_betas,
)


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


def test_ridge_matches_closed_form_with_centring():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 2))
    xc, yc = x - x.mean(0), y - y.mean(0)
    closed = np.linalg.solve(xc.T @ xc + 1.0 * np.eye(3), xc.T @ yc)
    np.testing.assert_allclose(ridge_beta(x, y, alpha=1.0), closed, atol=1e-8)


def test_ridge_recovers_a_planted_linear_map():
    rng = np.random.default_rng(1)
    true = np.array([[2.0, -1.0], [0.0, 0.5], [-1.0, 0.0]])
    x = rng.normal(size=(500, 3))
    np.testing.assert_allclose(ridge_beta(x, x @ true, alpha=1e-6), true, atol=1e-4)


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


def test_ridge_betas_shapes_and_scopes():
    rng = np.random.default_rng(0)
    steps, n, k, c = 2, 30, 4, 3
    labels = np.repeat(np.arange(c), n // c)
    groups = np.where(np.arange(n) % 2 == 0, 0, -1)[None].repeat(steps, 0)
    betas = ridge_betas(rng.normal(size=(steps, n, k)), rng.normal(size=(steps, n, c)), labels, groups, c)
    assert betas.step.shape == (steps, k, c)
    assert betas.per_class.shape == (steps, c, k, c)
    assert betas.per_pair.shape == (steps, len(class_pairs(c)), k, c)
    assert set(betas.per_group) == {(t, cls, 0) for t in range(steps) for cls in range(c)}
