"""Fixtures of the graph stage's tests: a second run in the shared graph (beside tests/conftest.py's
``digits_graph``, on ``digits_run``)."""

from __future__ import annotations

import pytest

from i2x_plugin.graph.ingest import write_explanation
from i2x_plugin.method.structure import StructuredExplanation

GRAPH_OTHER_RUN = "graph-digits-seed1"


@pytest.fixture(scope="session")
def digits_graph_other(digits_graph, digits_run) -> StructuredExplanation:
    """A second run in the graph: the same checkpoints explained with I2X seed 1 (run ``graph-digits-seed1``)."""
    other = digits_run.i2x(seed=1).explain(digits_run.checkpoint_dir, digits_run.probe, run_id=GRAPH_OTHER_RUN)
    write_explanation(digits_graph.store, other)
    return other
