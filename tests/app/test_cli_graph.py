"""``i2x ask``, ``i2x cypher`` and ``i2x view`` against the real embedded server holding the digits run."""

from __future__ import annotations

import json

import pytest

from i2x_plugin.cli import main
from i2x_plugin.graph.questions import ask


@pytest.fixture(scope="module")
def cli(digits_graph):  # type: ignore[no-untyped-def]
    """Runs ``i2x`` on the store of ``digits_graph``; returns (exit code, stdout, stderr)."""
    store = digits_graph.store
    target = ["--store-dir", str(store.server.data_dir)] if store.server else ["--store", "env"]

    def run(capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
        code = main([*argv, *target])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def node_count(digits_graph) -> int:  # type: ignore[no-untyped-def]
    return digits_graph.store.read("MATCH (n) RETURN count(n) AS n")[0]["n"]


def test_ask_list(capsys) -> None:
    assert main(["ask", "--list"]) == 0
    out = capsys.readouterr().out
    assert "2. class_drivers(cls:int, step:int?, top:int=5)" in out and "14. prototype_exemplars(k:int)" in out
    assert main(["ask", "--list", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 17


def test_ask_table_and_json(cli, capsys, digits_graph) -> None:
    e = digits_graph.explanation
    code, out, _ = cli(capsys, "ask", "learning_order", "--run", e.run_id)
    assert code == 0 and "rank  a  b" in out
    code, out, _ = cli(capsys, "ask", "class_drivers", "--param", "cls=3", "--param", "step=1", "--run", e.run_id,
                       "--format", "json")
    answer = json.loads(out)
    assert code == 0 and answer["params"] == {"cls": 3, "step": 1, "top": 5}
    assert [r["prototype"] for r in answer["rows"]] == [r.prototype for r in ask(
        digits_graph.store, "class_drivers", run_id=e.run_id, cls=3, step=1)]


def test_ask_bad_input(cli, capsys, digits_graph) -> None:
    run = digits_graph.explanation.run_id
    code, _, err = cli(capsys, "ask", "why_not", "--run", run)
    assert code == 2 and "Unknown question 'why_not'" in err and "class_drivers" in err
    code, _, err = cli(capsys, "ask", "class_drivers", "--param", "cls=three", "--run", run)
    assert code == 2 and "parameter cls" in err and "int" in err and "got 'three'" in err
    code, _, err = cli(capsys, "ask", "class_drivers", "--run", run)
    assert code == 2 and "needs parameter cls" in err
    code, _, err = cli(capsys, "ask", "class_drivers", "--param", "cls", "--run", run)
    assert code == 2 and "not NAME=VALUE" in err
    code, out, _ = cli(capsys, "ask", "prototype_exemplars", "--param", "k=500", "--run", run)
    assert code == 0 and "(no rows) Prototype 500 does not exist" in out


def test_cypher_reads(cli, capsys, digits_graph) -> None:
    run = digits_graph.explanation.run_id
    code, out, _ = cli(capsys, "cypher", "MATCH (c:Class {runId: $run}) RETURN count(c) AS classes",
                       "--param", f"run={run}", "--format", "json")
    assert code == 0 and json.loads(out) == [{"classes": digits_graph.explanation.num_classes}]
    code, out, _ = cli(capsys, "cypher", "MATCH (r:Run {runId: $run}) RETURN r", "--param", f"run={run}",
                       "--format", "json")
    assert code == 0 and json.loads(out)[0]["r"]["runId"] == run  # a node comes back as its properties


@pytest.mark.parametrize("statement", [
    "CREATE (n:Class {runId: 'x', key: 'evil'})",
    "MATCH (n:Run) DETACH DELETE n",
    "MATCH (n:Run) SET n.status = 'hacked'",
])
def test_cypher_refuses_writes_and_changes_nothing(cli, capsys, digits_graph, statement) -> None:
    before = node_count(digits_graph)
    code, out, err = cli(capsys, "cypher", statement)
    assert code == 2 and "Refused" in err and "read-only" in err and out == ""
    assert node_count(digits_graph) == before
    assert digits_graph.store.read("MATCH (r:Run {runId: $r}) RETURN r.status AS s",
                                   r=digits_graph.explanation.run_id)[0]["s"] == "complete"


def test_cypher_syntax_error_shows_the_server_message(cli, capsys) -> None:
    code, _, err = cli(capsys, "cypher", "MATCH (n:Run RETURN n")
    assert code == 1 and "SyntaxError" in err


def test_view_writes_offline_pages(cli, capsys, digits_graph, tmp_path) -> None:
    run = digits_graph.explanation.run_id
    code, out, _ = cli(capsys, "view", "prototype_exemplars", "--param", "k=2", "--run", run,
                       "--out", str(tmp_path / "k2.html"))
    assert code == 0 and (tmp_path / "k2.html").stat().st_size > 100_000 and "wrote" in out
    code, _, _ = cli(capsys, "view", "--run", run, "--out", str(tmp_path / "run.html"))
    assert code == 0 and "EXEMPLAR_OF" in (tmp_path / "run.html").read_text()
    code, _, err = cli(capsys, "view", "--param", "k=2", "--run", run, "--out", str(tmp_path / "bad.html"))
    assert code == 2 and "--param needs a QUESTION" in err
