"""The HTML report of an I2X run: what a person looks at to see why the model looks where it looks.

>>> from i2x_plugin.report import exemplar_saliency, write_report
>>> saliency = exemplar_saliency(i2x.adapter, probe, explanation)      # final checkpoint loaded
>>> write_report(explanation, probe, "out/report", saliency=saliency)

The probe images are read back by index (only the exemplars' and misclassified samples'), so the
probe data can be a tensor, an :class:`~i2x_plugin.data.ImageDataset` or any ``Dataset`` of
``(image, label)`` items that never fits in memory.

One self-contained ``index.html`` (every figure embedded as a base64 PNG, so it opens offline and
can be mailed as one file) plus the same PNGs beside it. Sections: accuracy and confusion per
checkpoint; β per class over steps; the learning order of class pairs; uncertain prototypes with
their β trajectories; and a gallery with, for every prototype, the image regions it covers in its
highest-intensity samples, under the final checkpoint's saliency. Figures use matplotlib's
object API (no pyplot, no global backend change); the gallery's exemplar strips are composed as
pixels and written with Pillow, which is most of what makes the report fast.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.colors import PowerNorm, TwoSlopeNorm
from matplotlib.figure import Figure
from torch.utils.data import Dataset

from .atomic import atomic_open, write_bytes, write_text
from .data import ImageDataset
from .report_checks import calibration_section, faithfulness_section, plot_faithfulness, stability_section
from .probe import ProbeLike, ProbeSet
from .structure import StructuredExplanation

Images = torch.Tensor | np.ndarray | ImageDataset | Dataset  # item i is image i, or (image, label)

_DPI = 110
_MAX_CONFUSION_PANELS = 10
_MAX_ORDER_PAIRS = 24
_MAX_UNCERTAIN = 8
_MAX_CLASSES_BETA = 20


# --- saliency of the exemplars ------------------------------------------------------------------------


def exemplar_saliency(adapter, probe: ProbeLike, explanation: StructuredExplanation,
                      device: torch.device | str | None = None, batch_size: int = 256) -> dict[int, np.ndarray]:
    """Input-size saliency of the model as it is now (load the final checkpoint first) for the exemplar
    samples only: ``{probe position: (H, W) map in [0, 1]}``.

    ``adapter`` is the run's saliency adapter, so the overlay shows the same method I2X measured with;
    the target follows the run's config (true label or prediction).
    """
    from .adapters import normalize, upsample_to

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


# --- small helpers -----------------------------------------------------------------------------------


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight", facecolor="white")
    return buffer.getvalue()


def _checkpoint_labels(explanation: StructuredExplanation) -> list[str]:
    labels = []
    for c in explanation.checkpoints:
        labels.append(f"e{c.epoch:g}" if c.epoch is not None else str(c.index))
    return labels


def _step_labels(explanation: StructuredExplanation) -> list[str]:
    names = _checkpoint_labels(explanation)
    return [f"{a}→{b}" for a, b in zip(names[:-1], names[1:])]


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


def _pname(k: int) -> str:
    return f"P{k}"


# --- figures -----------------------------------------------------------------------------------------


def plot_accuracy(explanation: StructuredExplanation, test_accuracy: Sequence[float] | None = None) -> Figure:
    """Accuracy per checkpoint on the probe set (and the held-out test split if given)."""
    names = _checkpoint_labels(explanation)
    x = np.arange(len(names))
    fig = Figure(figsize=(7.5, 3.2))
    ax = fig.subplots()
    ax.plot(x, [100 * c.accuracy for c in explanation.checkpoints], "o-", color="#1f77b4", label="probe set")
    if test_accuracy is not None:
        ax.plot(x, [100 * a for a in test_accuracy], "s--", color="#d62728", label="held-out test split")
    ax.set_xticks(x, names)
    ax.set_xlabel("checkpoint (e = epoch)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", frameon=False)
    return fig


def plot_confusions(explanation: StructuredExplanation) -> Figure:
    """Off-diagonal confusion counts of (up to 10 evenly spaced) checkpoints, one shared colour scale."""
    confusion = explanation.confusion.astype(float)
    t_count = len(confusion)
    picks = sorted({int(round(i)) for i in np.linspace(0, t_count - 1, min(t_count, _MAX_CONFUSION_PANELS))})
    names = _checkpoint_labels(explanation)
    off = confusion.copy()
    for c in off:
        np.fill_diagonal(c, np.nan)
    vmax = max(1.0, float(np.nanmax(off)))
    cols = min(5, len(picks))
    rows = math.ceil(len(picks) / cols)
    fig = Figure(figsize=(2.1 * cols + 0.8, 2.2 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    image = None
    for ax, t in zip(axes, picks):
        image = ax.imshow(off[t], cmap="Reds", norm=PowerNorm(0.5, vmin=0, vmax=vmax))
        ax.set_title(f"{names[t]} · acc {100 * explanation.checkpoints[t].accuracy:.0f}%", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(picks):]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.8, label="probe samples (true → predicted)")
    return fig


def plot_final_confusion(explanation: StructuredExplanation) -> Figure:
    """The final checkpoint's confusion matrix with counts."""
    matrix = explanation.confusion[-1]
    names = explanation.class_names
    c = len(names)
    size = min(9.0, 2.0 + 0.5 * c)
    fig = Figure(figsize=(size, size * 0.85))
    ax = fig.subplots()
    off = matrix.astype(float).copy()
    np.fill_diagonal(off, np.nan)
    ax.imshow(off, cmap="Reds", vmin=0, vmax=max(1.0, float(np.nanmax(off))))
    if c <= 20:
        for i in range(c):
            for j in range(c):
                if matrix[i, j]:
                    ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=7 if c > 10 else 8,
                            color="#555" if i == j else "black")
    short = [n if len(n) <= 10 else n[:9] + "…" for n in names]
    ax.set_xticks(range(c), short, rotation=45 if max(map(len, short)) > 2 else 0, ha="right" if
                  max(map(len, short)) > 2 else "center", fontsize=8)
    ax.set_yticks(range(c), short, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("final checkpoint (diagonal: correct, grey)", fontsize=10)
    return fig


def plot_beta_heatmaps(explanation: StructuredExplanation) -> Figure:
    """β[k, c] of each class's own fit over the steps: rows = steps, columns = prototypes."""
    classes = list(range(min(explanation.num_classes, _MAX_CLASSES_BETA)))
    own = np.moveaxis(explanation.beta_class[:, classes], 1, 0)  # (C', T-1, K)
    vmax = float(np.quantile(np.abs(own), 0.99)) or 1e-6
    cols = min(5, len(classes))
    rows = math.ceil(len(classes) / cols)
    steps, k = own.shape[1], own.shape[2]
    fig = Figure(figsize=(3.0 * cols + 1.0, (0.22 * steps + 1.0) * rows + 0.3))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    step_names = _step_labels(explanation)
    drivers = {(d.cls, d.prototype) for d in explanation.drivers}
    image = None
    for ax, c in zip(axes, classes):
        image = ax.imshow(own[c], cmap="RdBu_r", norm=TwoSlopeNorm(0, -vmax, vmax), aspect="auto",
                          interpolation="nearest")
        ax.set_title(f"class {explanation.class_names[c]}", fontsize=9)
        tick_every = max(1, k // 8)
        ax.set_xticks(range(0, k, tick_every), [str(i) for i in range(0, k, tick_every)], fontsize=7)
        ax.set_yticks(range(steps), step_names if steps <= 12 else [""] * steps, fontsize=6)
        for kk in range(k):
            if (c, kk) in drivers:
                ax.plot(kk, -0.9, marker="v", color="black", markersize=3.5, clip_on=False)
        ax.set_ylim(steps - 0.5, -1.2)
    for ax in axes[len(classes):]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.7, label="β[k, c]  (red: raises class c's confidence)")
    fig.supxlabel(f"prototype k   (▼ = a driver of the class: q ≤ {explanation.config.fdr_q:g} against the "
                  "permutation null)", fontsize=9)
    return fig


def plot_learning_order(explanation: StructuredExplanation) -> Figure | None:
    """The class pairs in the order the model separated them: confusions per checkpoint, ◆ at separation."""
    by_pair = {(s.a, s.b): s for s in explanation.separations}
    order = [by_pair[(a, b)] for a, b in explanation.learning_order[:_MAX_ORDER_PAIRS] if (a, b) in by_pair]
    if not order:
        return None
    names = _checkpoint_labels(explanation)
    series = np.array([s.confusion_by_checkpoint for s in order], dtype=float)
    fig = Figure(figsize=(7.5, 0.28 * len(order) + 1.4))
    ax = fig.subplots()
    image = ax.imshow(series, cmap="Oranges", aspect="auto", interpolation="nearest",
                      norm=PowerNorm(0.5, vmin=0, vmax=max(1.0, float(series.max()))))
    cn = explanation.class_names
    for row, s in enumerate(order):
        if s.separation_checkpoint is not None:
            ax.plot(s.separation_checkpoint, row, marker="D", color="#1a7f37", markersize=6,
                    markeredgecolor="white")
        else:
            ax.text(len(names) - 0.45, row, " not yet", va="center", ha="left", fontsize=7, color="#b00")
    ax.set_yticks(range(len(order)), [f"{cn[s.a]} ↔ {cn[s.b]}" for s in order], fontsize=8)
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("checkpoint")
    fig.colorbar(image, ax=ax, shrink=0.8, label="a↔b confusions (probe set)")
    ax.set_title("◆ separation checkpoint: confusions stay ≤ threshold from here on", fontsize=9)
    return fig


def plot_uncertain(explanation: StructuredExplanation, index: int) -> Figure:
    """β[k, a] and β[k, b] of the a ∪ b fit over steps for one uncertain prototype; the steps where
    β[k, a] − β[k, b] is significant are shaded (blue: favours a, orange: favours b), flips dotted."""
    u = explanation.uncertain[index]
    beta = explanation.pair_beta(u.a, u.b)[:, u.prototype]  # (T-1, 2)
    steps = np.arange(len(beta))
    cn = explanation.class_names
    fig = Figure(figsize=(5.2, 2.6))
    ax = fig.subplots()
    for step, sign in zip(u.significant_steps, u.signs):
        ax.axvspan(step - 0.4, step + 0.4, color="#1f77b4" if sign > 0 else "#ff7f0e", alpha=0.15, lw=0)
    ax.axhline(0, color="#888", lw=0.8)
    ax.plot(steps, beta[:, 0], "o-", color="#1f77b4", label=f"β toward {cn[u.a]}")
    ax.plot(steps, beta[:, 1], "s-", color="#ff7f0e", label=f"β toward {cn[u.b]}")
    for s in u.flip_steps:
        ax.axvline(s, color="#b00", ls=":", lw=1)
    names = _step_labels(explanation)
    ax.set_xticks(steps, names if len(names) <= 10 else [n if i % 2 == 0 else "" for i, n in enumerate(names)],
                  fontsize=7, rotation=30)
    ax.set_title(f"{_pname(u.prototype)} between {cn[u.a]} and {cn[u.b]}: {u.flips} flips between significant "
                 f"steps (shaded), q = {u.q:.2g}", fontsize=9)
    ax.legend(fontsize=7, frameon=False, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.3))
    ax.grid(alpha=0.25)
    return fig


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


# --- text about a prototype ----------------------------------------------------------------------------


def describe_prototype(explanation: StructuredExplanation, k: int) -> list[str]:
    """Plain-language facts about prototype k: where it occurs, which classes it drives, where it is uncertain."""
    cn = explanation.class_names
    present = explanation.presence[:, k] > 0
    labels = explanation.labels
    facts = [f"in {100 * present.mean():.0f}% of probe samples, covering "
             f"{explanation.presence[present, k].mean() if present.any() else 0:.1f} of "
             f"{explanation.map_size[0] * explanation.map_size[1]} cells where present"]
    by_class = [(present[labels == c].mean() if (labels == c).any() else 0.0, c) for c in range(len(cn))]
    by_class.sort(reverse=True)
    tops = [f"{cn[c]} {100 * f:.0f}%" for f, c in by_class[:3] if f > 0]
    if tops:
        facts.append("most common in: " + ", ".join(tops))
    drives = sorted((d for d in explanation.drivers if d.prototype == k), key=lambda d: -d.beta)
    if drives:
        facts.append("drives: " + ", ".join(f"{cn[d.cls]} (β {d.beta:+.3f}, q {d.q:.2g}"
                                            + (f", recurs in {100 * d.recurrence:.0f}% of re-fits" if d.recurrence
                                               is not None else "") + ")" for d in drives))
    for kind in ("shared", "specialised"):
        entries = sorted((s for s in explanation.shared if s.prototype == k and s.kind == kind),
                         key=lambda s: -s.fraction)
        if entries:
            shown = ", ".join(f"{cn[s.cls]} ({100 * s.fraction:.0f}%)" for s in entries[:4])
            more = f" and {len(entries) - 4} more" if len(entries) > 4 else ""
            facts.append(f"{kind} in class: {shown}{more} (share of the class's tested groups where its β is "
                         "significantly positive)")
    uncertain = [u for u in explanation.uncertain if u.prototype == k]
    if uncertain:
        facts.append("uncertain between " + ", ".join(f"{cn[u.a]}↔{cn[u.b]} ({u.flips} flips, q {u.q:.2g})"
                                                       for u in uncertain))
    return facts


# --- the page -------------------------------------------------------------------------------------------

_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:22px 32px}
header h1{margin:0 0 4px;font-size:24px} header p{margin:0;color:#c9d1e0}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #dde1e8;padding:8px 32px;z-index:2}
nav a{margin-right:18px;color:#2458b3;text-decoration:none;font-size:14px}
main{max-width:1180px;margin:0 auto;padding:8px 32px 40px}
section{background:#fff;border:1px solid #e1e5ec;border-radius:8px;padding:16px 22px;margin:18px 0}
h2{margin:0 0 6px;font-size:20px} h3{margin:14px 0 4px;font-size:15px}
p.how{color:#4a5468;margin:2px 0 10px;font-size:14px;line-height:1.45}
img{max-width:100%;height:auto;display:block}
table{border-collapse:collapse;font-size:14px} section table:not(.kv) td,section table:not(.kv) th{border-bottom:1px
solid #e1e5ec;padding:4px 12px;text-align:left}
table.kv{border-collapse:collapse;font-size:14px} table.kv td{padding:3px 14px 3px 0;vertical-align:top}
table.kv td:first-child{color:#5b6577}
.row{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
.card{border:1px solid #e1e5ec;border-radius:6px;padding:8px 10px;background:#fcfcfd}
.gallery{display:flex;flex-direction:column;gap:10px}
.proto{display:flex;flex-wrap:wrap;gap:14px;align-items:center} .proto>div:first-child{flex:3 1 620px}
.proto>ul{flex:1 1 300px}
.card h3{margin:0 0 4px} .card ul{margin:4px 0 0 18px;padding:0;font-size:13px;color:#3a4355}
.muted{color:#6b7486;font-size:13px}
footer{color:#6b7486;font-size:12px;text-align:center;padding:12px}
"""


@dataclass
class _Figure:
    name: str
    png: bytes

    def img(self, alt: str) -> str:
        data = base64.b64encode(self.png).decode("ascii")
        return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" data-file="{self.name}">'


def write_report(
    explanation: StructuredExplanation,
    images: Images,
    directory: str | Path,
    *,
    saliency: Mapping[int, np.ndarray] | None = None,
    test_accuracy: Sequence[float] | None = None,
    extra_sections: Sequence[tuple[str, str]] = (),
    progress: bool = False,
) -> Path:
    """Write ``directory/index.html`` (self-contained) and its PNGs; returns the HTML path.

    Args:
        explanation: the run's structured explanation.
        images: the probe images in the explanation's sample order: ``(N, C, H, W)``, or any Dataset whose
            item i is sample i's ``(image, label)``; only the exemplars are read.
        saliency: ``{probe position: (H, W) map}`` for the overlay (see :func:`exemplar_saliency`).
        test_accuracy: accuracy of every checkpoint on a held-out split, plotted beside the probe's.
        extra_sections: ``(title, html)`` blocks appended to the page (e.g. the fine-tuning table).
    """
    if len(images) != len(explanation.labels):
        raise ValueError(f"The report needs the {len(explanation.labels)} probe images of the explanation, got "
                         f"{len(images)}. Pass the same probe set that was explained.")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    figures: dict[str, _Figure] = {}
    jobs: list[tuple[str, object]] = [
        ("accuracy", lambda: plot_accuracy(explanation, test_accuracy)),
        ("confusion_checkpoints", lambda: plot_confusions(explanation)),
        ("confusion_final", lambda: plot_final_confusion(explanation)),
        ("beta_per_class", lambda: plot_beta_heatmaps(explanation)),
        ("learning_order", lambda: plot_learning_order(explanation)),
        ("faithfulness", lambda: plot_faithfulness(explanation)),
    ]
    jobs += [(f"uncertain_{i}", (lambda i=i: plot_uncertain(explanation, i)))
             for i in range(min(len(explanation.uncertain), _MAX_UNCERTAIN))]
    jobs += [(f"prototype_{k:03d}", (lambda k=k: exemplar_strip(explanation, images, k, saliency)))
             for k in range(explanation.k)]
    iterator = jobs
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(jobs, desc="report", unit="fig")
    for name, make in iterator:
        made = make()  # type: ignore[operator]
        if made is None:
            continue
        png = made if isinstance(made, bytes) else _png(made)
        write_bytes(directory / f"{name}.png", png)
        figures[name] = _Figure(f"{name}.png", png)
    page = _page(explanation, figures, test_accuracy, extra_sections)
    path = directory / "index.html"
    write_text(path, page)
    return path


def add_report_section(report: str | Path, title: str, body_html: str, section_id: str | None = None) -> Path:
    """Add (or replace) a section of an existing report, e.g. ``i2x improve``'s fine-tuning table.

    The section goes before the footer, with an ``id`` (default: from the title) so that adding it
    again replaces it instead of duplicating it.
    """
    path = Path(report)
    if path.is_dir():
        path = path / "index.html"
    if not path.is_file():
        raise FileNotFoundError(f"No report at {path}; write it first (i2x run, or write_report).")
    section_id = section_id or "extra-" + re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    page = path.read_text(encoding="utf-8")
    block = f'<section id="{html.escape(section_id)}"><h2>{html.escape(title)}</h2>{body_html}</section>\n'
    page = re.sub(rf'<section id="{re.escape(html.escape(section_id))}">.*?</section>\n', "", page, flags=re.S)
    write_text(path, page.replace("</main>", block + "</main>", 1))
    return path


def _page(explanation: StructuredExplanation, figures: dict[str, _Figure], test_accuracy: Sequence[float] | None,
          extra_sections: Sequence[tuple[str, str]]) -> str:
    e, cn, esc = explanation, explanation.class_names, html.escape
    final = e.checkpoints[-1]
    rows = [
        ("run", e.run_id), ("data set", f"{e.dataset} · {len(e.labels)} probe samples · {e.num_classes} classes"),
        ("model", f"{e.model_name} · layer {e.layer} ({e.map_size[0]}×{e.map_size[1]} map) · {e.method}"),
        ("checkpoints", f"{len(e.checkpoints)} (epochs {', '.join(_checkpoint_labels(e))})"),
        ("final accuracy", f"{100 * final.accuracy:.1f}% on the probe set"
         + (f", {100 * test_accuracy[-1]:.1f}% on the held-out test split" if test_accuracy else "")),
        ("prototypes", f"K = {e.k}; {len(e.drivers)} class drivers; "
         f"{sum(s.kind == 'shared' for s in e.shared)} shared, {sum(s.kind == 'specialised' for s in e.shared)} "
         f"specialised; {len(e.uncertain)} uncertain (prototype, pair) entries"),
        ("claims", f"each tested against a within-class permutation null; shown at Benjamini–Hochberg "
         f"q ≤ {e.config.fdr_q:g}"), ("created", e.created_at),
    ]
    summary = "".join(f"<tr><td>{esc(k)}</td><td>{esc(str(v))}</td></tr>" for k, v in rows)

    def fig(name: str, alt: str) -> str:
        return figures[name].img(alt) if name in figures else '<p class="muted">(nothing to show)</p>'

    order_text = ", ".join(f"{cn[a]}↔{cn[b]}" for a, b in e.learning_order[:8]) or "no pair was ever confused"
    uncertain_html = []
    for i, u in enumerate(e.uncertain[:_MAX_UNCERTAIN]):
        strip = fig(f"prototype_{u.prototype:03d}", f"exemplars of {_pname(u.prototype)}")
        uncertain_html.append(
            f'<div class="card"><h3>{_pname(u.prototype)} · {esc(cn[u.a])} ↔ {esc(cn[u.b])} · score {u.score:.3f}'
            f'</h3><div class="row"><div style="flex:1 1 440px">{fig(f"uncertain_{i}", "beta trajectory")}</div>'
            f'<div style="flex:1 1 440px"><p class="muted">What {_pname(u.prototype)} covers:</p>{strip}</div>'
            "</div></div>")
    if not uncertain_html:
        uncertain_html.append(f'<p class="muted">No prototype of the most confused pairs flips between significant '
                              f"steps more often than noise does (q ≤ {e.config.fdr_q:g}). More checkpoints or more "
                              "probe samples give the test more to compare.</p>")
    gallery = []
    for k in range(e.k):
        facts = "".join(f"<li>{esc(f)}</li>" for f in describe_prototype(e, k))
        gallery.append(f'<div class="card" id="p{k}"><h3>{_pname(k)}</h3><div class="proto"><div>'
                       f'{fig(f"prototype_{k:03d}", f"exemplars of {_pname(k)}")}</div><ul>{facts}</ul></div></div>')
    extra = "".join(f'<section id="extra-{i}"><h2>{esc(title)}</h2>{body}</section>\n'
                    for i, (title, body) in enumerate(extra_sections))
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("training", "Training"), ("calibration", "Calibration"), ("faithfulness", "Faithfulness"),
        ("stability", "Stability"), ("beta", "β per class"),
        ("order", "Learning order"),
        ("uncertain", "Uncertain prototypes"), ("prototypes", "Prototype gallery")))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>I2X report · {esc(e.run_id)}</title><style>{_CSS}</style></head>
<body>
<header><h1>Why does the model look there? · I2X report</h1>
<p>{esc(e.model_name)} on {esc(e.dataset)} · run {esc(e.run_id)}</p></header>
<nav>{nav}</nav>
<main>
<section id="summary"><h2>Run</h2><table class="kv">{summary}</table></section>
<section id="training"><h2>Training: accuracy and confusion per checkpoint</h2>
<p class="how">I2X replays these checkpoints. Accuracy per checkpoint, then which classes were mistaken for
which (off-diagonal counts, true class in rows) as training went on.</p>
{fig("accuracy", "accuracy per checkpoint")}
<div class="row"><div style="flex:2 1 560px">{fig("confusion_checkpoints", "confusion per checkpoint")}</div>
<div style="flex:1 1 340px">{fig("confusion_final", "final confusion matrix")}</div></div></section>
{calibration_section(e)}
{faithfulness_section(e, fig("faithfulness", "deletion tests of the drivers"))}
{stability_section(e)}
<section id="beta"><h2>β per class over training steps</h2>
<p class="how">For each class c, the ridge coefficient β[k, c] of its own samples at every step between two
checkpoints: how a rise in prototype k's saliency (in standard deviations) moved the confidence in c. Red columns
are prototypes the class relies on; ▼ marks its drivers: β of its own fit pooled over all steps is positive and
passes the permutation test.</p>
{fig("beta_per_class", "beta heatmaps per class")}</section>
<section id="order"><h2>Learning order of class pairs</h2>
<p class="how">Pairs that were ever confused, sorted by the checkpoint from which their confusions stay below
the threshold (◆). Order: {esc(order_text)}.</p>
{fig("learning_order", "learning order timeline")}</section>
<section id="uncertain"><h2>Uncertain prototypes</h2>
<p class="how">For the most confused pairs at the final checkpoint: prototypes whose β toward a minus β toward b
is significant at several steps (shaded: against its permutation null) and changes sign between them more often
than noise would. The model has not settled what this evidence means; samples containing it are the
candidates for targeted fine-tuning.</p>
{"".join(uncertain_html)}</section>
<section id="prototypes"><h2>Prototype gallery: what each prototype is</h2>
<p class="how">Every prototype is a cluster of the final model's feature vectors at layer {esc(e.layer)}. Each
strip shows the samples where the prototype is most salient: the region it covers (cyan cells, with one cell of
context), under the final checkpoint's {esc(e.method)} saliency (jet overlay). Title: sample id · true class ·
intensity I.</p>
<div class="gallery">{"".join(gallery)}</div></section>
{extra}
</main>
<footer>i2x-plugin · I2X (arXiv 2603.10234) · figures also saved as PNG files next to this page</footer>
</body></html>
"""
