"""GraphStore: one neo4j driver + one database name, the same Cypher for ArcadeDB and Neo4j.

Cypher that works on both servers (checked over Bolt against ArcadeDB 26.10 embedded):

* Uniqueness, composite included (one constraint per label, run through
  :meth:`GraphStore.ensure_constraints`)::

      CREATE CONSTRAINT node_key IF NOT EXISTS FOR (n:Node) REQUIRE (n.runId, n.key) IS UNIQUE

  ArcadeDB builds a unique index ``Node[runId,key]`` and reports a duplicate as
  ``Neo.ClientError.Schema.ConstraintValidationFailed`` (-> :class:`ConstraintViolationError`).
  ``SHOW CONSTRAINTS`` / ``SHOW INDEXES`` / ``DROP CONSTRAINT x IF EXISTS`` work too.
  Neo4j 5 accepts the same statement in Community Edition too (only ``IS NODE KEY`` is
  Enterprise), so no single ``uid`` property is needed.
* ``UNWIND $rows AS row MERGE (n:L {runId: row.runId, key: row.key}) SET n += row.props``,
  relationship ``MERGE``, ``DETACH DELETE``, ``SET n += $map``.
* ``EXISTS { MATCH ... }`` / ``NOT EXISTS { (a)-->() }``, ``CALL { WITH a ... }`` and
  ``CALL (a) { ... }`` subqueries, variable-length paths ``-[:R*1..3]->``,
  ``MATCH p = shortestPath(...)``, list comprehensions and pattern comprehensions,
  ``collect``/``count``/``coalesce``/``CASE``/``labels``/``keys``/``properties``, lists of
  floats as properties, ``datetime()``.
* Not accepted by ArcadeDB: ``shortestPath`` used as an expression with an unbound end
  (``RETURN shortestPath((:A)-[*]-(:B))``); use ``MATCH p = shortestPath(...)``.
  ``elementId`` values look like ``#1:0`` (never parse them).

Read-only guard of :meth:`GraphStore.query` (ad-hoc Cypher typed by a user):

* Embedded server: the query runs through a second driver logged in as ``i2x_reader``,
  a server user whose group only has ``readRecord`` on the database, so ArcadeDB itself
  refuses creates, updates, deletes and schema changes (``Neo.ClientError.Security.
  Forbidden``). A READ access mode alone is *not* enough: ArcadeDB executes ``CREATE``
  in a READ session.
* Neo4j: ``EXPLAIN`` first and the statement must be of type ``'r'``; then it runs in a
  READ transaction (Neo4j enforces the access mode).
* Always: the statement runs in an explicit transaction that is rolled back, never
  committed, and any update counted in its summary raises. This also covers an ArcadeDB
  reached by URI without reader credentials (where ``EXPLAIN`` reports every statement
  as ``'w'`` and is therefore not used).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import neo4j
from neo4j import exceptions as nex

from i2x_plugin.store.server import (
    ConstraintViolationError,
    EmbeddedServer,
    ReadOnlyQueryError,
    StoreAuthError,
    StoreConnectionError,
    StoreError,
    StoreQueryError,
)

ENV_VARS = ("NEO4J_URI", "NEO4J_USERNAME", "NEO4J_PASSWORD", "NEO4J_DATABASE")
URI_SCHEMES = ("bolt://", "bolt+s://", "bolt+ssc://", "neo4j://", "neo4j+s://", "neo4j+ssc://")
_ROWS_PREFIX = "UNWIND $rows AS row "
PING_CYPHER = "RETURN 1 AS ok"  # the one statement of its own the store sends (checked by tools/cypher-lint)


def _rows_cypher(cypher: str) -> str:
    """Accept a full ``UNWIND $rows AS row ...`` statement or only the per-row body."""
    return cypher if cypher.lstrip().upper().startswith("UNWIND $ROWS") else _ROWS_PREFIX + cypher


def _batches(rows: Iterable[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    it = iter(rows)
    while batch := list(itertools.islice(it, size)):
        yield batch


class StoreTransaction:
    """One explicit write transaction (see :meth:`GraphStore.transaction`)."""

    def __init__(self, tx: neo4j.Transaction, store: GraphStore) -> None:
        self._tx, self._store = tx, store

    def run(self, cypher: str, **params: Any) -> list[dict[str, Any]]:
        with self._store._errors(cypher):
            return [r.data() for r in self._tx.run(cypher, params)]

    def write_rows(self, cypher: str, rows: Iterable[Mapping[str, Any]],
                   batch_size: int = 1000, **params: Any) -> int:
        """Like :meth:`GraphStore.write_rows`, but every batch inside this transaction."""
        n = 0
        for batch in _batches(rows, batch_size):
            with self._store._errors(cypher):
                self._tx.run(_rows_cypher(cypher), {**params, "rows": batch}).consume()
            n += len(batch)
        return n


class GraphStore:
    """A Bolt graph database (embedded ArcadeDB or Neo4j) behind one small API.

    Every call names the database, passes values as parameters, sends writes through
    write transactions and reads through READ routing. Use :meth:`connect`,
    :meth:`embedded`, :meth:`from_uri` or :meth:`from_env` to build one.

    The store knows the driver and nothing of explanations: writing a run is
    :func:`i2x_plugin.graph.ingest.write_explanation` (``delete_run``, ``list_runs``, ...), asking it
    is :func:`i2x_plugin.graph.questions.ask`; both use the store.
    """

    def __init__(self, driver: neo4j.Driver, database: str, *, uri: str,
                 user: str | None = None, auth_source: str = "the auth argument",
                 reader_driver: neo4j.Driver | None = None,
                 server: EmbeddedServer | None = None) -> None:
        self.driver, self.database, self.uri = driver, database, uri
        self.server = server
        self._reader = reader_driver
        self._user, self._auth_source = user, auth_source
        self.agent = ""
        try:
            self._check()
        except BaseException:
            self.close()
            raise

    # -- constructors ------------------------------------------------------------------
    @classmethod
    def embedded(cls, data_dir: str | os.PathLike[str] | None = None,
                 port: int | None = None, keep: bool = True) -> GraphStore:
        """Start (or reuse) the embedded ArcadeDB server of ``data_dir`` and connect.

        ``keep=False`` (what ``i2x run`` / ``i2x ask`` use): :meth:`close` stops a server that
        was started for a command and that no other command or bridge still holds.
        """
        server = EmbeddedServer(data_dir, port).start(keep=keep)
        source = f"the generated password in {server.credentials_path}"
        driver = neo4j.GraphDatabase.driver(server.uri, auth=server.auth)
        reader = neo4j.GraphDatabase.driver(server.uri, auth=server.reader_auth)
        return cls(driver, server.database, uri=server.uri, user=server.auth[0],
                   auth_source=source, reader_driver=reader, server=server)

    @classmethod
    def from_uri(cls, uri: str, auth: tuple[str, str] | None = None,
                 database: str | None = None,
                 reader_auth: tuple[str, str] | None = None) -> GraphStore:
        """Connect to any Bolt server; ``database`` defaults to ``$NEO4J_DATABASE`` or ``neo4j``.

        ``reader_auth``: credentials of a read-only user, used by :meth:`query` if given.
        """
        db = database or os.environ.get("NEO4J_DATABASE") or "neo4j"
        driver = neo4j.GraphDatabase.driver(uri, auth=auth)
        reader = neo4j.GraphDatabase.driver(uri, auth=reader_auth) if reader_auth else None
        return cls(driver, db, uri=uri, user=auth[0] if auth else None, reader_driver=reader)

    @classmethod
    def from_env(cls, uri: str | None = None) -> GraphStore:
        """Connect with ``NEO4J_URI`` (or ``uri``), ``NEO4J_USERNAME`` (default ``neo4j``),
        ``NEO4J_PASSWORD`` and ``NEO4J_DATABASE`` (default ``neo4j``)."""
        uri = uri or os.environ.get("NEO4J_URI")
        if not uri:
            raise StoreConnectionError(
                "NEO4J_URI is not set. Set NEO4J_URI (and NEO4J_USERNAME, NEO4J_PASSWORD, "
                "NEO4J_DATABASE) or use the embedded store.")
        user = os.environ.get("NEO4J_USERNAME", "neo4j")
        password = os.environ.get("NEO4J_PASSWORD")
        db = os.environ.get("NEO4J_DATABASE") or "neo4j"
        driver = neo4j.GraphDatabase.driver(uri, auth=(user, password) if password else None)
        return cls(driver, db, uri=uri, user=user,
                   auth_source="the NEO4J_USERNAME / NEO4J_PASSWORD environment variables")

    @classmethod
    def connect(cls, target: str = "embedded",
                data_dir: str | os.PathLike[str] | None = None, keep: bool = True) -> GraphStore:
        """``"embedded"`` -> :meth:`embedded` (``data_dir``, ``keep``); ``"env"`` -> :meth:`from_env`; a Bolt
        URI -> that server, with user, password and database from the ``NEO4J_*`` variables."""
        if target == "embedded":
            return cls.embedded(data_dir, keep=keep)
        if target == "env":
            return cls.from_env()
        if target.startswith(URI_SCHEMES):
            return cls.from_env(target)
        raise ValueError(f"Unknown graph store target {target!r}: use 'embedded', 'env' or a "
                         f"URI starting with one of {', '.join(URI_SCHEMES)}.")

    # -- errors ------------------------------------------------------------------------
    def _check(self) -> None:
        """Fail early and clearly: reachable, password accepted, database present."""
        with self._errors(PING_CYPHER):
            self.driver.verify_connectivity()  # fails at once, where a query would retry
            with self.driver.session(database=self.database,
                                     default_access_mode=neo4j.READ_ACCESS) as session:
                summary = session.run(PING_CYPHER).consume()
        self.agent = summary.server.agent or ""

    @property
    def is_arcadedb(self) -> bool:
        return "ArcadeDB" in self.agent

    @contextlib.contextmanager
    def _errors(self, cypher: str) -> Iterator[None]:
        """Turn driver errors into :class:`StoreError` subclasses that say what to do."""
        try:
            yield
        except (nex.ServiceUnavailable, nex.SessionExpired) as e:
            raise StoreConnectionError(
                f"Cannot reach a Bolt server at {self.uri} ({e}). Start it, or point "
                f"{', '.join(ENV_VARS)} at a running one (or use the embedded store).") from e
        except nex.AuthError as e:
            raise StoreAuthError(
                f"The server at {self.uri} rejected user {self._user!r}: wrong user name or "
                f"password. The password comes from {self._auth_source}.") from e
        except nex.ConstraintError as e:
            raise ConstraintViolationError(
                f"Uniqueness constraint violated: {e.message} (statement: {cypher[:200]})") from e
        except nex.Neo4jError as e:
            if e.code == "Neo.ClientError.Database.DatabaseNotFound":
                raise StoreQueryError(
                    f"Database {self.database!r} does not exist on {self.uri}. Set "
                    "NEO4J_DATABASE (or database=...) to an existing one.") from e
            raise StoreQueryError(f"{e.code}: {e.message} (statement: {cypher[:200]})") from e

    # -- writes ------------------------------------------------------------------------
    def write_rows(self, cypher: str, rows: Iterable[Mapping[str, Any]], batch_size: int = 1000, *,
                   on_batch: Callable[[int], None] | None = None, retry_s: float | None = None,
                   **params: Any) -> int:
        """Upsert ``rows`` in batches, one write transaction per batch; returns rows written.

        ``cypher`` is either ``UNWIND $rows AS row ...`` or just the part after it
        (``MERGE (n:L {uid: row.uid}) SET n += row.props``). Extra ``params`` are passed to
        every batch. Each batch is retried by the driver on transient errors, for up to
        ``retry_s`` seconds (default: the driver's 30 s). ``on_batch(rows_done)`` follows each batch.
        """
        statement, n = _rows_cypher(cypher), 0

        def work(tx: neo4j.ManagedTransaction, batch: list[Mapping[str, Any]]) -> None:
            tx.run(statement, {**params, "rows": batch}).consume()

        retry = {} if retry_s is None else {"max_transaction_retry_time": retry_s}
        with self.driver.session(database=self.database, **retry) as session:
            for batch in _batches(rows, batch_size):
                with self._errors(statement):
                    session.execute_write(work, batch)
                n += len(batch)
                if on_batch is not None:
                    on_batch(n)
        return n

    def run_write(self, cypher: str, **params: Any) -> list[dict[str, Any]]:
        """Run one write statement in a write transaction; returns its records as dicts."""
        return self._execute(cypher, params, neo4j.RoutingControl.WRITE)

    def _execute(self, cypher: str, params: dict[str, Any], routing: neo4j.RoutingControl) -> list[dict[str, Any]]:
        with self._errors(cypher):
            records = self.driver.execute_query(cypher, parameters_=params, database_=self.database,
                                                routing_=routing).records
        return [r.data() for r in records]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        """Several write statements in one transaction: committed at the end of the block,
        rolled back if it raises."""
        with self.driver.session(database=self.database) as session:
            with self._errors("BEGIN"):
                tx = session.begin_transaction()
            try:
                yield StoreTransaction(tx, self)
            except BaseException:
                with contextlib.suppress(nex.Neo4jError, nex.DriverError):
                    tx.rollback()
                raise
            with self._errors("COMMIT"):
                tx.commit()

    def ensure_constraints(self, statements: Iterable[str]) -> int:
        """Run idempotent schema statements (``CREATE CONSTRAINT|INDEX ... IF NOT EXISTS``),
        each on its own as schema changes must be. Returns how many were run."""
        n = 0
        with self.driver.session(database=self.database) as session:
            for stmt in statements:
                if "IF NOT EXISTS" not in " ".join(stmt.upper().split()):
                    raise ValueError(f"Schema statement must be idempotent (IF NOT EXISTS): {stmt}")
                with self._errors(stmt):
                    session.run(stmt).consume()
                n += 1
        return n

    # -- reads -------------------------------------------------------------------------
    def read(self, cypher: str, **params: Any) -> list[dict[str, Any]]:
        """Run a statement written by this library with READ routing; records as dicts."""
        return self._execute(cypher, params, neo4j.RoutingControl.READ)

    def query(self, cypher: str, **params: Any) -> list[dict[str, Any]]:
        """Run untrusted ad-hoc Cypher that must not change the graph (see module docstring).

        Raises :class:`ReadOnlyQueryError` for anything that would write.
        """
        refuse = (f"Refused: this statement would change the graph, and query() is "
                  f"read-only. Use run_write() or write_rows() for writes. Statement: "
                  f"{cypher[:200]}")
        driver = self._reader or self.driver
        with driver.session(database=self.database,
                            default_access_mode=neo4j.READ_ACCESS) as session:
            with self._errors(cypher):
                try:
                    if self._reader is None and not self.is_arcadedb:
                        plan = session.run("EXPLAIN " + cypher, params).consume()
                        if plan.query_type != "r":
                            raise ReadOnlyQueryError(refuse)
                    tx = session.begin_transaction()
                    try:
                        result = tx.run(cypher, params)
                        records = [r.data() for r in result]
                        counters = result.consume().counters
                    finally:
                        tx.rollback()  # a read has nothing to commit
                except nex.ClientError as e:  # Forbidden (ArcadeDB) / AccessMode (Neo4j)
                    if isinstance(e, nex.Forbidden) or "AccessMode" in (e.code or ""):
                        raise ReadOnlyQueryError(f"{refuse} (server: {e.message})") from e
                    raise
        if counters.contains_updates or counters.contains_system_updates:
            raise ReadOnlyQueryError(refuse)
        return records

    # -- lifetime ----------------------------------------------------------------------
    def close(self) -> None:
        """Close the drivers. An embedded server keeps running (``i2x store stop``), unless
        it was opened with ``keep=False`` and nothing else holds it: then it stops here."""
        for d in (self.driver, self._reader):
            if d is not None:
                d.close()
        if self.server is not None:
            self.server.release()

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GraphStore(uri={self.uri!r}, database={self.database!r})"


__all__ = ["ENV_VARS", "GraphStore", "StoreError", "StoreTransaction"]
