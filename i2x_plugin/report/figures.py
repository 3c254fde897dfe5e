"""The report's figures, drawn with matplotlib's object API (no pyplot, no global backend change)."""

from __future__ import annotations

import io
import math
from typing import Sequence

import numpy as np
from matplotlib.colors import PowerNorm, TwoSlopeNorm
from matplotlib.figure import Figure

from ..method.pvalues import format_p
from ..method.structure import StructuredExplanation

_DPI = 110
_MAX_CONFUSION_PANELS = 10
_MAX_ORDER_PAIRS = 24
_MAX_UNCERTAIN = 8
_MAX_CLASSES_BETA = 20


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
                 f"steps (shaded), {format_p(u.q, 'q')}", fontsize=9)
    ax.legend(fontsize=7, frameon=False, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.3))
    ax.grid(alpha=0.25)
    return fig
