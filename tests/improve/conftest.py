"""Fixtures of the improvement stage's tests: the shared digits run's training set (what step 9 curates)."""

from __future__ import annotations

import pytest

from i2x_plugin.training.data import ImageDataset


@pytest.fixture(scope="session")
def digits_train_set(digits_run) -> ImageDataset:
    """The 1,200 digits the shared run trained on."""
    return digits_run.train
