"""Shape images with a *planted* answer, to check that I2X recovers structure we know is there.

Each class is a set of shapes drawn at random, non-overlapping cells of a 2×2 grid on a noisy
canvas. By default classes 0 and 1 share the bright ``square`` (so they stay confused until the
model learns the faint ``plus`` vs ``cross`` that tells them apart), while classes 2 and 3 have
shapes of their own. ``masks`` records which shape covers which pixel, so the expected answer is
derived from how the data was made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data import ImageDataset

def _texture(kind: str, n: int = 8) -> np.ndarray:
    r, c = np.mgrid[0:n, 0:n]
    return {
        "solid": np.ones((n, n)),
        "hstripes": (r % 2 == 0).astype(float),
        "vstripes": (c % 2 == 0).astype(float),
        "checker": ((r // 2 + c // 2) % 2 == 0).astype(float),
        "diagonal": ((r + c) % 4 < 2).astype(float),
        "dots": ((r % 3 == 1) & (c % 3 == 1)).astype(float),
        "frame": ((r == 0) | (c == 0) | (r == n - 1) | (c == n - 1)).astype(float),
    }[kind]


SHAPES: dict[str, np.ndarray] = {name: _texture(name) for name in ("solid", "hstripes", "vstripes", "checker", "diagonal", "dots", "frame")}
DEFAULT_CLASSES: tuple[tuple[str, ...], ...] = (("solid", "hstripes"), ("solid", "vstripes"), ("checker", "dots"), ("diagonal", "frame"))
DEFAULT_BRIGHTNESS = {"solid": 1.0, "hstripes": 0.6, "vstripes": 0.6, "checker": 1.0, "diagonal": 1.0, "dots": 1.0, "frame": 1.0}


@dataclass(frozen=True)
class PlantedShapes:
    """The images and, per sample, an ``(H, W)`` map of which shape (index into ``shape_names``, −1 none) is where."""

    data: ImageDataset
    masks: np.ndarray  # (N, H, W) int8
    shape_names: tuple[str, ...]
    class_shapes: tuple[tuple[str, ...], ...]


def make_planted_shapes(n_per_class: int = 150, size: int = 16, noise: float = 0.15, seed: int = 0,
                        class_shapes: tuple[tuple[str, ...], ...] = DEFAULT_CLASSES,
                        brightness: dict[str, float] | None = None, scale: int = 1) -> PlantedShapes:
    """Draw ``n_per_class`` images per class; each shape (enlarged ``scale`` times) goes into its own cell of a
    2×2 grid with jitter."""
    rng = np.random.default_rng(seed)
    brightness = {**DEFAULT_BRIGHTNESS, **(brightness or {})}
    names = tuple(SHAPES)
    cell = size // 2
    images, masks, labels = [], [], []
    for label, shapes in enumerate(class_shapes):
        for _ in range(n_per_class):
            img = rng.normal(0.0, noise, (size, size)).clip(0, 1).astype(np.float32)
            mask = np.full((size, size), -1, dtype=np.int8)
            for shape, slot in zip(shapes, rng.permutation(4)[: len(shapes)]):
                pattern = np.kron(SHAPES[shape], np.ones((scale, scale)))
                r = (slot // 2) * cell + rng.integers(0, cell - pattern.shape[0] + 1)
                c = (slot % 2) * cell + rng.integers(0, cell - pattern.shape[1] + 1)
                region = (slice(r, r + pattern.shape[0]), slice(c, c + pattern.shape[1]))
                img[region] = np.maximum(img[region], pattern * brightness[shape])
                mask[region] = names.index(shape)
            images.append(img)
            masks.append(mask)
            labels.append(label)
    order = rng.permutation(len(labels))
    data = ImageDataset(
        "planted-shapes",
        torch.from_numpy(np.stack(images)[order]).unsqueeze(1),
        torch.tensor(labels)[order],
        tuple("+".join(s) for s in class_shapes),
    )
    return PlantedShapes(data, np.stack(masks)[order], names, class_shapes)
