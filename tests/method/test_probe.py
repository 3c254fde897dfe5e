"""Probe data read by index in batches: Datasets and DataLoaders explained without materialising the images."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, SubsetRandomSampler

from i2x_plugin.method.probe import ProbeSet


class ItemByItem(Dataset):
    """The digits probe set served one ``(image, label)`` at a time, counting the images alive at once."""

    def __init__(self, data, item=None):
        self.data, self.item = data, item
        self.alive = self.most_alive = 0

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):
        if self.item is not None:
            return self.item(self.data, i)
        image = self.data.images[i].clone()
        self.alive += 1
        self.most_alive = max(self.most_alive, self.alive)
        weakref.finalize(image, self._freed)
        return image, int(self.data.labels[i])

    def _freed(self) -> None:
        self.alive -= 1


def _assert_same_explanation(a, b) -> None:
    for name in a._ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        if np.issubdtype(x.dtype, np.floating):
            np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(y, x, err_msg=name)
    assert b.uncertain == a.uncertain and b.separators == a.separators and b.exemplars == a.exemplars


@pytest.fixture(scope="module")
def streamed(digits_run):
    """The shared digits run explained again from a Dataset read item by item (batch size 64)."""
    dataset = ItemByItem(digits_run.probe)
    explanation = digits_run.i2x(batch_size=64).explain(digits_run.checkpoint_dir, dataset)
    return dataset, explanation


def test_a_dataset_gives_the_explanation_of_tensors_in_memory(digits_run, streamed):
    _assert_same_explanation(digits_run.explanation, streamed[1])  # explained from the ImageDataset's tensors


def test_at_most_one_batch_of_images_is_in_memory(digits_run, streamed):
    dataset, _ = streamed
    assert len(dataset) == 597 and dataset.most_alive <= 64


def test_a_shuffling_dataloader_is_read_in_index_order_with_a_warning(digits_run, streamed):
    loader = DataLoader(ItemByItem(digits_run.probe), batch_size=32, shuffle=True)
    with pytest.warns(UserWarning, match="shuffles; I2X reads its dataset in index order"):
        explanation = digits_run.i2x(batch_size=64).explain(digits_run.checkpoint_dir, loader)
    _assert_same_explanation(streamed[1], explanation)


def test_streamed_prototypes_equal_prototypes_fitted_in_memory(digits_run):
    """Both fit paths: every feature row (N·h·w ≤ pca_max_rows) and a seeded sample of rows."""
    from i2x_plugin.training.checkpoints import default_load_func

    default_load_func(digits_run.model, sorted(digits_run.checkpoint_dir.glob("*.pt"))[-1])
    for rows in (200_000, 1000):
        i2x = digits_run.i2x(pca_max_rows=rows, batch_size=100)
        streamed = i2x.fit_prototypes(ItemByItem(digits_run.probe))
        in_memory = i2x.fit_prototypes(digits_run.probe.images)
        np.testing.assert_array_equal(streamed.assignments, in_memory.assignments)
        np.testing.assert_array_equal(streamed.centers, in_memory.centers)


def test_probe_images_are_read_back_by_index(digits_run):
    probe = ProbeSet.from_data(ItemByItem(digits_run.probe))
    images, labels = probe.read([5, 2, 400])
    torch.testing.assert_close(images, digits_run.probe.images[[5, 2, 400]])
    assert labels.tolist() == digits_run.probe.labels[[5, 2, 400]].tolist()


# --- bad input ------------------------------------------------------------------------------------------------
def _item_as_dict(data, i):
    return {"image": data.images[i], "label": int(data.labels[i])}


def _item_with_mask(data, i):
    return data.images[i], int(data.labels[i]), data.images[i] > 0


def _item_as_pil(data, i):
    from PIL import Image

    return Image.fromarray((data.images[i, 0].numpy() * 255).astype(np.uint8)), int(data.labels[i])


def _item_with_float_label(data, i):
    return data.images[i], float(data.labels[i])


def _item_without_channels(data, i):
    return data.images[i, 0], int(data.labels[i])


@pytest.mark.parametrize("item, error, message", [
    (_item_as_dict, TypeError, r"dataset\[0\] is a dict with keys \['image', 'label'\]; I2X needs \(image, label\)"),
    (_item_with_mask, TypeError, r"dataset\[0\] is a tuple of 3 parts; I2X needs \(image, label\) items"),
    (_item_as_pil, TypeError, r"dataset\[0\]\[0\] is a PIL.Image.Image, not a tensor; add torchvision.transforms"),
    (_item_with_float_label, TypeError, r"dataset\[0\]\[1\] is \d\.0; I2X needs an integer class label"),
    (_item_without_channels, ValueError, r"dataset\[0\]\[0\] has shape \(8, 8\); I2X needs one image \(C, H, W\)"),
])
def test_items_that_are_not_image_and_label(digits_run, item, error, message):
    with pytest.raises(error, match=message):
        digits_run.i2x().explain(digits_run.checkpoint_dir, ItemByItem(digits_run.probe, item))


def test_a_sampler_that_picks_samples_is_refused(digits_run):
    loader = DataLoader(digits_run.probe, sampler=SubsetRandomSampler(range(100)))
    with pytest.raises(ValueError, match="sampler is a SubsetRandomSampler.*torch.utils.data.Subset"):
        digits_run.i2x().explain(digits_run.checkpoint_dir, loader)


def test_an_iterable_dataset_is_refused(digits_run):
    class Stream(IterableDataset):
        def __iter__(self):
            return iter(zip(digits_run.probe.images, digits_run.probe.labels))

    with pytest.raises(TypeError, match="Stream is an IterableDataset; I2X reads probe samples by index"):
        digits_run.i2x().explain(digits_run.checkpoint_dir, Stream())


def test_a_dataset_that_reorders_between_passes_is_refused(digits_run):
    class Reshuffles(ItemByItem):
        """Serves a new random order of the samples on every pass over them."""

        def __getitem__(self, i):
            if i == 0:
                self.order = torch.randperm(len(self.data))
            return self.data.images[self.order[i]], int(self.data.labels[self.order[i]])

    with pytest.raises(ValueError, match="gave other samples at checkpoint .* same samples in the same order"):
        digits_run.i2x().explain(digits_run.checkpoint_dir, Reshuffles(digits_run.probe))
