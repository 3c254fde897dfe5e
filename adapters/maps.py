"""Saliency maps and their normalisation: per-sample min–max, max, sum or none, resizing as pytorch-grad-cam
does, and grad-cam's numpy form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

NormMode = Literal["minmax", "max", "sum", "none"]

_EPS = 1e-12


def normalize(maps: Tensor, mode: NormMode = "minmax") -> Tensor:
    """Normalise each sample's map on its own.

    ``"minmax"``: ``(m - min) / (max - min)`` into [0, 1] (method.md's default); ``"max"``:
    ``m / max``; ``"sum"``: ``m / sum(m)``, each cell's share of the map's total (for non-negative maps);
    ``"none"``: unchanged. A constant (minmax) or all-zero map becomes zeros, never NaN.
    """
    if mode == "none":
        return maps
    if mode not in ("minmax", "max", "sum"):
        raise ValueError(f"Unknown normalisation mode {mode!r}; choose 'minmax', 'max', 'sum' or 'none'.")
    if maps.ndim < 2:
        raise ValueError(f"maps must be batched (N, ...), got shape {tuple(maps.shape)}.")
    flat = maps.reshape(len(maps), -1)
    if mode == "sum":
        total = flat.sum(dim=1, keepdim=True)
        return torch.where(total > _EPS, flat / total.clamp_min(_EPS), torch.zeros_like(flat)).reshape(maps.shape)
    high = flat.amax(dim=1, keepdim=True)
    low = flat.amin(dim=1, keepdim=True) if mode == "minmax" else torch.zeros_like(high)
    span = high - low
    out = torch.where(span > _EPS, (flat - low) / span.clamp_min(_EPS), torch.zeros_like(flat))
    return out.reshape(maps.shape)


def upsample_to(maps: Tensor, size: Union[int, tuple[int, int]], mode: str = "bilinear") -> Tensor:
    """Resize ``(N, 1, h, w)`` maps to ``size`` (e.g. the input's ``H, W``) for display or masking.

    Bilinear with half-pixel centres, as pytorch-grad-cam's OpenCV resize does.
    """
    if maps.ndim != 4:
        raise ValueError(f"maps must be (N, 1, h, w), got shape {tuple(maps.shape)}.")
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(maps.shape[-2:]) == size:
        return maps
    align = False if mode in ("bilinear", "bicubic") else None
    return F.interpolate(maps, size=size, mode=mode, align_corners=align)


def to_gradcam_numpy(maps: Tensor) -> np.ndarray:
    """pytorch-grad-cam's form: float32 ``(N, H, W)`` numpy (e.g. for ``show_cam_on_image``)."""
    if maps.ndim == 4:
        if maps.shape[1] != 1:
            raise ValueError(f"expected one channel, got shape {tuple(maps.shape)}.")
        maps = maps[:, 0]
    if maps.ndim != 3:
        raise ValueError(f"maps must be (N, 1, H, W) or (N, H, W), got shape {tuple(maps.shape)}.")
    return maps.detach().to("cpu", torch.float32).numpy()


@dataclass(frozen=True, eq=False)
class SaliencyMaps:
    """Raw (ReLU'd, un-normalised) maps at the layer's resolution plus each sample's scale.

    ``raw`` is ``(N, 1, h, w)``; ``scale`` is ``(N,)``, the per-sample maximum of ``raw``, so
    ``raw == normalize(raw, "max") * scale`` and maps can be compared across checkpoints either
    raw or normalised.
    """

    raw: Tensor
    scale: Tensor
    layer_name: str

    @classmethod
    def from_raw(cls, raw: Tensor, layer_name: str) -> "SaliencyMaps":
        scale = raw.reshape(len(raw), -1).amax(dim=1) if raw.numel() else raw.new_zeros(len(raw))
        return cls(raw=raw, scale=scale, layer_name=layer_name)

    def __len__(self) -> int:
        return len(self.raw)

    def normalized(self, mode: NormMode = "minmax") -> Tensor:
        return normalize(self.raw, mode)

    def upsampled(self, size: Union[int, tuple[int, int]], normalization: NormMode = "none") -> Tensor:
        """Maps resized to ``size`` (e.g. the input's), then normalised per sample, as grad-cam does."""
        return normalize(upsample_to(self.raw, size), normalization)
