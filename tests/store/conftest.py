"""Fixtures for the graph-store tests: a fresh label per test, cleaned up afterwards,
so the tests can share one server (embedded, or the user's Neo4j) without interfering."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from i2x_plugin.store import GraphStore
from i2x_plugin.store.bridge import BridgeStatus, start_bridge, stop_bridge


@dataclass
class Scratch:
    """A label of this test only, and the constraint names created on it."""

    store: GraphStore
    label: str
    constraints: list[str] = field(default_factory=list)

    def unique_key(self) -> str:
        """Create (idempotently) a composite (runId, key) uniqueness constraint on the label."""
        name = f"{self.label.lower()}_key"
        self.store.ensure_constraints([
            f"CREATE CONSTRAINT {name} IF NOT EXISTS "
            f"FOR (n:{self.label}) REQUIRE (n.runId, n.key) IS UNIQUE"])
        self.constraints.append(name)
        return name

    def count(self) -> int:
        return int(self.store.read(f"MATCH (n:{self.label}) RETURN count(n) AS c")[0]["c"])


@pytest.fixture
def scratch(graph_store: GraphStore) -> Iterator[Scratch]:
    s = Scratch(graph_store, f"T{uuid.uuid4().hex[:12]}")
    yield s
    graph_store.run_write(f"MATCH (n:{s.label}) DETACH DELETE n")
    for name in s.constraints:
        graph_store.run_write(f"DROP CONSTRAINT {name} IF EXISTS")


@pytest.fixture(scope="module")
def bridge(store_server) -> Iterator[BridgeStatus]:
    """``i2x store browser``'s bridge on the session's embedded server, for one test module."""
    status = start_bridge(store_server.data_dir)
    try:
        yield status
    finally:
        stop_bridge(store_server.data_dir)
