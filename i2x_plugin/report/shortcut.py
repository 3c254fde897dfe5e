"""The report's shortcut flag (issue 23): a prototype that sits on one fixed cell in most images of one class,
almost never there in the others, and that the final model relies on for that class."""

from __future__ import annotations

import base64
import dataclasses
import html
from typing import Mapping

import numpy as np

from ..checks.shortcut import FLAG_MAX_OTHER, FLAG_MIN_SHARE, ShortcutFlag, possible_shortcuts
from ..method.structure import Exemplar, StructuredExplanation
from .exemplars import Images, exemplar_strip


def flag_strip(explanation: StructuredExplanation, images: Images, flag: ShortcutFlag,
               saliency: Mapping[int, np.ndarray] | None = None) -> bytes | None:
    """PNG of the flagged class's samples holding the prototype on its cell (the flag's exemplars), as the
    gallery draws exemplars; the gallery's own strip shows the prototype's top samples of any class."""
    row, col = flag.cell
    chosen = [Exemplar(flag.prototype, i, float(explanation.intensities[-1, i, flag.prototype]),
                       int(explanation.presence[i, flag.prototype]), [row, col, row, col]) for i in flag.exemplar_rows]
    return exemplar_strip(dataclasses.replace(explanation, exemplars=chosen), images, flag.prototype, saliency)


def shortcut_section(e: StructuredExplanation, images: Images | None = None,
                     saliency: Mapping[int, np.ndarray] | None = None) -> str:
    """The flagged prototypes with their evidence and exemplars (from the probe ``images``), or a line saying none
    was flagged; empty without the reliance relation (nothing to flag on)."""
    if e.reliance is None:
        return ""
    cn, esc = e.class_names, html.escape
    how = (f'<p class="how">A prototype is flagged when it holds one fixed cell of the {e.map_size[0]}×{e.map_size[1]} '
           f"map in at least {100 * FLAG_MIN_SHARE:.0f} % of one class's samples and in at most "
           f"{100 * FLAG_MAX_OTHER:.0f} % of any other class's, and deleting its cells lowers the final model's "
           "confidence in that class more than as many random cells do (a claimed reliance edge). That is what a "
           "marker, a tag or a border looks like; a real part of the class can look so too, so look at the "
           "exemplars. Calibrated on mnist-5k (bench/results/shortcut.md): silent on unmarked runs.</p>")
    cards = []
    for f in possible_shortcuts(e):
        cards.append(
            f'<div class="card"><h3>P{f.prototype} · class {esc(cn[f.cls])} · cell (row {f.cell[0]}, col {f.cell[1]})'
            f"</h3><p>On that cell in {100 * f.class_share:.1f} % of class {esc(cn[f.cls])}'s samples, at most "
            f"{100 * f.other_share:.1f} % of another class's; deleting it lowers the confidence in "
            f"{esc(cn[f.cls])} by {f.reliance_effect:.3f} on held-out samples (q = {f.reliance_q:.2g}). "
            f"Samples: {', '.join(f'#{i}' for i in f.exemplars)}.</p>"
            f"{_img(flag_strip(e, images, f, saliency) if images is not None else None, f.prototype)}</div>")
    body = "".join(cards) or '<p class="muted">No prototype was flagged as a possible shortcut.</p>'
    return f'<section id="shortcut"><h2>Possible shortcuts</h2>{how}{body}</section>'


def _img(png: bytes | None, k: int) -> str:
    if png is None:
        return ""
    return (f'<img alt="exemplars of P{k} on its flagged cell" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode()}">')
