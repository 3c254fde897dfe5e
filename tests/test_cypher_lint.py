"""tools/cypher-lint: every statement the code sends is collected, and Neo4j's analyser fails on a bad one."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

LINT = Path(__file__).resolve().parents[1] / "tools" / "cypher-lint"


def _collector():
    spec = importlib.util.spec_from_file_location("cypher_lint_statements", LINT / "statements.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_every_statement_is_collected_from_the_code_and_none_is_sent_inline(tmp_path):
    from i2x_plugin.graph_schema.catalog import load_catalog
    from i2x_plugin.graph_schema.models import NODE_MODELS, RELATIONSHIP_MODELS

    collector = _collector()
    found = collector.collect()
    sources = {s["source"] for s in found["statements"]}
    assert {f"catalog:{name}" for name in load_catalog()} <= sources
    assert {f"ddl:merge_node_cypher({label})" for label in NODE_MODELS} <= sources
    assert {f"ddl:merge_relationship_cypher({t})" for t in RELATIONSHIP_MODELS} <= sources
    assert {f"i2x_plugin.graph.ingest.DELETE_NODES_CYPHER[{label}]" for label in NODE_MODELS} <= sources
    assert {"i2x_plugin.graph.ingest.RUN_FAILED_CYPHER", "i2x_plugin.store.graph.PING_CYPHER"} <= sources
    assert found["statements"][0]["parameters"]["runId"] == ""  # catalog questions declare theirs
    # A statement passed inline would escape the list: it is found and named.
    planted = tmp_path / "planted.py"
    planted.write_text('def f(store, label):\n    store.read("MATCH (n) RETURN n")\n'
                       '    store.run_write(f"MATCH (n:{label}) DELETE n")\n    store.read(QUERY_CYPHER)\n')
    assert [line for line, _ in collector.sent_literals(planted)] == [2, 3]


@pytest.mark.skipif(shutil.which("node") is None or not (LINT / "node_modules").is_dir(),
                    reason="node or tools/cypher-lint/node_modules missing (make cypher-lint installs it)")
def test_the_lint_fails_on_a_planted_bad_statement(tmp_path):
    schema = {"labels": ["Run"], "relationshipTypes": [], "propertyKeys": ["runId", "status"]}
    good = {"source": "good", "cypher": "MATCH (r:Run {runId: $runId}) RETURN r.status AS status",
            "parameters": {"runId": ""}}
    bad = [
        {"source": "deprecated", "cypher": "MATCH (r:Run) CALL { WITH r RETURN r.status AS s } RETURN s",
         "parameters": {}},
        {"source": "apoc", "cypher": "MATCH (r:Run) RETURN apoc.text.join([r.status], ',') AS s", "parameters": {}},
        {"source": "undeclared", "cypher": "MATCH (r:Run {runId: $run}) RETURN r", "parameters": {"runId": ""}},
        {"source": "typo", "cypher": "MATCH (r:Rnu) RETURN r", "parameters": None},
        {"source": "syntax", "cypher": "MATCH (r:Run RETURN r", "parameters": None},
    ]

    def lint(statements: list[dict]) -> subprocess.CompletedProcess:
        path = tmp_path / "statements.json"
        path.write_text(json.dumps({"schema": schema, "statements": statements}))
        return subprocess.run(["node", str(LINT / "lint.mjs"), str(path)], capture_output=True, text=True,
                              timeout=120)

    assert lint([good]).returncode == 0
    out = lint([good, *bad])
    assert out.returncode == 1, out.stdout
    assert "6 statements checked" in out.stdout and "good:" not in out.stdout
    for planted, says in [("deprecated", "is deprecated"), ("apoc", "apoc.text.join is not present"),
                          ("undeclared", "Parameter $run is not defined"), ("typo", "Label Rnu is not present"),
                          ("syntax", "Invalid input")]:
        assert any(line.startswith(f"{planted}:") and says in line for line in out.stdout.splitlines()), planted
