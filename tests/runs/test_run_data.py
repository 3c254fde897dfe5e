"""The run's data: stratified, disjoint splits and the probe set."""

from __future__ import annotations

import numpy as np

from i2x_plugin.runs.run_config import RunConfig
from i2x_plugin.runs.run_data import load_run_data, stratified_indices


def test_stratified_split_is_disjoint_and_keeps_class_shares():
    labels = np.repeat(np.arange(4), [100, 50, 30, 20])
    rest, test = stratified_indices(labels, 40, seed=0)
    assert not set(rest) & set(test) and len(rest) + len(test) == len(labels)
    assert np.bincount(labels[test]).tolist() == [20, 10, 6, 4]
    again, _ = stratified_indices(labels, 40, seed=0)
    assert len(stratified_indices(labels, 7, seed=1)[1]) == 7
    assert np.array_equal(rest, again)


def test_probe_is_the_training_split_or_a_stratified_subset():
    data = load_run_data(RunConfig(dataset="digits", probe_size=None))
    assert np.array_equal(data.probe_index, data.train_index)
    assert not set(data.train_index) & set(data.test_index)
    small = load_run_data(RunConfig(dataset="digits", probe_size=500))
    assert len(small.probe) == 500 and set(small.probe_index) <= set(small.train_index)
    counts = np.bincount(small.probe.labels.numpy(), minlength=10)
    assert counts.min() >= 45 and counts.max() <= 55
