"""The package's imports go one way: each stage imports only the stages below it, and nothing forms a circle.

The import graph is read from the source with :mod:`ast` (every ``import``, including those inside functions
and under ``TYPE_CHECKING``), so a lazy import cannot hide a circle. The stages and their order are the
ones docs/architecture.md draws (``tools/architecture.py`` draws it from the same table).
"""

from __future__ import annotations

import graphlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from architecture import RANKS, import_graph, stage_of  # noqa: E402


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(ROOT)


def test_the_graph_is_read_from_every_module_of_the_package(graph):
    """Sanity check of the reader: it sees the stage packages, the top-level adapters/ and graph_schema/ (installed
    as i2x_plugin.adapters / .graph_schema), relative and absolute imports and imports inside functions."""
    assert {"i2x_plugin.method.explain", "i2x_plugin.adapters.base", "i2x_plugin.graph_schema.rows",
            "i2x_plugin.store.graph", "i2x_plugin.app.cli"} <= set(graph)
    assert "i2x_plugin.method.claims" in graph["i2x_plugin.method.explain"]  # from .claims import ...
    assert "i2x_plugin.app.run" in graph["i2x_plugin.app.cli"]  # inside a function, absolute
    assert "i2x_plugin.method.structure" in graph["i2x_plugin.graph_schema.rows"]  # under TYPE_CHECKING


def test_every_module_belongs_to_a_stage(graph):
    unplaced = sorted(m for m in graph if stage_of(m) not in RANKS)
    assert not unplaced, f"modules outside every stage (add them to tools/architecture.py RANKS): {unplaced}"


def test_no_module_imports_a_stage_above_its_own_or_beside_it(graph):
    wrong = sorted(f"{m} imports {d} ({stage_of(m)} → {stage_of(d)})" for m, deps in graph.items() for d in deps
                   if stage_of(m) != stage_of(d) and RANKS[stage_of(d)] >= RANKS[stage_of(m)])
    assert not wrong, "imports must point down the stages (docs/architecture.md):\n" + "\n".join(wrong)


def test_no_circle_in_the_package_imports(graph):
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        pytest.fail(f"import circle: {' → '.join(err.args[1])}")
