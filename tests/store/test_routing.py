"""A ``neo4j://`` routing URI: every read goes out in READ mode, every write in WRITE mode.

With a routing driver the access mode picks the cluster member (readers for READ, the leader for
WRITE). The embedded server answers Bolt's ROUTE message with a one-member routing table, so the
test connects through ``neo4j://`` as a user's cluster is reached, and reads the access mode of every
statement from the driver's own Bolt message log (``C: BEGIN {'mode': 'r'}`` opens a read
transaction; an auto-commit ``RUN`` carries it in its last field).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import re
import tokenize
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from i2x_plugin.graph.ingest import delete_run, write_explanation
from i2x_plugin.graph.questions import ask
from i2x_plugin.store import GraphStore

RUN_ID = "routing-check"
_WRITES = re.compile(r"\b(MERGE|CREATE|SET|DELETE|REMOVE|DROP)\b", re.IGNORECASE)


class BoltStatements(logging.Handler):
    """``(statement, 'r' | 'w')`` of every RUN the driver sends, from its DEBUG message log."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[tuple[str, str]] = []
        self.routed = False
        self._open: dict[str, str] = {}  # connection -> mode of its open explicit transaction

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        found = re.match(r"\[#(\w+)\]  C: (RUN|BEGIN|COMMIT|ROLLBACK|ROUTE)(.*)", message, re.S)
        if not found:
            return
        connection, kind, rest = found.groups()
        mode = "r" if "'mode': 'r'" in rest[-200:] else "w"
        if kind == "ROUTE":
            self.routed = True
        elif kind == "BEGIN":
            self._open[connection] = mode
        elif kind in ("COMMIT", "ROLLBACK"):
            self._open.pop(connection, None)
        else:
            token = next(tokenize.generate_tokens(io.StringIO(rest.strip()).readline))
            statement = eval(token.string)  # noqa: S307 - the repr of a str literal, from the driver's log
            self.statements.append((statement, self._open.get(connection, mode)))


@contextmanager
def bolt_statements() -> Iterator[BoltStatements]:
    logger, handler = logging.getLogger("neo4j"), BoltStatements()
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def routed_store(store_server) -> Iterator[GraphStore]:
    uri = store_server.uri.replace("bolt://", "neo4j://")
    with GraphStore.from_uri(uri, auth=store_server.auth, database=store_server.database,
                             reader_auth=store_server.reader_auth) as store:
        yield store


def test_reads_go_out_in_read_mode_and_writes_in_write_mode(routed_store, digits_run):
    explanation = dataclasses.replace(digits_run.explanation, run_id=RUN_ID)
    try:
        with bolt_statements() as log:
            write_explanation(routed_store, explanation)
            ask(routed_store, "learning_order", RUN_ID)
            routed_store.query("MATCH (r:Run {runId: $id}) RETURN r.status AS status", id=RUN_ID)
    finally:
        delete_run(routed_store, RUN_ID)
    assert log.routed, "the driver never asked the server for a routing table"
    writes = [(s, m) for s, m in log.statements if _WRITES.search(s)]
    reads = [(s, m) for s, m in log.statements if not _WRITES.search(s)]
    assert writes and reads
    assert [s for s, m in writes if m != "w"] == []
    assert [s for s, m in reads if m != "r"] == []
