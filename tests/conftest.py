"""Shared pytest fixtures for the whole suite.

Graph store: ``store_server`` is one embedded ArcadeDB server for the whole session
(started in a temp dir, stopped at the end, so no server outlives the tests);
``graph_store`` is a :class:`~i2x_plugin.store.GraphStore` on it, and also on the server
named by ``NEO4J_URI`` when that variable is set (the fixture is then parametrised).
Tests sharing it should use their own labels/runIds (see ``tests/store/conftest.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from i2x_plugin.store import EmbeddedServer, GraphStore

GRAPH_TARGETS = ["embedded"] + (["env"] if os.environ.get("NEO4J_URI") else [])


@pytest.fixture(scope="session")
def store_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """A real embedded ArcadeDB server in a temp data dir, for the whole session."""
    server = EmbeddedServer(tmp_path_factory.mktemp("graph-store")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session", params=GRAPH_TARGETS)
def graph_store(request: pytest.FixtureRequest) -> Iterator[GraphStore]:
    """A connected GraphStore: the embedded server, plus Neo4j when NEO4J_URI is set."""
    if request.param == "embedded":
        server: EmbeddedServer = request.getfixturevalue("store_server")
        store = GraphStore.embedded(server.data_dir)
    else:
        store = GraphStore.from_env()
    try:
        yield store
    finally:
        store.close()

