"""Writing explanation graphs into a :class:`~i2x_plugin.store.GraphStore`, and deleting them.

:func:`write_explanation` upserts one run in batched ``UNWIND $rows ... MERGE``
statements under the (runId, key) uniqueness constraints of ``graph_schema/schema.cypher``, so
writing the same run twice changes nothing. It is honest about failure: the Run node is written
first with ``status: 'writing'`` and set to ``'complete'`` only after every node and relationship
is in; a failure leaves ``'writing'`` (server gone) or ``'failed'`` (with ``error``), and writing
the run again completes it without duplicates.

:func:`write_nodes` / :func:`write_relationships` are the same upserts for any label/type of the
schema (``i2x improve`` writes CurationSet and fine-tuned Checkpoint nodes through them).
:func:`delete_run` removes one run, in batches; :func:`read_run_graph` reads one back as networkx.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from i2x_plugin.graph_schema import ddl
from i2x_plugin.graph_schema.models import NODE_MODELS, GraphNode, GraphRelationship, node_model, relationship_model
from i2x_plugin.graph_schema.rows import GraphRows, explanation_rows, validated_rows
from i2x_plugin.store.server import StoreConnectionError, StoreError

if TYPE_CHECKING:
    import networkx as nx

    from i2x_plugin.store.graph import GraphStore
    from i2x_plugin.method.structure import StructuredExplanation

_log = logging.getLogger(__name__)
ProgressFn = Callable[[str, int, int], None]  # (label or type, rows done, rows of it)
BATCH_SIZE = 5000  # rows per write transaction; fewer, larger batches keep up with one raw UNWIND per type
_schema_ready: weakref.WeakSet[Any] = weakref.WeakSet()
# Every statement this module sends: module-level *_CYPHER constants (``{label}``, ``{source}`` and ``{target}`` are
# schema labels filled in by str.format), so tools/cypher-lint can check each with Neo4j's own analyser.
RELATIONSHIP_ENDPOINTS_CYPHER = (
    "UNWIND $rows AS row "
    "OPTIONAL MATCH (a:{source} {{runId: row.runId, key: row.from}}) "
    "OPTIONAL MATCH (b:{target} {{runId: row.runId, key: row.to}}) "
    "WITH row, a, b WHERE a IS NULL OR b IS NULL "
    "RETURN row.runId AS runId, row.from AS source, row.to AS target, a IS NULL AS noSource LIMIT 5")
RUN_WRITING_CYPHER = ("MERGE (n:Run {runId: $runId, key: $key}) SET n += $props, n.status = 'writing', "
                      "n.updatedAt = $now, n.error = null")
RUN_COMPLETE_CYPHER = "MATCH (n:Run {runId: $runId, key: $runId}) SET n.status = 'complete', n.updatedAt = $now"
RUN_FAILED_CYPHER = ("MATCH (n:Run {runId: $runId, key: $runId}) SET n.status = 'failed', n.error = $error, "
                     "n.updatedAt = $now")
RUN_DELETING_CYPHER = "MATCH (n:Run {runId: $runId}) SET n.status = 'deleting'"
DELETE_NODES_CYPHER = ("MATCH (n:{label} {{runId: $runId}}) WITH n LIMIT $limit DETACH DELETE n "
                       "RETURN count(*) AS deleted")
DELETE_RUN_CYPHER = "MATCH (n:Run {runId: $runId}) DETACH DELETE n RETURN count(*) AS deleted"
LIST_RUNS_CYPHER = ("MATCH (r:Run) RETURN r.runId AS runId, r.status AS status, r.createdAt AS createdAt, "
                    "r.updatedAt AS updatedAt, r.model AS model, r.dataset AS dataset ORDER BY r.updatedAt DESC, r.runId")
RUN_NODES_CYPHER = ("MATCH (n:{label} {{runId: $runId}}) WHERE $keys IS NULL OR n.key IN $keys "
                    "RETURN properties(n) AS props")
RUN_RELATIONSHIPS_CYPHER = (
    "MATCH (a:{label} {{runId: $runId}})-[r]->(b) WHERE ($keys IS NULL OR a.key IN $keys) AND NOT type(r) IN $skip "
    "RETURN a.key AS source, type(r) AS type, labels(b) AS labels, b.key AS target, b.runId AS targetRun, "
    "properties(r) AS props")


@dataclass(frozen=True)
class WriteSummary:
    """What :func:`write_explanation` wrote."""

    run_id: str
    nodes: int
    relationships: int
    seconds: float

    @property
    def rows(self) -> int:
        return self.nodes + self.relationships

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")


@dataclass(frozen=True)
class RunInfo:
    """A Run node as listed by :func:`list_runs`."""

    run_id: str
    status: str | None
    created_at: str | None
    updated_at: str | None
    model: str | None
    dataset: str | None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def ensure_schema(store: GraphStore, force: bool = False) -> int:
    """Create the constraints and indexes (idempotent; once per store object unless ``force``)."""
    if store in _schema_ready and not force:
        return 0
    n = store.ensure_constraints(ddl.schema_statements())
    _schema_ready.add(store)
    return n


def _write(store: GraphStore, cypher: str, rows: list[dict[str, Any]], what: str, batch_size: int,
           progress: ProgressFn | None, retry_s: float = 30.0) -> int:
    """One write transaction per batch; the driver retries a failed batch for up to ``retry_s`` seconds."""
    on_batch = None if progress is None else (lambda done: progress(what, done, len(rows)))
    return store.write_rows(cypher, rows, batch_size, on_batch=on_batch, retry_s=retry_s)


def write_nodes(store: GraphStore, label: str, rows: Iterable[Mapping[str, Any] | GraphNode], *,
                batch_size: int = BATCH_SIZE, validate: bool = True, progress: ProgressFn | None = None) -> int:
    """Upsert nodes of a schema ``label`` (rows: dicts with runId, key, name, ... or model instances).

    Rows are validated against the label's model (unknown or mistyped properties raise). Returns
    how many rows were written.
    """
    model = node_model(label)
    props = validated_rows(model, rows) if validate else [dict(r) for r in rows]  # type: ignore[arg-type]
    ensure_schema(store)
    return _write(store, ddl.merge_node_cypher(label), ddl.node_params(props), label, batch_size, progress)


def write_relationships(store: GraphStore, rel_type: str, rows: Iterable[Mapping[str, Any] | GraphRelationship],
                        *, batch_size: int = BATCH_SIZE, validate: bool = True, check_endpoints: bool = True,
                        progress: ProgressFn | None = None) -> int:
    """Upsert relationships of a schema type (rows: runId, from, to = node keys, + properties).

    With ``check_endpoints`` (default) a row naming a node that does not exist raises instead of
    being skipped silently (MATCH finds nothing); write the nodes first.
    """
    model = relationship_model(rel_type)
    props = validated_rows(model, rows) if validate else [dict(r) for r in rows]  # type: ignore[arg-type]
    params = ddl.relationship_params(rel_type, props)
    if check_endpoints and params:
        missing = store.read(RELATIONSHIP_ENDPOINTS_CYPHER.format(source=model.source.label,
                                                                  target=model.target.label), rows=params)
        if missing:
            shown = "; ".join(
                f"{r['source']}->{r['target']} (no {model.source.label if r['noSource'] else model.target.label} "
                f"{r['source'] if r['noSource'] else r['target']!r} in run {r['runId']!r})" for r in missing)
            raise ValueError(f"{rel_type} rows name nodes that do not exist: {shown}. "
                             "Write those nodes first (write_nodes), or fix the keys.")
    ensure_schema(store)
    return _write(store, ddl.merge_relationship_cypher(rel_type), params, rel_type, batch_size, progress)


def _progress_bar(enabled: bool | ProgressFn, total: int, run_id: str) -> tuple[ProgressFn | None, Any]:
    if callable(enabled):
        return enabled, None
    if not enabled:
        return None, None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=f"graph {run_id}", unit="row")
    seen: dict[str, int] = {}

    def update(what: str, done: int, _total: int) -> None:
        bar.update(done - seen.get(what, 0))
        seen[what] = done

    return update, bar


def write_graph_rows(store: GraphStore, rows: GraphRows, run_id: str, *, batch_size: int = BATCH_SIZE,
               progress: bool | ProgressFn = False, retry_s: float = 30.0) -> WriteSummary:
    """Write prepared :class:`GraphRows` of one run with the Run-status protocol (see module doc)."""
    t0 = time.perf_counter()
    runs = rows.nodes.get("Run", [])
    if len(runs) != 1 or runs[0]["runId"] != run_id:
        raise ValueError(f"GraphRows must hold exactly one Run node for run {run_id!r}.")
    ensure_schema(store)
    report, bar = _progress_bar(progress, len(rows), run_id)
    (run,) = ddl.node_params(runs)
    store.run_write(RUN_WRITING_CYPHER, runId=run["runId"], key=run["key"], props=run["props"], now=_now())
    try:
        nodes = 1
        for label, items in rows.nodes.items():
            if label != "Run":
                nodes += _write(store, ddl.merge_node_cypher(label), ddl.node_params(items), label, batch_size,
                                report, retry_s)
        rels = 0
        for rel_type, items in rows.relationships.items():
            rels += _write(store, ddl.merge_relationship_cypher(rel_type), ddl.relationship_params(rel_type, items),
                           rel_type, batch_size, report, retry_s)
        store.run_write(RUN_COMPLETE_CYPHER, runId=run_id, now=_now())
    except BaseException as err:
        if isinstance(err, StoreConnectionError):
            raise  # the server is gone: the Run stays 'writing', which is not 'complete'
        try:  # the write's own error is what the caller needs; this one is logged beside it
            store.run_write(RUN_FAILED_CYPHER, runId=run_id, now=_now(), error=f"{type(err).__name__}: {err}"[:1000])
        except StoreError as mark_err:
            _log.warning("Writing run %r failed (%s: %s), and marking its Run node 'failed' failed too (%s); the "
                         "Run stays 'writing', which is not 'complete'.", run_id, type(err).__name__, err, mark_err)
        raise
    finally:
        if bar is not None:
            bar.close()
    return WriteSummary(run_id, nodes, rels, time.perf_counter() - t0)


def write_explanation(store: GraphStore, explanation: StructuredExplanation, *, batch_size: int = BATCH_SIZE,
                      replace: bool = False, progress: bool | ProgressFn = False, retry_s: float = 30.0,
                      uncertain_samples_per_pair: int | None = 50,
                      image_uris: Mapping[int, str] | None = None) -> WriteSummary:
    """Upsert the graph of ``explanation`` (see :func:`~i2x_plugin.graph_schema.explanation_rows`).

    ``replace`` deletes the run's old graph first (use it when the explanation changed, e.g. fewer
    samples, so no stale node remains); by default the write is an idempotent upsert.
    ``progress``: a tqdm bar (True) or a callback ``(label_or_type, done, total)`` after each batch.
    ``retry_s``: how long the driver retries a failed batch (transient errors, a restarting server).
    """
    rows = explanation_rows(explanation, uncertain_samples_per_pair=uncertain_samples_per_pair,
                            image_uris=image_uris)
    if replace:
        delete_run(store, explanation.run_id)
    return write_graph_rows(store, rows, explanation.run_id, batch_size=batch_size, progress=progress,
                            retry_s=retry_s)


def delete_run(store: GraphStore, run_id: str, batch_size: int = 5000) -> int:
    """Delete every node (and so every relationship) of one run, in batches; returns nodes deleted."""
    deleted = 0
    # Mark the run first, delete its Run node last: a half-deleted run never looks complete.
    store.run_write(RUN_DELETING_CYPHER, runId=run_id)
    for label in [lb for lb in NODE_MODELS if lb != "Run"]:
        while True:
            n = store.run_write(DELETE_NODES_CYPHER.format(label=label), runId=run_id, limit=batch_size)[0]["deleted"]
            deleted += n
            if n < batch_size:
                break
    deleted += store.run_write(DELETE_RUN_CYPHER, runId=run_id)[0]["deleted"]
    return deleted


def list_runs(store: GraphStore) -> list[RunInfo]:
    """Every Run in the graph, most recently written first."""
    rows = store.read(LIST_RUNS_CYPHER)
    return [RunInfo(r["runId"], r["status"], r["createdAt"], r["updatedAt"], r["model"], r["dataset"]) for r in rows]


def read_run_graph(store: GraphStore, run_id: str, keys: Mapping[str, Iterable[str]] | None = None,
                   skip_types: Iterable[str] = ()) -> nx.MultiDiGraph:
    """Read one run back from the store as the networkx graph of
    :meth:`~i2x_plugin.graph_schema.GraphRows.to_networkx` (same node ids, edge keys and properties).

    ``keys`` (label -> node keys) restricts it to those nodes and the relationships among them;
    ``skip_types`` leaves out relationships of those types.
    """
    import networkx as nx

    from i2x_plugin.graph_schema.rows import edge_key, node_id

    graph = nx.MultiDiGraph()
    skip = sorted(set(skip_types))
    labels = list(keys) if keys is not None else list(NODE_MODELS)
    for label in labels:
        node_model(label)
        wanted = None if keys is None else sorted(set(keys[label]))
        rows = store.read(RUN_NODES_CYPHER.format(label=label), runId=run_id, keys=wanted)
        for r in rows:
            graph.add_node(node_id(label, r["props"]["key"]), labels=[label], **r["props"])
    for label in labels:
        wanted = None if keys is None else sorted(set(keys[label]))
        rows = store.read(RUN_RELATIONSHIPS_CYPHER.format(label=label), runId=run_id, keys=wanted, skip=skip)
        for r in rows:
            target = node_id(r["labels"][0], r["target"])
            if r["targetRun"] != run_id or target not in graph:
                continue
            model = relationship_model(r["type"])
            graph.add_edge(node_id(label, r["source"]), target, key=edge_key(model, r["props"]), type=r["type"],
                           **r["props"])
    return graph
