"""The report's three checks of the claims (validation.md): calibration, faithfulness and stability.

Each section says what was tested and shows the numbers, so a reader can judge how far to trust the
claims above it; the faithfulness figure puts every class's drivers beside random prototype sets and
plain saliency.
"""

from __future__ import annotations

import html

import numpy as np
from matplotlib.figure import Figure

from ..method.structure import StructuredExplanation


def plot_faithfulness(explanation: StructuredExplanation) -> Figure | None:
    """Per class: the confidence drop when its drivers are deleted, beside matched random sets and plain saliency."""
    tests = [t for t in explanation.faithfulness_results if t.kind == "drivers"]
    if not tests:
        return None
    cn = explanation.class_names
    x = np.arange(len(tests))
    fig = Figure(figsize=(max(5.5, 0.62 * len(tests) + 2.0), 3.0))
    ax = fig.subplots()
    ax.bar(x - 0.27, [t.effect for t in tests], 0.27, color="#d62728", label="I2X drivers")
    ax.bar(x, [t.random_median for t in tests], 0.27, color="#9e9e9e", label="random sets (median, matched)")
    ax.bar(x + 0.27, [t.static_effect or 0.0 for t in tests], 0.27, color="#1f77b4", label="plain saliency (top)")
    for xi, t in zip(x, tests):
        if t.percentile >= 0.95:
            ax.text(xi - 0.27, t.effect, "★", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [cn[t.a] for t in tests], fontsize=8)
    ax.axhline(0, color="#888", lw=0.8)
    ax.set_ylabel("drop in the class's confidence", fontsize=8)
    ax.set_title("Deleting each class's drivers on the final model (★: beats 95 % of matched random sets)", fontsize=9)
    ax.legend(fontsize=7, frameon=False, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    return fig


def calibration_section(e: StructuredExplanation) -> str:
    """Each claim kind's count in this run beside what the same procedure reports on noise."""
    counts = e.claim_counts
    if counts is None:
        body = '<p class="muted">Not measured (I2XConfig.null_draws = 0).</p>'
    else:
        rows = "".join(f"<tr><td>{kind}</td><td>{counts.real[kind]}</td><td>{counts.null_mean[kind]:.1f}</td>"
                       f"<td>{counts.null_max[kind]}</td></tr>" for kind in counts.real)
        body = (f"<table><tr><th>claim kind</th><th>this run</th><th>noise: mean</th><th>noise: max</th></tr>{rows}"
                "</table>")
    skipped = "".join(f"<li>{html.escape(line)}</li>" for line in e.skipped)
    return (f'<section id="calibration"><h2>Calibration: would noise have said the same?</h2><p class="how">Every '
            "claim is tested against a null in which each sample's saliency changes are shuffled among the samples of "
            "its class at each step, so no saliency change belongs to its own confidence change. The same procedure "
            f"run on {counts.null_draws if counts else 0} such shuffles gives the counts on the right: the false "
            f"claims to expect. Claims are shown at q ≤ {e.config.fdr_q:g}.</p>{body}"
            + (f'<p class="how">Not tested:</p><ul class="muted">{skipped}</ul>' if skipped else "") + "</section>")


def faithfulness_section(e: StructuredExplanation, figure_html: str) -> str:
    """The deletion tests: the drivers' figure, and a summary line per claim kind."""
    if not e.faithfulness_results:
        return ('<section id="faithfulness"><h2>Faithfulness: does the model use what the claims name?</h2>'
                '<p class="muted">Not tested (I2XConfig.faithfulness is off).</p></section>')
    lines = []
    for kind, what in (("drivers", "the class's confidence drops"), ("separators", "the margin toward the favoured "
                       "class drops"), ("uncertain", "the pair's confusions change")):
        tests = [t for t in e.faithfulness_results if t.kind == kind]
        if tests:
            beat = sum(t.percentile >= 0.95 for t in tests)
            extra = ""
            if kind == "drivers":
                static = [t.static_effect for t in tests if t.static_effect is not None]
                extra = (f"; mean drop {np.mean([t.effect for t in tests]):.2f} against "
                         f"{np.mean(static):.2f} for plain saliency's top prototypes" if static else "")
            lines.append(f"<li><b>{kind}</b>: deleted, {what} more than for 95 % of matched random prototype sets in "
                         f"{beat} of {len(tests)} groups{extra}.</li>")
    return ('<section id="faithfulness"><h2>Faithfulness: does the model use what the claims name?</h2>'
            '<p class="how">Each claim group\'s prototypes are deleted on the final model (their cells set to '
            f"{'zero' if e.config.deletion == 'zero' else 'the class-mean feature'} at layer {html.escape(e.layer)}) "
            "and the effect the claim predicts is compared with random prototype sets of the same size and covered "
            f"area. <code>i2x ask faithfulness</code> lists every test.</p><ul>{''.join(lines)}</ul>{figure_html}"
            "</section>")


def stability_section(e: StructuredExplanation) -> str:
    """The stability test: Jaccard overlap per claim kind and the learning order's rank correlation."""
    s = e.stability
    if s is None or not s.refits:
        return ('<section id="stability"><h2>Stability: would another fit say the same?</h2><p class="muted">Not '
                "measured: run <code>i2x stability --run-dir …</code> (or i2x_plugin.checks.run_stability).</p>"
                "</section>")
    rows = "".join(f"<tr><td>{kind}</td><td>{value:.2f}</td></tr>" for kind, value in s.mean_jaccard.items())
    return ('<section id="stability"><h2>Stability: would another fit say the same?</h2><p class="how">The prototypes '
            f"were re-fitted {len(s.refits)} times ({html.escape(', '.join(s.refits))}) and the claims re-derived; "
            "re-fitted prototypes are matched to these by their mean features. The Jaccard overlap of each claim kind "
            "with this run's (1 = the same claims), and each claim's recurrence in the answers and the gallery, say "
            f"how much is owed to one fit. Learning order: Kendall τ = {np.mean(s.learning_order_tau):.2f}.</p>"
            f"<table><tr><th>claim kind</th><th>mean Jaccard</th></tr>{rows}</table></section>")
