"""Work that runs beside the stages of ``i2x run``, in threads: the graph store starting while the
model trains, and the explanation graph being written while the test accuracy and the report are
computed. The embedded server and the graph write spend their time in the server's own process,
so on two cores they cost the run little more than the wait for them.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np


class GraphWriteStopped(RuntimeError):
    """The run stopped while its graph was being written; the Run node is left 'failed'."""


class Background:
    """Jobs that run in a thread beside the run's stages: the graph store starting, the graph write.

    ``submit`` records each job's own seconds as ``<name>.background``; ``check`` raises a failed job's
    error at once (a store that cannot start stops the run before the sweep); ``cancel`` asks the
    jobs that watch :attr:`cancelled` to stop, and ``close`` waits for every job.
    """

    def __init__(self, seconds: dict[str, float]):
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="i2x-run")
        self._seconds = seconds
        self.cancelled = threading.Event()
        self.jobs: dict[str, Future] = {}

    def submit(self, name: str, fn: Callable[..., Any], *args: Any) -> None:
        def timed() -> Any:
            start = time.perf_counter()
            try:
                return fn(*args)
            finally:
                self._seconds[f"{name}.background"] = time.perf_counter() - start

        self.jobs[name] = self._pool.submit(timed)

    def check(self) -> None:
        for job in self.jobs.values():
            if job.done():
                job.result()

    def cancel(self) -> None:
        self.cancelled.set()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


@dataclass
class RowsWritten:
    """How far a background graph write is: its rows in all, and the rows written per label or type."""

    total: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return sum(self.by_kind.values())


def write_graph(store: Any, explanation: Any, images: Any, directory: Path, cancelled: threading.Event,
                written: RowsWritten) -> Any:
    """The sample images the graph refers to, then the explanation graph (stops early once cancelled)."""
    from ..graph_schema import explanation_rows
    from ..graph.ingest import write_graph_rows
    from ..report import save_sample_images

    shown = {e.sample for e in explanation.exemplars}
    shown |= set(np.flatnonzero(explanation.predictions[-1] != explanation.labels).tolist())
    uris = save_sample_images(images, sorted(shown), directory / "samples", explanation.sample_ids)
    rows = explanation_rows(explanation, image_uris=uris)
    written.total = len(rows)

    def after_batch(what: str, done: int, _total: int) -> None:
        if cancelled.is_set():
            raise GraphWriteStopped("The run was stopped before its graph was written.")
        written.by_kind[what] = done

    return write_graph_rows(store, rows, explanation.run_id, progress=after_batch)


def wait_for_graph(job: Future, written: RowsWritten, desc: str, progress: bool) -> Any:
    """Wait for the background graph write, with a bar of its rows."""
    from tqdm.auto import tqdm

    with tqdm(total=written.total or None, desc=desc, unit="row", disable=not progress,
              bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}]") as bar:
        while True:
            finished = wait([job], timeout=0.1).done
            bar.total = written.total
            result = job.result() if finished else None  # a failed write raises here
            bar.update((written.total if finished else written.done) - bar.n)
            if finished:
                return result
