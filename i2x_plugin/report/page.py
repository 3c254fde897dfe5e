"""The report page: one self-contained ``index.html`` with every figure embedded, and sections added later."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..method.pvalues import format_p

from ..atomic import write_bytes, write_text
from ..method.structure import StructuredExplanation
from .checks import calibration_section, faithfulness_section, plot_faithfulness, stability_section
from .reliance import reliance_section
from .shortcut import shortcut_section
from .exemplars import Images, exemplar_strip
from .figures import (
    _MAX_UNCERTAIN,
    _checkpoint_labels,
    _png,
    _pname,
    plot_accuracy,
    plot_beta_heatmaps,
    plot_confusions,
    plot_final_confusion,
    plot_learning_order,
    plot_uncertain,
)

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
        facts.append("drives: " + ", ".join(f"{cn[d.cls]} (β {d.beta:+.3f}, {format_p(d.q, 'q')}"
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
        facts.append("uncertain between " + ", ".join(f"{cn[u.a]}↔{cn[u.b]} ({u.flips} flips, {format_p(u.q, 'q')})"
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
    page = _page(explanation, figures, test_accuracy, extra_sections, images, saliency)
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
          extra_sections: Sequence[tuple[str, str]], images: Images | None = None,
          saliency: Mapping[int, np.ndarray] | None = None) -> str:
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
        ("claims", f"each tested against a within-class trajectory permutation null; shown at Benjamini–Hochberg "
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
        ("stability", "Stability"), *((("shortcut", "Shortcuts"),) if e.reliance is not None else ()),
        ("beta", "β per class"),
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
{reliance_section(e)}
{shortcut_section(e, images, saliency)}
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
