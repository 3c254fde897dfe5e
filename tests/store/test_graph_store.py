"""GraphStore against a real server: the embedded ArcadeDB, and Neo4j when NEO4J_URI is set."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from i2x_plugin.store import (
    ConstraintViolationError,
    EmbeddedServer,
    GraphStore,
    ReadOnlyQueryError,
    StoreAuthError,
    StoreConnectionError,
    StoreQueryError,
)

if TYPE_CHECKING:  # the fixture's type, from tests/store/conftest.py
    from conftest import Scratch


def test_write_and_read_back(scratch: Scratch) -> None:
    s = scratch
    s.store.run_write(f"CREATE (n:{s.label} {{runId: $run, key: $key, name: $name}})",
                      run="r1", key="a", name="Alpha")
    assert s.store.read(f"MATCH (n:{s.label}) RETURN n.runId AS runId, n.name AS name") == [
        {"runId": "r1", "name": "Alpha"}]


def test_write_rows_batches_and_upserts(scratch: Scratch) -> None:
    s = scratch
    s.unique_key()
    rows = [{"key": f"k{i}", "v": i} for i in range(2500)]
    body = f"MERGE (n:{s.label} {{runId: $run, key: row.key}}) SET n.v = row.v, n.name = row.key"
    assert s.store.write_rows(body, iter(rows), batch_size=1000, run="r1") == 2500
    assert s.count() == 2500
    # the same rows again (full UNWIND form this time): updated in place, no duplicates
    full = "UNWIND $rows AS row " + body.replace("row.v", "row.v + 1")
    assert s.store.write_rows(full, rows, batch_size=700, run="r1") == 2500
    assert s.count() == 2500
    assert s.store.read(f"MATCH (n:{s.label} {{key: 'k7'}}) RETURN n.v AS v") == [{"v": 8}]
    assert s.store.write_rows(body, [], run="r1") == 0


def test_constraint_violation_raises(scratch: Scratch) -> None:
    s = scratch
    name = s.unique_key()
    assert s.store.ensure_constraints([  # idempotent
        f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{s.label}) REQUIRE (n.runId, n.key) IS UNIQUE"
    ]) == 1
    s.store.run_write(f"CREATE (:{s.label} {{runId: 'r', key: 'k'}})")
    s.store.run_write(f"CREATE (:{s.label} {{runId: 'other', key: 'k'}})")  # composite: fine
    with pytest.raises(ConstraintViolationError):
        s.store.run_write(f"CREATE (:{s.label} {{runId: 'r', key: 'k'}})")
    assert s.count() == 2
    with pytest.raises(ValueError, match="IF NOT EXISTS"):
        s.store.ensure_constraints([f"CREATE CONSTRAINT x FOR (n:{s.label}) REQUIRE n.a IS UNIQUE"])


def test_transaction_commits_and_rolls_back(scratch: Scratch) -> None:
    s = scratch
    s.unique_key()
    with s.store.transaction() as tx:
        tx.run(f"CREATE (:{s.label} {{runId: 'r', key: 'a'}})")
        assert tx.write_rows(f"CREATE (:{s.label} {{runId: 'r', key: row.k}})",
                             [{"k": "b"}, {"k": "c"}], batch_size=1) == 2
    assert s.count() == 3
    with pytest.raises(RuntimeError, match="boom"):
        with s.store.transaction() as tx:
            tx.run(f"CREATE (:{s.label} {{runId: 'r2', key: 'a'}})")
            raise RuntimeError("boom")
    with pytest.raises(ConstraintViolationError):
        with s.store.transaction() as tx:
            tx.run(f"CREATE (:{s.label} {{runId: 'r3', key: 'new'}})")
            tx.run(f"CREATE (:{s.label} {{runId: 'r', key: 'a'}})")  # duplicate
    assert s.count() == 3
    assert s.store.read(f"MATCH (n:{s.label}) WHERE n.runId <> 'r' RETURN count(n) AS c") == [{"c": 0}]


@pytest.mark.parametrize("value", [
    "it's", 'say "hi"', "back\\slash \\n \\\\", "MATCH (n) DETACH DELETE n; //",
    "} RETURN 1 //", "$rows", "ünïcødé ✓", "",
])
def test_parameters_are_stored_literally(scratch: Scratch, value: str) -> None:
    s = scratch
    s.store.write_rows(f"CREATE (:{s.label} {{key: row.key, name: row.name}})",
                       [{"key": "k", "name": value}])
    assert s.store.read(f"MATCH (n:{s.label}) RETURN n.name AS name") == [{"name": value}]
    assert s.store.query(f"MATCH (n:{s.label}) WHERE n.name = $v RETURN count(n) AS c", v=value) == [
        {"c": 1}]


@pytest.mark.parametrize("statement", [
    "CREATE (:{L} {{key: 'new'}})",
    "MATCH (n:{L}) SET n.name = 'changed'",
    "MATCH (n:{L}) REMOVE n.name",
    "MATCH (n:{L}) DETACH DELETE n",
    "MERGE (:{L} {{key: 'merged'}})",
    "MATCH (n:{L}) CREATE (n)-[:R]->(:{L} {{key: 'child'}})",
    "CREATE CONSTRAINT {L}_x IF NOT EXISTS FOR (n:{L}) REQUIRE n.other IS UNIQUE",
])
def test_query_is_read_only(scratch: Scratch, statement: str) -> None:
    s = scratch
    s.store.run_write(f"CREATE (:{s.label} {{key: 'k', name: 'orig'}})")
    before = s.store.read(f"MATCH (n:{s.label}) RETURN n.key AS key, n.name AS name")
    with pytest.raises(ReadOnlyQueryError, match="read-only"):
        s.store.query(statement.format(L=s.label))
    assert s.store.read(f"MATCH (n:{s.label}) RETURN n.key AS key, n.name AS name") == before
    assert s.store.read("SHOW CONSTRAINTS YIELD name WHERE name = $n RETURN name",
                        n=f"{s.label}_x") == []
    assert s.store.query(f"MATCH (n:{s.label}) RETURN n.name AS name") == [{"name": "orig"}]


def test_unreachable_uri_is_a_clear_error() -> None:
    with pytest.raises(StoreConnectionError, match="bolt://127.0.0.1:9") as err:
        GraphStore.from_uri("bolt://127.0.0.1:9", ("neo4j", "x"))
    assert all(v in str(err.value) for v in ("NEO4J_URI", "NEO4J_USERNAME", "NEO4J_PASSWORD",
                                             "NEO4J_DATABASE"))


def test_missing_env_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEO4J_URI", raising=False)
    with pytest.raises(StoreConnectionError, match="NEO4J_URI is not set"):
        GraphStore.from_env()
    with pytest.raises(ValueError, match="embedded"):
        GraphStore.connect("http://localhost")


def test_wrong_password_is_a_clear_error(store_server: EmbeddedServer,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(StoreAuthError, match="'root'.*auth argument"):
        GraphStore.from_uri(store_server.uri, ("root", "wrong-password"), "i2x")
    monkeypatch.setenv("NEO4J_USERNAME", "root")
    monkeypatch.setenv("NEO4J_PASSWORD", "wrong-password")
    monkeypatch.setenv("NEO4J_DATABASE", "i2x")
    with pytest.raises(StoreAuthError, match="NEO4J_PASSWORD"):
        GraphStore.connect(store_server.uri)


def test_missing_database_is_a_clear_error(store_server: EmbeddedServer) -> None:
    with pytest.raises(StoreQueryError, match="'nope'.*NEO4J_DATABASE"):
        GraphStore.from_uri(store_server.uri, store_server.auth, "nope")


def test_connect_embedded_and_uri(store_server: EmbeddedServer) -> None:
    with GraphStore.connect("embedded", data_dir=store_server.data_dir) as store:
        assert store.is_arcadedb and store.uri == store_server.uri and store.database == "i2x"
    with GraphStore.from_uri(store_server.uri, store_server.auth, "i2x") as store:
        assert store.read("RETURN 1 AS one") == [{"one": 1}]


def test_query_guard_without_reader_account(store_server: EmbeddedServer, scratch: Scratch) -> None:
    """An ArcadeDB reached by URI with admin rights only: the rollback + counters guard."""
    if not scratch.store.is_arcadedb:
        pytest.skip("embedded-only")
    with GraphStore.from_uri(store_server.uri, store_server.auth, "i2x") as store:
        store.run_write(f"CREATE (:{scratch.label} {{key: 'k'}})")
        with pytest.raises(ReadOnlyQueryError):
            store.query(f"MATCH (n:{scratch.label}) SET n.key = 'x'")
        with pytest.raises(ReadOnlyQueryError):
            store.query(f"CREATE (:{scratch.label})")
        assert store.query(f"MATCH (n:{scratch.label}) RETURN n.key AS k") == [{"k": "k"}]


def test_the_store_imports_neither_ingestion_nor_questions() -> None:
    """The store knows the driver; ingestion and questions use the store, never the other way round."""
    import ast
    from pathlib import Path

    import i2x_plugin.store

    for path in Path(i2x_plugin.store.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not [m for m in imported if m.split(".")[-1] in ("ingest", "questions")], path
