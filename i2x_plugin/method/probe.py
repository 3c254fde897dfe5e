"""The probe set I2X explains, read by index in batches: the images are never all in memory at once.

:meth:`ProbeSet.from_data` takes what a PyTorch user already has: an :class:`~i2x_plugin.training.data.ImageDataset`,
an ``(images, labels)`` pair of tensors, any map-style ``Dataset`` whose item ``i`` is ``(image, label)``,
or a ``DataLoader`` over one (its workers, collate function and memory pinning are reused). Sample ``i``
is ``dataset[i]`` at every checkpoint, so the order is the dataset's index order: a shuffling
``DataLoader`` is read in index order instead, with a warning, and any other sampler is refused.
Transforms must be deterministic (the same image for sample ``i`` on every pass).

Images are read batch by batch when a stage needs them (the prototype fit's sample, the assignment,
each checkpoint of the sweep) and read back by index for exemplars and the report. In-memory
tensors are sliced directly, with no per-item overhead.

>>> folder = torchvision.datasets.ImageFolder(root, transform=Compose([Resize((64, 64)), ToTensor()]))
>>> probe = ProbeSet.from_data(folder)         # folder.classes become the class names
>>> for x, y in probe.batches(256, range(0, 1024)): ...
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, RandomSampler, SequentialSampler, TensorDataset

from ..training.data import ImageDataset

ProbeLike = Union[ImageDataset, tuple[torch.Tensor, torch.Tensor], Dataset, DataLoader, "ProbeSet"]
Indices = Union[range, Sequence[int], np.ndarray]
_LOADER_OPTIONS = ("num_workers", "collate_fn", "pin_memory", "worker_init_fn", "multiprocessing_context",
                   "timeout", "prefetch_factor")


class ProbeSet(Dataset):
    """Labelled probe samples read by index, one batch at a time; itself a map-style ``Dataset`` of ``(image, label)``.

    Args:
        dataset: a map-style dataset of ``(image, label)`` items, image ``(C, H, W)`` float, label an int.
        name: the data set's name (it goes into the explanation and the graph).
        class_names: names of the classes, if known (default: ``dataset.class_names`` or ``dataset.classes``).
        loader_options: ``DataLoader`` keywords used for reading (``num_workers``, ``collate_fn``, ...).
    """

    def __init__(self, dataset: Dataset, name: str = "probe", class_names: Sequence[str] | None = None,
                 **loader_options: Any):
        if isinstance(dataset, IterableDataset):
            raise TypeError(f"{type(dataset).__name__} is an IterableDataset; I2X reads probe samples by index "
                            "(the same sample at every checkpoint, exemplars read back). Give a map-style Dataset "
                            "(with __getitem__ and __len__).")
        if not hasattr(dataset, "__len__"):
            raise TypeError(f"{type(dataset).__name__} has no __len__; I2X needs a map-style Dataset of "
                            "(image, label) items.")
        self.dataset, self.name = dataset, name
        names = class_names if class_names is not None else (
            getattr(dataset, "class_names", None) or getattr(dataset, "classes", None))
        self.class_names: tuple[str, ...] | None = tuple(str(c) for c in names) if names is not None else None
        self.loader_options = {k: v for k, v in loader_options.items() if v is not None}
        self._tensors = _tensors_of(dataset)

    @classmethod
    def from_data(cls, data: ProbeLike, class_names: Iterable[str] | None = None) -> "ProbeSet":
        """A :class:`ProbeSet` over ``data`` (see the module docstring for what is accepted)."""
        names = tuple(class_names) if class_names is not None else None
        if isinstance(data, ProbeSet):
            return data if names is None else ProbeSet(data.dataset, data.name, names, **data.loader_options)
        if isinstance(data, ImageDataset):
            return cls(data, data.name, names or data.class_names)
        if isinstance(data, tuple):
            if len(data) != 2:
                raise TypeError(f"A tuple of {len(data)} parts was given; give (images, labels).")
            images, labels = (torch.as_tensor(v) for v in data)
            _check_batch(images, labels, 0)
            return cls(TensorDataset(images, labels), "probe", names)
        if isinstance(data, DataLoader):
            return cls(data.dataset, _dataset_name(data.dataset), names, **_loader_options(data))
        if isinstance(data, Dataset):
            return cls(data, _dataset_name(data), names)
        raise TypeError(f"Cannot read probe data from a {type(data).__name__}. Give an ImageDataset, (images, "
                        "labels) tensors, a map-style Dataset of (image, label) items, or a DataLoader over one.")

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = _item(self.dataset, int(index))
        return image, label

    @property
    def images(self) -> torch.Tensor | "ProbeImages":
        """The images, indexable like an ``(N, C, H, W)`` tensor: the tensor itself when in memory, else a
        view that reads the indexed samples (e.g. the faithfulness test's few hundred)."""
        return self._tensors[0] if self._tensors is not None else ProbeImages(self)

    def check_first_item(self) -> tuple[int, ...]:
        """Validate ``dataset[0]`` before any long stage; returns the image shape ``(C, H, W)``."""
        if len(self) == 0:
            raise ValueError("The probe data set is empty; I2X needs labelled probe samples.")
        image, _ = _item(self.dataset, 0)
        return tuple(image.shape)

    def batches(self, batch_size: int, indices: Indices | None = None) -> "ProbeBatches":
        """Re-iterable ``(images, labels)`` batches of ``indices`` (default: all), in the given order."""
        return ProbeBatches(self, batch_size, range(len(self)) if indices is None else indices)

    def read(self, indices: Indices) -> tuple[torch.Tensor, torch.Tensor]:
        """The samples at ``indices`` as one batch (exemplars, the report): ``(n, C, H, W)``, ``(n,)``."""
        if len(indices) == 0:
            raise ValueError("No probe samples to read: give at least one index.")
        return next(iter(self.batches(len(indices), indices)))

    def _iterate(self, batch_size: int, indices: Indices) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self._tensors is not None:
            images, labels = self._tensors
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                index = slice(chunk.start, chunk.stop) if isinstance(chunk, range) else torch.as_tensor(chunk)
                yield images[index], labels[index]
            return
        loader = DataLoader(self.dataset, batch_size=batch_size, shuffle=False, sampler=_as_list(indices),
                            **self.loader_options)
        start = 0
        for batch in loader:
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise TypeError(f"The collated batch of probe samples {_first(indices, start)}… is a "
                                f"{type(batch).__name__}, not (images, labels); check the DataLoader's collate_fn.")
            x, y = (torch.as_tensor(v) for v in batch)
            _check_batch(x, y, _first(indices, start))
            start += len(x)
            yield x, y
            del batch, x, y  # before the next batch is read: one batch in memory, not two


class ProbeBatches:
    """``(images, labels)`` batches of a :class:`ProbeSet` in a fixed order; every ``iter()`` reads them afresh."""

    def __init__(self, probe: ProbeSet, batch_size: int, indices: Indices):
        self.probe, self.batch_size, self.indices = probe, batch_size, indices

    def __len__(self) -> int:
        return -(-len(self.indices) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.probe._iterate(self.batch_size, self.indices)


class ProbeImages:
    """Probe images read when indexed: ``view[i]`` is one ``(C, H, W)`` image, ``view[rows]`` or ``view[a:b]``
    a batch ``(n, C, H, W)``; nothing is kept."""

    def __init__(self, probe: ProbeSet):
        self.probe = probe

    def __len__(self) -> int:
        return len(self.probe)

    def __getitem__(self, index: int | slice | Indices | torch.Tensor) -> torch.Tensor:
        if isinstance(index, (int, np.integer)):
            return self.probe[int(index)][0]
        rows = range(*index.indices(len(self))) if isinstance(index, slice) else np.asarray(index).reshape(-1)
        return self.probe.read(rows)[0]


# --- checks ----------------------------------------------------------------------------------------------------


def _item(dataset: Dataset, index: int) -> tuple[torch.Tensor, int]:
    """``dataset[index]`` as ``(image tensor, int label)``, or a TypeError saying what the item is and how to fix it."""
    item = dataset[index]
    where = f"dataset[{index}]"
    if isinstance(item, dict):
        raise TypeError(f"{where} is a dict with keys {sorted(item)}; I2X needs (image, label) items. Wrap the "
                        "data set so that __getitem__ returns (item['image'], item['label']).")
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        what = f"a {type(item).__name__} of {len(item)} parts" if isinstance(item, (tuple, list)) else \
            f"a {type(item).__name__}"
        raise TypeError(f"{where} is {what}; I2X needs (image, label) items, image a (C, H, W) float tensor "
                        "and label an integer class.")
    image, label = item
    if not isinstance(image, (torch.Tensor, np.ndarray)):
        raise TypeError(f"{where}[0] is a {type(image).__module__}.{type(image).__name__}, not a tensor; add "
                        "torchvision.transforms.ToTensor() (or v2.ToImage() + v2.ToDtype(torch.float32, "
                        "scale=True)) to the data set's transform.")
    image = torch.as_tensor(image)
    if image.ndim != 3:
        raise ValueError(f"{where}[0] has shape {tuple(image.shape)}; I2X needs one image (C, H, W) per item.")
    if not torch.is_floating_point(image):
        raise TypeError(f"Probe images have integer dtype {image.dtype} ({where}[0]); convert them to float "
                        "(e.g. images.float() / 255) as the model expects.")
    label_tensor = torch.as_tensor(label)
    if label_tensor.numel() != 1 or torch.is_floating_point(label_tensor) or label_tensor.dtype == torch.bool:
        raise TypeError(f"{where}[1] is {label!r}; I2X needs an integer class label per item.")
    return image, int(label_tensor)


def _check_batch(images: torch.Tensor, labels: torch.Tensor, first: int) -> None:
    where = f"probe samples {first}…{first + len(images) - 1}"
    if images.ndim != 4:
        raise ValueError(f"Probe images must be (N, C, H, W); {where} are {tuple(images.shape)}.")
    if not torch.is_floating_point(images):
        raise TypeError(f"Probe images have integer dtype {images.dtype}; convert them to float "
                        "(e.g. images.float() / 255) as the model expects.")
    if labels.ndim != 1 or len(labels) != len(images) or torch.is_floating_point(labels):
        raise ValueError(f"Probe labels must be one integer per image; {where} have labels of shape "
                         f"{tuple(labels.shape)} and dtype {labels.dtype}.")


def _loader_options(loader: DataLoader) -> dict[str, Any]:
    """The reading options of a user's DataLoader; its sampler must read every sample once."""
    if loader.batch_size is None:
        raise TypeError("The DataLoader has a custom batch_sampler (or batch_size=None); I2X reads its dataset by "
                        "index. Pass the Dataset (or torch.utils.data.Subset(dataset, indices)) instead.")
    sampler = loader.sampler
    if isinstance(sampler, RandomSampler):
        if sampler.replacement or sampler.num_samples != len(loader.dataset):  # type: ignore[arg-type]
            raise ValueError("The DataLoader samples with replacement or a subset (RandomSampler with "
                             "replacement/num_samples); I2X explains every sample once. Pass the Dataset (or a Subset).")
        warnings.warn("The probe DataLoader shuffles; I2X reads its dataset in index order instead (sample i = "
                      "dataset[i] at every checkpoint). Pass shuffle=False to silence this.", UserWarning,
                      stacklevel=4)
    elif not isinstance(sampler, SequentialSampler):
        raise ValueError(f"The DataLoader's sampler is a {type(sampler).__name__}; I2X reads every sample of the "
                         "dataset once, in index order. To explain a subset pass torch.utils.data.Subset(dataset, "
                         "indices); a DistributedSampler is not needed (I2X shards the probe set itself).")
    options = {name: getattr(loader, name, None) for name in _LOADER_OPTIONS}
    if not options["num_workers"]:
        options.pop("prefetch_factor", None)
        options.pop("multiprocessing_context", None)
    return options


# --- small helpers ---------------------------------------------------------------------------------------------


def _tensors_of(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The (images, labels) tensors of an in-memory data set, for direct slicing."""
    if isinstance(dataset, ImageDataset):
        return dataset.images, dataset.labels
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2:
        return dataset.tensors  # type: ignore[return-value]
    return None


def _dataset_name(dataset: Dataset) -> str:
    return str(getattr(dataset, "name", None) or type(dataset).__name__)


def _as_list(indices: Indices) -> Sequence[int]:
    return indices if isinstance(indices, range) else np.asarray(indices, dtype=np.int64).tolist()


def _first(indices: Indices, offset: int) -> int:
    return int(indices[offset]) if offset < len(indices) else offset
