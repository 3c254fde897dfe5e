"""Small image classifiers used by the demo, the tests and the benchmarks.

``small_cnn`` is the default: three conv blocks whose last one (``block3``) is the spatial feature
layer I2X explains. ``resnet18_small`` adapts torchvision's ResNet-18 to 28×28 grey images.
A user's own model is reached with ``"package.module:factory"``.
"""

from __future__ import annotations

import importlib
from typing import Callable

import torch
from torch import nn

MODEL_CHOICES = ("small-cnn", "resnet18")


class SmallCNN(nn.Module):
    """Conv(16) → Conv(32) → pool → [Conv(64) → pool]… → global average → linear.

    ``pools`` sets how many 2×2 poolings come before ``block3`` so the feature map stays
    spatial: 1 for 8×8 digits (4×4 map), 2 for 28×28 images (7×7 map).
    """

    feature_layer = "block3"

    def __init__(self, in_channels: int = 1, num_classes: int = 10, pools: int = 1, width: int = 16):
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU())
        self.block2 = nn.Sequential(
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            *[nn.MaxPool2d(2) for _ in range(max(pools, 0))],
        )
        self.block3 = nn.Sequential(nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block3(self.block2(self.block1(x))))


def resnet18_small(in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    """torchvision ResNet-18 with a 3×3 stem and no max-pool, for 28×28 inputs (feature layer ``layer4``)."""
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    model.feature_layer = "layer4"  # type: ignore[attr-defined]
    return model


def build_model(name: str, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    """Build a model by name (see ``MODEL_CHOICES``) or from ``"module:factory"``.

    A user factory is called as ``factory(in_channels=..., num_classes=...)``.
    """
    if name == "small-cnn":
        return SmallCNN(in_channels, num_classes, pools=1 if image_size <= 16 else 2)
    if name == "resnet18":
        return resnet18_small(in_channels, num_classes)
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            factory: Callable[..., nn.Module] = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise ValueError(
                f"Cannot load model factory {name!r}: {err}. Give 'package.module:function' importable "
                "from the current environment."
            ) from err
        return factory(in_channels=in_channels, num_classes=num_classes)
    raise ValueError(
        f"Unknown model {name!r}. Choose one of {', '.join(MODEL_CHOICES)} or give 'module:factory'."
    )


def default_feature_layer(model: nn.Module) -> str:
    """The layer I2X explains by default: the model's ``feature_layer`` attribute, else the last Conv2d's parent."""
    name = getattr(model, "feature_layer", None)
    if isinstance(name, str):
        return name
    last = None
    for module_name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            last = module_name
    if last is None:
        raise ValueError("The model has no Conv2d layer; pass the spatial feature layer explicitly.")
    return last
