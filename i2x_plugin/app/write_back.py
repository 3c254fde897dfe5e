"""Writing a re-tested explanation back into its saved run (``i2x stability``): files, report section, graph.

The check (:mod:`i2x_plugin.checks.stability`) only computes; showing its result is the report's job
(:func:`~i2x_plugin.report.stability_section`) and storing it the graph's
(:func:`~i2x_plugin.graph.ingest.write_explanation`). This module, at the top, does both for a saved run.
"""

from __future__ import annotations

from ..graph.ingest import write_explanation
from ..report import add_report_section, stability_section
from ..store import GraphStore


def update_saved_run(run, explanation, store: str | None, store_dir=None, keep_store: bool = False) -> list[str]:
    """Write a stability-tested explanation back: the run's explanation files, its report's stability section
    and, unless ``store`` is None, its graph (the claims' recurrence; rewriting a run only updates it).
    Returns what was updated."""
    explanation.save(run.directory / "explanation")
    updated = [str(run.directory / "explanation")]
    report = run.directory / "report" / "index.html"
    if report.is_file():
        section = stability_section(explanation)
        title, body = "Stability: would another fit say the same?", section.split("</h2>", 1)[1].rsplit("</section>", 1)[0]
        add_report_section(report, title, body, section_id="stability")
        updated.append(str(report))
    if store is not None:
        with GraphStore.connect(store, store_dir, keep=keep_store) as graph:
            write_explanation(graph, explanation)
            updated.append(f"graph {graph.uri} runId={explanation.run_id}")
    return updated
