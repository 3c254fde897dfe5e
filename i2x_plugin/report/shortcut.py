"""The report's shortcut flag (issue 23): a prototype that sits on one fixed cell in most images of one class,
almost never there in the others, and that the final model relies on for that class."""

from __future__ import annotations

import html
from typing import Callable

from ..checks.shortcut import FLAG_MAX_OTHER, FLAG_MIN_SHARE, possible_shortcuts
from ..method.structure import StructuredExplanation


def shortcut_section(e: StructuredExplanation, fig: Callable[[str, str], str]) -> str:
    """The flagged prototypes with their evidence and exemplars (``fig(name, alt)`` embeds a rendered figure), or
    a line saying none was flagged; empty without the reliance relation (nothing to flag on)."""
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
            f'{fig(f"prototype_{f.prototype:03d}", f"exemplars of P{f.prototype}")}</div>')
    body = "".join(cards) or '<p class="muted">No prototype was flagged as a possible shortcut.</p>'
    return f'<section id="shortcut"><h2>Possible shortcuts</h2>{how}{body}</section>'
