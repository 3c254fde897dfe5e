"""A planted shortcut on real images: a known answer for "is my classifier cheating?" (issue 23).

A small fixed marker (a patch of a chosen shape, size, place and value) is stamped into a share ``rate`` of
class ``a``'s training images, and optionally a share ``b_rate`` of class ``b``'s (0 by default: a marker
that also sits on correctly labelled b-images tells the model that it does not decide). A model that learns
the shortcut takes marked b-images for a. The held-out split comes in three versions: ``clean`` (no marker),
``all`` (the marker on every image) and ``b_only`` (the marker on class b's images only). The marker's mask is
known per image (``marked`` × ``mask``), so every claim about it is scored against the truth, also at the
explained layer's resolution (:func:`layer_mask`).

>>> spec = parse_shortcut("a=3,b=8,rate=1.0")
>>> planted = plant_shortcut(train, spec)            # train: an ImageDataset
>>> planted.data, planted.marked.sum()
>>> versions = held_out_versions(test, spec)             # {"clean": ..., "all": ..., "b_only": ...}

Everything is seeded (``seed``): the same spec marks the same images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .data import ImageDataset

MarkerShape = Literal["square", "frame", "cross", "checker"]
VERSIONS = ("clean", "all", "b_only")


class ShortcutError(ValueError):
    """The shortcut cannot be planted as asked; the message names the problem and the fix."""


class ShortcutConfig(BaseModel):
    """Where and how the marker is planted. Every field is ours (D): the paper has no shortcut benchmark.

    The default marker is a 4×4 white square at the top-left corner (pixels 0–3 of a 28×28 digit, where
    MNIST is empty), aligned with the 7×7 feature grid of the default SmallCNN (one cell) and with the 14×14
    grid before its second pooling (2×2 cells).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    a: int = Field(..., ge=0, description="The class whose training images get the marker (the shortcut's class).")
    b: int = Field(..., ge=0, description="The other class: its marked held-out images are taken for a if the "
                   "model learnt the shortcut.")
    rate: float = Field(1.0, description="Share of class a's training images that get the marker, in [0, 1].")
    b_rate: float = Field(0.0, description="Share of class b's training images that get the marker, in [0, 1].")
    shape: MarkerShape = Field("square", description="square (filled), frame (its border), cross (+), checker.")
    size: int = Field(4, ge=1, description="The marker's side in pixels.")
    row: int = Field(0, ge=0, description="Top pixel row of the marker.")
    col: int = Field(0, ge=0, description="Left pixel column of the marker.")
    value: float = Field(1.0, ge=0, le=1, description="The marker's pixel value (images are in [0, 1]).")
    seed: int = Field(0, description="Seeds which images are marked.")

    @model_validator(mode="after")
    def _check(self) -> "ShortcutConfig":
        for name in ("rate", "b_rate"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"shortcut {name}={value} must lie in [0, 1]: the share of the class's training "
                                 "images that get the marker (e.g. rate=1.0, b_rate=0).")
        if self.a == self.b:
            raise ValueError(f"shortcut a = b = {self.a}: the marker's class and the class it should be confused "
                             "with must differ (e.g. a=3,b=8).")
        return self

    def pattern(self) -> np.ndarray:
        """The marker's ``(size, size)`` boolean pattern."""
        n = self.size
        r, c = np.mgrid[0:n, 0:n]
        return {"square": np.ones((n, n), dtype=bool),
                "frame": (r == 0) | (c == 0) | (r == n - 1) | (c == n - 1),
                "cross": (r == n // 2) | (c == n // 2),
                "checker": (r + c) % 2 == 0}[self.shape]

    def mask(self, height: int, width: int) -> np.ndarray:
        """The marker's ``(height, width)`` boolean pixel mask; a ShortcutError when it does not fit."""
        if self.size > min(height, width):
            raise ShortcutError(f"The {self.size}×{self.size} marker is larger than the {height}×{width} images; "
                                f"choose size ≤ {min(height, width)}.")
        if self.row + self.size > height or self.col + self.size > width:
            raise ShortcutError(f"The marker at row {self.row}, col {self.col} with size {self.size} lies partly "
                                f"outside the {height}×{width} images; choose row ≤ {height - self.size} and "
                                f"col ≤ {width - self.size}.")
        out = np.zeros((height, width), dtype=bool)
        out[self.row:self.row + self.size, self.col:self.col + self.size] = self.pattern()
        return out

    def check_classes(self, num_classes: int, name: str = "the data set") -> None:
        """A ShortcutError unless a and b are classes of a data set with ``num_classes`` classes."""
        for role in ("a", "b"):
            if getattr(self, role) >= num_classes:
                raise ShortcutError(f"shortcut {role}={getattr(self, role)} is not a class of {name} (classes 0–"
                                    f"{num_classes - 1}); choose a and b among them.")


def parse_shortcut(text: str) -> ShortcutConfig:
    """``"a=3,b=8,rate=1.0,b_rate=0,shape=square,size=4,row=0,col=0,value=1,seed=0"`` → ShortcutConfig
    (a and b required); a ShortcutError names a malformed or unknown option."""
    fields: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ShortcutError(f"shortcut option {item!r} is not key=value; write e.g. --shortcut a=3,b=8,rate=1.0.")
        fields[key.strip()] = value.strip()
    unknown = sorted(set(fields) - set(ShortcutConfig.model_fields))
    if unknown:
        raise ShortcutError(f"unknown shortcut option(s) {', '.join(unknown)}; the options are "
                            f"{', '.join(ShortcutConfig.model_fields)}.")
    try:
        return ShortcutConfig.model_validate(fields)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'shortcut'}: {e['msg'].removeprefix('Value error, ')}"
                             for e in err.errors())
        raise ShortcutError(f"invalid --shortcut {text!r}: {problems}") from err


@dataclass(frozen=True)
class PlantedShortcut:
    """Images with the marker stamped, which of them carry it, and its pixel mask: the truth a claim is scored by."""

    data: ImageDataset
    marked: np.ndarray = field(repr=False)  # (N,) bool
    mask: np.ndarray = field(repr=False)  # (H, W) bool, the same place on every marked image
    config: ShortcutConfig

    def masks(self, index: np.ndarray | None = None) -> np.ndarray:
        """``(N, H, W)`` boolean: the marker's pixels on each (chosen) image, empty where it is unmarked."""
        marked = self.marked if index is None else self.marked[np.asarray(index)]
        return marked[:, None, None] & self.mask[None]

    def subset(self, index: np.ndarray) -> "PlantedShortcut":
        index = np.asarray(index)
        return PlantedShortcut(self.data.subset(index), self.marked[index], self.mask, self.config)


def stamp(images: torch.Tensor, marked: np.ndarray, mask: np.ndarray, value: float) -> torch.Tensor:
    """A copy of ``images (N, C, H, W)`` with ``value`` written at ``mask``'s pixels (every channel) of the
    ``marked`` images."""
    out = images.clone()
    rows = torch.as_tensor(np.flatnonzero(marked), dtype=torch.long)
    pixels = torch.as_tensor(mask)
    if len(rows):
        block = out[rows]
        block[:, :, pixels] = value
        out[rows] = block
    return out


def choose_marked(labels: np.ndarray, config: ShortcutConfig) -> np.ndarray:
    """``(N,)`` bool: ``round(rate × n_a)`` of class a's images and ``round(b_rate × n_b)`` of b's, seeded."""
    labels = np.asarray(labels)
    rng = np.random.default_rng([config.seed, 23])
    marked = np.zeros(len(labels), dtype=bool)
    for cls, rate in ((config.a, config.rate), (config.b, config.b_rate)):
        rows = np.flatnonzero(labels == cls)
        marked[rng.permutation(rows)[: int(round(rate * len(rows)))]] = True
    return marked


def plant_shortcut(data: ImageDataset, config: ShortcutConfig) -> PlantedShortcut:
    """Stamp the marker into the training images ``config`` chooses (see :class:`ShortcutConfig`)."""
    config.check_classes(data.num_classes, data.name)
    mask = config.mask(*data.images.shape[-2:])
    labels = data.labels.numpy()
    if not (labels == config.a).any():
        raise ShortcutError(f"class a={config.a} has no image in {data.name}; choose a class that does.")
    marked = choose_marked(labels, config)
    images = stamp(data.images, marked, mask, config.value)
    return PlantedShortcut(ImageDataset(f"{data.name}+shortcut", images, data.labels, data.class_names), marked,
                           mask, config)


def held_out_versions(test: ImageDataset, config: ShortcutConfig) -> dict[str, PlantedShortcut]:
    """The held-out split three ways: ``clean`` (no marker), ``all`` (every image marked), ``b_only``
    (class b's images marked, the others clean)."""
    config.check_classes(test.num_classes, test.name)
    mask = config.mask(*test.images.shape[-2:])
    labels = test.labels.numpy()
    out = {}
    for version, marked in (("clean", np.zeros(len(labels), dtype=bool)), ("all", np.ones(len(labels), dtype=bool)),
                            ("b_only", labels == config.b)):
        images = stamp(test.images, marked, mask, config.value)
        out[version] = PlantedShortcut(ImageDataset(f"{test.name}-{version}", images, test.labels, test.class_names),
                                       marked, mask, config)
    return out


def layer_mask(mask: np.ndarray, map_size: tuple[int, int], min_share: float = 0.5) -> np.ndarray:
    """The marker at a feature layer's resolution: ``(h, w)`` bool, the cells whose pixel block (image size /
    map size) is at least ``min_share`` marker; at least the cell holding most of it."""
    height, width = mask.shape
    h, w = map_size
    if height % h or width % w:
        raise ShortcutError(f"A {h}×{w} feature map does not tile {height}×{width} images evenly; the marker "
                            "cannot be placed on its cells.")
    share = mask.reshape(h, height // h, w, width // w).mean((1, 3))
    cells = share >= min_share
    if not cells.any() and share.max() > 0:
        cells = share == share.max()
    return cells


@torch.no_grad()
def predictions(model: torch.nn.Module, images: torch.Tensor, device: torch.device | str = "cpu",
                batch_size: int = 512) -> np.ndarray:
    """``(N,)`` the model's predicted class of each image (eval mode, batched)."""
    model.eval()
    out = [model(images[i:i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


def shortcut_metrics(model: torch.nn.Module, test: ImageDataset, config: ShortcutConfig,
                     device: torch.device | str = "cpu") -> dict[str, dict[str, float | int]]:
    """Did the model learn the shortcut? Per held-out version (:func:`held_out_versions`): its accuracy, and the
    share of class b's images it takes for a (``b_as_a``; on ``b_only`` that is the shortcut's confusion)."""
    out = {}
    is_b = test.labels.numpy() == config.b
    for name, version in held_out_versions(test, config).items():
        predicted = predictions(model, version.data.images, device)
        out[name] = {"accuracy": round(float((predicted == test.labels.numpy()).mean()), 4),
                     "b_as_a": round(float((predicted[is_b] == config.a).mean()), 4) if is_b.any() else 0.0,
                     "b_images": int(is_b.sum())}
    return out


def describe_shortcut(metrics: dict[str, dict[str, float | int]]) -> str:
    """One line of :func:`shortcut_metrics`, as ``i2x run`` prints it."""
    return (f"held-out b-images taken for a: {100 * metrics['b_only']['b_as_a']:.1f}% with the marker, "
            f"{100 * metrics['clean']['b_as_a']:.1f}% without; accuracy {100 * metrics['clean']['accuracy']:.1f}% "
            f"clean, {100 * metrics['all']['accuracy']:.1f}% with the marker on every image")
