"""The run's data: the data set split (stratified, seeded) into training and held-out test splits, and the
probe set I2X explains (the training split, or a stratified subset of ``probe_size``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..training.data import ImageDataset, load_dataset
from ..training.shortcut import PlantedShortcut, ShortcutError, plant_shortcut
from .run_config import RunConfig, RunError

_OWN_TEST_SPLIT = ("fashion-mnist", "mnist", "cifar10")  # data sets that ship their own test split


def stratified_indices(labels: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split positions into (rest, chosen): exactly ``count`` chosen, each class in proportion to its size
    (largest-remainder rounding), at random within the class. Both sorted; seeded."""
    rng = np.random.default_rng(seed)
    classes, sizes = np.unique(labels, return_counts=True)
    exact = sizes * count / max(len(labels), 1)
    quota = np.floor(exact).astype(int)
    quota[np.argsort(-(exact - quota), kind="stable")[: count - quota.sum()]] += 1
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota)]
    picked = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    return np.setdiff1d(np.arange(len(labels)), picked), picked


@dataclass(frozen=True)
class RunData:
    """The run's training split, its held-out test split and the probe set I2X explains."""

    train: ImageDataset
    test: ImageDataset
    probe: ImageDataset
    train_index: np.ndarray  # into the training source
    test_index: np.ndarray  # into the test source (the same source unless the data set ships a test set)
    probe_index: np.ndarray  # into the training source
    separate_test_source: bool
    shortcut: PlantedShortcut | None = None  # the training split with the planted marker (config.shortcut)

    def split_arrays(self) -> dict[str, np.ndarray | bool]:
        """What ``split.npz`` holds: the indices, and with a shortcut which training and probe samples are marked."""
        out = {"train": self.train_index, "test": self.test_index, "probe": self.probe_index,
               "separate_test_source": self.separate_test_source}
        if self.shortcut is not None:
            out.update(train_marked=self.shortcut.marked, probe_marked=self.probe_marked)
        return out

    @property
    def probe_marked(self) -> np.ndarray | None:
        """``(len(probe),)`` bool: which probe samples carry the planted marker (None without a shortcut)."""
        if self.shortcut is None:
            return None
        return self.shortcut.marked[np.searchsorted(self.train_index, self.probe_index)]


def load_run_data(config: RunConfig) -> RunData:
    """Load the data set, split it (stratified, seeded) and choose the probe set."""
    name = config.dataset
    try:
        source = load_dataset(name, train=True, root=config.data_root)
        separate = name in _OWN_TEST_SPLIT
        test_source = load_dataset(name, train=False, root=config.data_root) if separate else source
    except (FileNotFoundError, RuntimeError) as err:  # data.py's messages name the offline choices
        raise RunError(str(err)) from err
    labels = source.labels.numpy()
    if separate:
        train_index, test_index = np.arange(len(source)), np.arange(len(test_source))
    else:
        train_index, test_index = stratified_indices(labels, int(round(config.test_fraction * len(labels))),
                                                     config.seed)
    probe_index = train_index
    if config.probe_size is not None and len(train_index) > config.probe_size:
        _, chosen = stratified_indices(labels[train_index], config.probe_size, config.seed + 1)
        probe_index = train_index[chosen]
    base = Path(name).name if Path(name).is_dir() else name
    train, probe, planted = source.subset(train_index, f"{base}-train"), source.subset(probe_index, base), None
    if config.shortcut is not None:  # the marker goes on training images only; the test split stays clean
        try:
            planted = plant_shortcut(train, config.shortcut)
        except ShortcutError as err:
            raise RunError(str(err)) from err
        train = planted.data
        probe = train.subset(np.searchsorted(train_index, probe_index), base)
    return RunData(
        train=train,
        test=test_source.subset(test_index, f"{base}-test"),
        probe=probe,  # the explanation's (and the graph's) data set name
        train_index=train_index, test_index=test_index, probe_index=probe_index, separate_test_source=separate,
        shortcut=planted,
    )
