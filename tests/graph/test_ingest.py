"""Writing runs into the real embedded server: idempotency, run scoping, networkx parity, honest failure."""

from __future__ import annotations

import dataclasses
import os
import signal

import pytest
from pydantic import ValidationError

from i2x_plugin.graph_schema import explanation_rows
from i2x_plugin.graph.ingest import delete_run, read_run_graph, write_explanation, write_nodes, write_relationships
from i2x_plugin.graph.questions import ask
from i2x_plugin.store import EmbeddedServer, GraphStore, StoreConnectionError

RUN_ONLY = {"Run": ("status", "updatedAt", "error")}  # set by the write protocol, not part of the rows


def counts(store: GraphStore, run_id: str) -> dict[str, int]:
    """Nodes per label and relationships per type of one run."""
    nodes = store.read("MATCH (n {runId: $runId}) RETURN labels(n)[0] AS label, count(*) AS n", runId=run_id)
    rels = store.read("MATCH (a {runId: $runId})-[r]->() RETURN type(r) AS type, count(*) AS n", runId=run_id)
    return {**{r["label"]: r["n"] for r in nodes}, **{r["type"]: r["n"] for r in rels}}


def expected_counts(explanation) -> dict[str, int]:  # type: ignore[no-untyped-def]
    rows = explanation_rows(explanation)
    return {**{k: len(v) for k, v in rows.nodes.items()}, **{k: len(v) for k, v in rows.relationships.items()}}


def status(store: GraphStore, run_id: str) -> str | None:
    found = store.read("MATCH (r:Run {runId: $runId}) RETURN r.status AS status", runId=run_id)
    return found[0]["status"] if found else None


def test_write_is_complete_and_idempotent(digits_graph) -> None:
    store, e = digits_graph.store, digits_graph.explanation
    first = counts(store, e.run_id)
    assert first == expected_counts(e)
    assert status(store, e.run_id) == "complete"
    summary = write_explanation(store, e)  # the same run again: MERGE everywhere, nothing new
    assert counts(store, e.run_id) == first
    assert summary.nodes + summary.relationships == sum(first.values())
    assert status(store, e.run_id) == "complete"
    run = store.read("MATCH (r:Run {runId: $runId}) RETURN r.createdAt AS c, r.updatedAt AS u, r.config AS cfg",
                     runId=e.run_id)[0]
    assert run["c"] == e.created_at and run["u"] >= run["c"][:10]
    assert f'"k":{e.config.k}' in run["cfg"] and e.config.k == 16


def test_networkx_parity(digits_graph) -> None:
    """explanation_rows(explanation).to_networkx() and the graph read back from the store: same nodes, edges and properties."""
    e = digits_graph.explanation
    expected, stored = explanation_rows(e).to_networkx(), read_run_graph(digits_graph.store, e.run_id)
    assert set(stored.nodes) == set(expected.nodes)
    assert set(stored.edges(keys=True)) == set(expected.edges(keys=True))
    for node, data in expected.nodes(data=True):
        got = {k: v for k, v in stored.nodes[node].items() if k not in RUN_ONLY.get(data["labels"][0], ())}
        assert got == data, node
    for u, v, key, data in expected.edges(keys=True, data=True):
        assert stored.edges[u, v, key] == data, (u, v, key)
    assert stored.nodes[f"Run:{e.run_id}"]["status"] == "complete"


def test_delete_run_is_batched_and_run_scoped(digits_graph) -> None:
    store, e = digits_graph.store, digits_graph.explanation
    before = counts(store, e.run_id)
    doomed = dataclasses.replace(e, run_id="graph-digits-doomed")
    write_explanation(store, doomed)
    assert counts(store, doomed.run_id) == before
    deleted = delete_run(store, doomed.run_id, batch_size=100)  # several batches per label
    assert deleted == sum(len(v) for v in explanation_rows(doomed).nodes.values())
    assert counts(store, doomed.run_id) == {}
    assert counts(store, e.run_id) == before
    assert delete_run(store, "no-such-run") == 0


def test_a_failed_write_is_marked_and_rewriting_completes_it(digits_graph) -> None:
    store = digits_graph.store
    e = dataclasses.replace(digits_graph.explanation, run_id="graph-digits-fails")

    def fail_after_samples(what: str, done: int, total: int) -> None:
        if what == "Sample":
            raise RuntimeError("disk full (simulated)")

    with pytest.raises(RuntimeError, match="disk full"):
        write_explanation(store, e, progress=fail_after_samples)
    run = store.read("MATCH (r:Run {runId: $runId}) RETURN r.status AS s, r.error AS err", runId=e.run_id)[0]
    assert run["s"] == "failed" and "disk full" in run["err"]
    assert "DRIVES" not in counts(store, e.run_id)  # stopped before the relationships
    write_explanation(store, e)
    assert status(store, e.run_id) == "complete"
    assert counts(store, e.run_id) == expected_counts(e)
    assert store.read("MATCH (r:Run {runId: $runId}) RETURN r.error AS err", runId=e.run_id)[0]["err"] is None
    delete_run(store, e.run_id)


def test_server_stopped_mid_write(tmp_path, digits_run) -> None:
    """A separate server, killed in the middle of a write: clear error, run not complete; rerun completes it."""
    e = dataclasses.replace(digits_run.explanation, run_id="graph-digits-crash")
    server = EmbeddedServer(tmp_path / "crash-store").start()
    try:
        store = GraphStore.embedded(server.data_dir)

        def stop_server(what: str, done: int, total: int) -> None:
            if what == "DRIVES" and done >= 100:
                os.kill(server.pid, signal.SIGKILL)  # the server this test started

        with pytest.raises(StoreConnectionError, match="Cannot reach"):
            write_explanation(store, e, progress=stop_server, batch_size=100, retry_s=0)
        store.close()
        server.stop()  # clears the dead server's state file
        server.start()
        store = GraphStore.embedded(server.data_dir)
        assert status(store, e.run_id) == "writing"  # the server died before 'complete' (or 'failed')
        assert counts(store, e.run_id).get("DRIVES", 0) < expected_counts(e)["DRIVES"]
        write_explanation(store, e)
        assert status(store, e.run_id) == "complete"
        assert counts(store, e.run_id) == expected_counts(e)  # no duplicates
        store.close()
    finally:
        server.stop()


def test_write_nodes_and_relationships_validate(digits_graph) -> None:
    """The generic helpers (used for CurationSet / fine-tuned checkpoints) refuse bad rows clearly."""
    store, run = digits_graph.store, digits_graph.explanation.run_id
    with pytest.raises(ValidationError, match="colour"):
        write_nodes(store, "Class", [{"runId": run, "key": "99", "name": "x", "index": 99, "probeSamples": 0,
                                      "colour": "red"}])
    with pytest.raises(KeyError, match="Unknown node label 'Klass'"):
        write_nodes(store, "Klass", [])
    with pytest.raises(ValueError, match="REMOVES rows name nodes that do not exist.*train:123456"):
        write_relationships(store, "REMOVES", [{"runId": run, "from": "cs", "to": "train:123456"}])
    assert counts(store, run) == expected_counts(digits_graph.explanation)


def test_values_are_stored_and_matched_literally(digits_graph) -> None:
    """Quotes, backslashes and Cypher keywords in run ids and names: parameters, never string-built."""
    store = digits_graph.store
    weird = 'it\'s "x" \\ } MATCH (n) DETACH DELETE n //'
    names = [f'{c} "q" \\ \' RETURN 1; //' for c in digits_graph.explanation.class_names]
    e = dataclasses.replace(digits_graph.explanation, run_id=weird, class_names=names)
    before = counts(store, digits_graph.explanation.run_id)
    write_explanation(store, e)
    assert status(store, weird) == "complete"
    answer = ask(store, "learning_order", run_id=weird)
    assert [r.a for r in answer] == [a for a, _ in e.learning_order]
    assert answer[0].name_a == names[answer[0].a]
    drivers = ask(store, "class_drivers", run_id=weird, cls=e.drivers[0].cls)
    assert len(drivers) > 0
    assert counts(store, digits_graph.explanation.run_id) == before  # nothing else touched
    none = ask(store, "compare_runs", run_id=weird, other='x" OR 1=1 //')
    assert len(none) == 0 and "not a complete run" in none.hint
    delete_run(store, weird)
    assert status(store, weird) is None



def test_a_failed_failure_mark_is_logged_not_hidden(tmp_path, digits_run, caplog) -> None:
    """The write fails, then marking the Run 'failed' fails too (server gone): the write's error is raised and
    the second one logged beside it."""
    e = dataclasses.replace(digits_run.explanation, run_id="graph-digits-mark")
    server = EmbeddedServer(tmp_path / "mark-store").start()
    try:
        store = GraphStore.embedded(server.data_dir)

        def fail_and_stop(what: str, done: int, total: int) -> None:
            if what == "Sample":
                os.kill(server.pid, signal.SIGKILL)  # the server this test started
                raise RuntimeError("disk full (simulated)")

        with caplog.at_level("WARNING", logger="i2x_plugin.graph.ingest"), pytest.raises(RuntimeError, match="disk full"):
            write_explanation(store, e, progress=fail_and_stop, retry_s=0)
        store.close()
        (record,) = [r for r in caplog.records if r.name == "i2x_plugin.graph.ingest"]
        assert "'graph-digits-mark'" in record.getMessage() and "RuntimeError: disk full" in record.getMessage()
        assert "Cannot reach" in record.getMessage()  # why the mark failed
    finally:
        server.stop()
