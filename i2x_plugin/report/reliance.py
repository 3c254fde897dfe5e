"""The report's Reliance section: what the final model relies on (deletion on held-out samples), and since when.

Three tables, each naming its relation (reliance, final model; not β's training dynamics): each class's reliance
edges with their formation steps, the pair groups margin reliance reports (the faithful counterpart of the
separators), and the confusers of the most confused pairs (the counterpart of the uncertain prototypes).
"""

from __future__ import annotations

import html

from ..method.pvalues import format_p
from ..method.structure import StructuredExplanation

_TOP = 5


def _formed(step: int | None) -> str:
    return "—" if step is None else str(step)


def _class_rows(e: StructuredExplanation) -> str:
    r, cn = e.reliance, e.class_names
    sets = {s.a: s for s in r.top_sets}
    rows = []
    for c in range(e.num_classes):
        edges = sorted((x for x in r.significant if x.cls == c), key=lambda x: x.rank)
        if not edges and c not in sets:
            continue
        listed = ", ".join(f"P{x.prototype} ({x.effect:.2f}, from {_formed(x.formed_at)})" for x in edges[:_TOP])
        top = sets.get(c)
        test = "—" if top is None else f"{top.effect:.2f} vs {top.random_median:.2f} ({100 * top.percentile:.0f} %)"
        rows.append(f"<tr><td>{html.escape(cn[c])}</td><td>{len(edges)}</td><td>{listed or '—'}</td><td>{test}</td></tr>")
    return ("<table><tr><th>class</th><th>claimed edges</th><th>top edges (confidence drop, formed at checkpoint)"
            "</th><th>top set vs matched random sets</th></tr>" + "".join(rows) + "</table>")


def _pair_rows(e: StructuredExplanation, kind: str) -> str:
    r, cn = e.reliance, e.class_names
    claimed = r.significant_pairs(kind)
    rows = []
    for s in (s for s in r.pair_sets if s.kind == kind):
        mine = [x for x in claimed if (x.a, x.b, x.favours) == (s.a, s.b, s.favours)]
        formed = [x.formed_at for x in mine if x.formed_at is not None]
        pair = (f"{cn[s.favours]} over {cn[s.a + s.b - s.favours]}" if kind == "margin"
                else f"{cn[s.a]} ↔ {cn[s.b]}")
        edges = [x for x in r.pair_edges if (x.kind, x.a, x.b, x.favours) == (kind, s.a, s.b, s.favours)
                 and x.prototype in s.test.prototypes]
        best = min((x.q for x in edges), default=None)
        extra = "" if s.turned_back is None else f"; turns back {s.turned_back} of {s.test.samples}"
        rows.append(f"<tr><td>{html.escape(pair)}</td><td>{', '.join(f'P{k}' for k in s.test.prototypes)}</td>"
                    f"<td>{s.test.effect:.3f} vs {s.test.random_median:.3f} ({100 * s.test.percentile:.0f} %"
                    f"{', passes' if s.passes else ''}){extra}</td><td>{len(mine)}"
                    f"{'' if best is None else ' (best ' + format_p(best, 'q') + ')'}</td>"
                    f"<td>{min(formed) if formed else '—'}</td></tr>")
    if not rows:
        return '<p class="muted">None.</p>'
    what = "pair (favoured over other)" if kind == "margin" else "confused pair"
    return (f"<table><tr><th>{what}</th><th>top set (selection half)</th><th>held-out effect vs matched random sets"
            "</th><th>claimed edges</th><th>earliest formation</th></tr>" + "".join(rows) + "</table>")


def reliance_section(e: StructuredExplanation) -> str:
    """The Reliance section of the report (a note when the reliance check was not run)."""
    head = '<section id="reliance"><h2>Reliance: what the final model relies on, and since when</h2>'
    r = e.reliance
    if r is None:
        return (head + '<p class="muted">Not measured: i2x run runs it (I2XConfig.reliance); '
                "i2x_plugin.checks.run_reliance on a saved run.</p></section>")
    margin = [s for s in r.pair_sets if s.kind == "margin"]
    confusers = [s for s in r.pair_sets if s.kind == "confuser"]
    skipped = "".join(f"<li>{html.escape(line)}</li>" for line in r.skipped)
    return (head + '<p class="how">A relation of the final model, beside the training dynamics (β) above: each '
            f"prototype's cells are deleted ({html.escape(r.deletion)}) at the explained layer and the effect is "
            f"measured on held-out samples (ranked on the other half), against as many random cells (p, q ≤ "
            f"{r.fdr_q:g}, and at least {r.min_effect:g} of confidence beyond them). Formed at: the first checkpoint "
            "from which the edge stays significant (Bonferroni over the checkpoints) with half its final effect. "
            "<code>i2x ask class_reliance</code>, <code>i2x ask pair_reliance</code>.</p>"
            f"<h3>Classes: confidence in the class</h3>{_class_rows(e)}"
            f"<h3>Pairs: margin reliance ({sum(s.passes for s in margin)} of {len(margin)} reported pair groups pass)"
            "</h3><p class=\"how\">Deleting the prototype drops the confidence margin of one class over the other on "
            "the pair's samples (more than on other classes' samples): the faithful counterpart of a separator.</p>"
            f"{_pair_rows(e, 'margin')}"
            f"<h3>Confusers of the most confused pairs ({sum(s.passes for s in confusers)} of {len(confusers)} pass)"
            "</h3><p class=\"how\">Deleting the prototype on the pair's misclassified samples raises the true class's "
            "confidence beyond the other classes': it turns them back (the counterpart of an uncertain prototype)."
            f"</p>{_pair_rows(e, 'confuser')}"
            + (f'<p class="how">Not tested:</p><ul class="muted">{skipped}</ul>' if skipped else "") + "</section>")
