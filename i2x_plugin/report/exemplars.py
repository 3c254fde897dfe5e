"""Exemplar images of the report: the final checkpoint's saliency on them, the probe images read back by
index, and the gallery's strips composed as pixels with Pillow (fast, no figure per tile).
"""

from __future__ import annotations

import io
import math
from functools import cache
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib import colormaps
from torch.utils.data import Dataset

from ..atomic import atomic_open
from ..training.data import ImageDataset
from ..method.probe import ProbeLike, ProbeSet
from ..method.structure import StructuredExplanation

Images = torch.Tensor | np.ndarray | ImageDataset | Dataset  # item i is image i, or (image, label)


# --- saliency of the exemplars ------------------------------------------------------------------------


def exemplar_saliency(adapter, probe: ProbeLike, explanation: StructuredExplanation,
                      device: torch.device | str | None = None, batch_size: int = 256) -> dict[int, np.ndarray]:
    """Input-size saliency of the model as it is now (load the final checkpoint first) for the exemplar
    samples only: ``{probe position: (H, W) map in [0, 1]}``.

    ``adapter`` is the run's saliency adapter, so the overlay shows the same method I2X measured with;
    the target follows the run's config (true label or prediction).
    """
    from ..adapters import normalize, upsample_to

    samples = sorted({e.sample for e in explanation.exemplars})
    if not samples:
        return {}
    if device is None:
        device = next(adapter.model.parameters()).device
    probe = ProbeSet.from_data(probe)
    out: dict[int, np.ndarray] = {}
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        x, y = probe.read(chunk)
        size = tuple(x.shape[-2:])
        x = x.to(device)
        target = y.to(device) if explanation.config.target == "label" else None
        maps = normalize(adapter.attribute(x, target=target).detach().float(), "minmax")
        maps = upsample_to(maps, size).squeeze(1).clamp(0, 1).cpu().numpy()
        out.update({s: m for s, m in zip(chunk, maps)})
    return out


def save_sample_images(images: Images, positions: Sequence[int], directory: str | Path,
                       sample_ids: Sequence[int] | None = None, min_size: int = 112) -> dict[int, str]:
    """Write probe images as PNG files (nearest-neighbour upscaled to at least ``min_size`` pixels) and return
    ``{probe position: file URI}``: the graph's ``Sample.imageUri``, so a sample can be looked at from the graph."""
    from matplotlib.image import imsave

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    uris = {}
    for i in sorted({int(p) for p in positions}):
        image = _image_hwc(_probe_image(images, i))
        scale = max(1, math.ceil(min_size / max(image.shape[:2])))
        image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
        name = f"sample-{int(sample_ids[i]) if sample_ids is not None else i}.png"
        with atomic_open(directory / name) as f:
            imsave(f, image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1, format="png")
        uris[i] = (directory / name).resolve().as_uri()
    return uris


def _probe_image(images: Images, index: int) -> torch.Tensor | np.ndarray:
    """Image ``index`` of a tensor / array ``(N, C, H, W)`` or of a Dataset of ``(image, label)`` items."""
    item = images[int(index)]  # type: ignore[index]
    return item[0] if isinstance(item, (tuple, list)) else item


def _image_hwc(image: torch.Tensor | np.ndarray) -> np.ndarray:
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    array = np.transpose(array, (1, 2, 0))
    lo, hi = float(array.min()), float(array.max())
    array = (array - lo) / (hi - lo) if hi > lo else np.zeros_like(array)
    return array[..., 0] if array.shape[2] == 1 else array


def _heat_rgba(saliency: np.ndarray, max_alpha: float = 0.5) -> np.ndarray:
    """A saliency map as an RGBA overlay: jet colours, opacity growing with saliency (faint where low)."""
    rgba = colormaps["jet"](np.clip(saliency, 0, 1))
    rgba[..., 3] = max_alpha * np.clip(saliency, 0, 1) ** 0.8
    return rgba


def _crop_bounds(box: Sequence[int], map_size: Sequence[int], image_size: Sequence[int], pad: int = 1):
    """Pixel bounds [y0, y1) × [x0, x1) of a feature-map box (inclusive cells) grown by ``pad`` cells."""
    (h, w), (height, width) = map_size, image_size
    sy, sx = height / h, width / w
    r0, c0, r1, c1 = box
    y0 = max(0, int(math.floor((r0 - pad) * sy)))
    x0 = max(0, int(math.floor((c0 - pad) * sx)))
    y1 = min(height, int(math.ceil((r1 + 1 + pad) * sy)))
    x1 = min(width, int(math.ceil((c1 + 1 + pad) * sx)))
    return y0, y1, x0, x1, sy, sx


_TILE, _GAP, _HEADER = 112, 10, 30  # exemplar strips: tile and gap width, title height (pixels)
_OUTLINE = (0.0, 0.898, 1.0)  # the prototype's cells, cyan


@cache
def _title_font(size: int = 11):
    """matplotlib's own DejaVu Sans, for titles drawn with Pillow (Pillow's bitmap font if it cannot be found)."""
    from matplotlib import font_manager
    from PIL import ImageFont

    try:
        return ImageFont.truetype(font_manager.findfont("DejaVu Sans", fallback_to_default=True), size)
    except OSError:
        return ImageFont.load_default()


def _exemplar_tile(image: np.ndarray, saliency: np.ndarray | None, cells: np.ndarray, box: Sequence[int],
                   map_size: Sequence[int]) -> np.ndarray:
    """One exemplar as RGB pixels: the box's crop (one cell of context) under the saliency overlay,
    every cell of the prototype outlined, upscaled (nearest) to at most ``_TILE`` pixels a side."""
    y0, y1, x0, x1, sy, sx = _crop_bounds(box, map_size, image.shape[:2])
    tile = image[y0:y1, x0:x1]
    tile = np.repeat(tile[..., None], 3, axis=2) if tile.ndim == 2 else tile[..., :3]
    if saliency is not None:
        heat = _heat_rgba(saliency[y0:y1, x0:x1])
        tile = tile * (1 - heat[..., 3:]) + heat[..., :3] * heat[..., 3:]
    f = max(1, _TILE // max(tile.shape[:2]))
    tile = np.repeat(np.repeat(tile, f, axis=0), f, axis=1)
    height, width = tile.shape[:2]
    for r, c in cells:
        top, left = round((r * sy - y0) * f), round((c * sx - x0) * f)
        bottom, right = round(((r + 1) * sy - y0) * f) - 1, round(((c + 1) * sx - x0) * f) - 1
        rows, cols = slice(max(top, 0), min(bottom, height - 1) + 1), slice(max(left, 0), min(right, width - 1) + 1)
        for edge in (top, bottom):
            if 0 <= edge < height:
                tile[edge, cols] = _OUTLINE
        for edge in (left, right):
            if 0 <= edge < width:
                tile[rows, edge] = _OUTLINE
    return tile


def exemplar_strip(explanation: StructuredExplanation, images: Images, k: int,
                   saliency: Mapping[int, np.ndarray] | None = None) -> bytes | None:
    """PNG of the regions prototype k covers in its highest-intensity samples: crops of the exemplar box
    (plus one cell of context, the prototype's cells outlined in cyan) under the final checkpoint's
    saliency, titled with sample id · true class and intensity I.

    Composed as pixels and written by Pillow rather than drawn as a matplotlib figure: the same strip
    in a fraction of the time (the gallery was most of the report's seconds)."""
    from PIL import Image, ImageDraw

    exemplars = [e for e in explanation.exemplars if e.prototype == k]
    if not exemplars:
        return None
    slots = max(len(exemplars), 4)
    canvas = np.ones((_HEADER + _TILE, slots * (_TILE + _GAP) - _GAP, 3))
    titles = []
    for n, e in enumerate(exemplars):
        overlay = saliency.get(e.sample) if saliency is not None else None
        cells = np.argwhere(explanation.assignments[e.sample] == k)
        tile = _exemplar_tile(_image_hwc(_probe_image(images, e.sample)), overlay, cells, e.box, explanation.map_size)
        height, width = tile.shape[:2]
        top, left = _HEADER + (_TILE - height) // 2, n * (_TILE + _GAP) + (_TILE - width) // 2
        canvas[top:top + height, left:left + width] = tile
        label = explanation.class_names[int(explanation.labels[e.sample])]
        titles.append((n * (_TILE + _GAP) + _TILE // 2,
                       f"#{int(explanation.sample_ids[e.sample])} · {label}\nI={e.intensity:.2f}"))
    picture = Image.fromarray(np.round(np.clip(canvas, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for x, text in titles:
        draw.multiline_text((x, 1), text, fill=(0, 0, 0), font=_title_font(), anchor="ma", align="center")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
