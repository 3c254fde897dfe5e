"""Jobs beside the run's stages: timed, their errors raised at the next check, a graph write that stops."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from i2x_plugin.graph.ingest import delete_run
from i2x_plugin.app.background import Background, GraphWriteStopped, RowsWritten, write_graph


def test_jobs_are_timed_and_their_errors_come_out_at_the_next_check() -> None:
    seconds: dict[str, float] = {}
    background = Background(seconds)
    started = threading.Event()
    background.submit("slow", started.wait, 5)
    background.check()  # still running: nothing to raise yet
    background.submit("broken", lambda: 1 / 0)
    background.jobs["broken"].exception()  # wait for it
    with pytest.raises(ZeroDivisionError):
        background.check()
    started.set()
    background.close()
    assert background.jobs["slow"].result() is True
    assert set(seconds) == {"slow.background", "broken.background"}


def test_a_graph_write_stopped_by_the_run_is_not_complete(tmp_path, digits_run, graph_store) -> None:
    """Once the run is stopped, the background graph write stops at its next batch and the Run says 'failed'."""
    explanation = dataclasses.replace(digits_run.explanation, run_id="run-stopped-write")
    stopped = threading.Event()
    stopped.set()
    written = RowsWritten()
    with pytest.raises(GraphWriteStopped, match="stopped before its graph was written"):
        write_graph(graph_store, explanation, digits_run.probe.images, tmp_path, stopped, written)
    run = graph_store.read("MATCH (r:Run {runId: $id}) RETURN r.status AS status", id=explanation.run_id)
    assert run == [{"status": "failed"}] and written.done < written.total
    assert (tmp_path / "samples").is_dir()  # the images the graph refers to come first
    delete_run(graph_store, explanation.run_id)


def test_a_finished_graph_write_counts_every_row(tmp_path, digits_run, graph_store) -> None:
    explanation = dataclasses.replace(digits_run.explanation, run_id="run-background-write")
    written = RowsWritten()
    summary = write_graph(graph_store, explanation, digits_run.probe.images, tmp_path, threading.Event(), written)
    assert summary.rows == written.total and written.done == written.total - 1  # the Run node is written apart
    delete_run(graph_store, explanation.run_id)
