"""Neo4j's own JavaScript driver, in headless Chromium, through the Browser bridge to the embedded store.

The official ``neo4j-driver`` browser bundle (npm, installed into ``tests/js/node_modules`` here when
it is missing) connects to ``bolt://localhost:PORT`` over ``ws://`` as the read-only user and does what
Neo4j Browser does after its connect form: its start-up queries, ``:param``, three catalog questions
(answers must equal ``GraphStore.ask``'s), and a write, which the server must refuse. Skipped, saying
why, only where Chromium or npm is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from chromium_cdp import CHROMIUM, open_page
from i2x_plugin.graph_schema.catalog import get_question
from i2x_plugin.graph.questions import ask
from i2x_plugin.store.bridge import start_bridge, stop_bridge

JS = Path(__file__).resolve().parent.parent / "js"
BUNDLE = JS / "node_modules" / "neo4j-driver" / "lib" / "browser" / "neo4j-web.min.js"
# Neo4j Browser 5's background queries after its connect form (its source, 2025): (query, database, transaction
# mode). None is the server's default database, "@chosen" the one Browser picks from SHOW DATABASES.
BROWSER_TYPES = ("CALL db.labels() YIELD label RETURN {name: 'labels', data: collect(label)[..1000]} AS result "
                 "UNION ALL CALL db.relationshipTypes() YIELD relationshipType "
                 "RETURN {name: 'relationshipTypes', data: collect(relationshipType)[..1000]} AS result "
                 "UNION ALL CALL db.propertyKeys() YIELD propertyKey "
                 "RETURN {name: 'propertyKeys', data: collect(propertyKey)[..1000]} AS result")
BROWSER_COUNTS = ("MATCH () RETURN {name: 'nodes', data: count(*)} AS result "
                  "UNION ALL MATCH ()-[]->() RETURN {name: 'relationships', data: count(*)} AS result")
STARTUP = [("SHOW DATABASES", "SYSTEM", "read"),  # the connect form's check
           ("CALL dbms.components() YIELD name, versions, edition", None, "write"),
           ("SHOW DATABASES", "system", "write"),
           ("CALL dbms.showCurrentUser()", None, "write"),
           ("CALL dbms.clientConfig()", "system", "write"),
           (BROWSER_TYPES, "@chosen", "read"),
           (BROWSER_COUNTS, "@chosen", "read"),
           ("SHOW PROCEDURES YIELD name, description, signature", "@chosen", "read"),
           ("SHOW FUNCTIONS YIELD name, description, signature", "@chosen", "read"),
           ("CALL db.schema.visualization()", "@chosen", "write")]  # :schema
# A graph as Browser draws it: the uncertain prototypes between two classes (docs/neo4j-browser.md).
GRAPH = ("MATCH (a:Class {runId: $runId, index: $a})<-[u:UNCERTAIN_BETWEEN {a: $a, b: $b}]-(p:Prototype)"
         "-[v:UNCERTAIN_BETWEEN {a: $a, b: $b}]->(b:Class {runId: $runId, index: $b}) RETURN a, u, p, v, b")
WRITE = "CREATE (n:BridgeWrite {at: timestamp()}) RETURN n"


@pytest.fixture(scope="module")
def driver_bundle() -> Path:
    """The neo4j-driver browser bundle, installed with npm from tests/js/package-lock.json if missing."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (make browser installs Debian's package)")
    if not BUNDLE.is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed, so Neo4j's JavaScript driver cannot be installed (tests/js)")
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and BUNDLE.is_file(), f"npm ci in {JS} failed:\n{done.stderr[-3000:]}"
    return BUNDLE


def test_a_kept_server_outlives_its_bridge(store_server):
    start_bridge(store_server.data_dir)
    stop_bridge(store_server.data_dir)
    assert store_server.status().running


def literal(value: object) -> str:
    """A parameter as a user types it after ``:param name =>`` (a Cypher literal)."""
    return "null" if value is None else json.dumps(value)


def test_neo4j_driver_in_chromium_through_the_bridge(driver_bundle, bridge, digits_graph, store_server,
                                                     tmp_path, request) -> None:
    if request.node.callspec.params.get("graph_store") != "embedded":
        pytest.skip("the bridge serves the embedded store")
    e, store = digits_graph.explanation, digits_graph.store
    a, b = sorted({(u.a, u.b) for u in e.uncertain})[0]
    sample = int(e.sample_ids[int((e.predictions[-1] != e.labels).nonzero()[0][0])])
    questions = {"class_drivers": {"cls": 3, "step": None, "top": 5},
                 "uncertain_prototypes": {"a": a, "b": b},
                 "sample_evidence": {"sample": sample}}
    params = {"runId": e.run_id} | {k: v for p in questions.values() for k, v in p.items()}
    user, password = store_server.reader_auth
    plan = {"url": bridge.connect_url, "user": user, "password": password,
            "startup": [{"query": q, "database": db, "mode": mode} for q, db, mode in STARTUP],
            "params": {k: literal(v) for k, v in params.items()},
            "questions": {name: get_question(name).cypher for name in questions}, "graph": GRAPH, "write": WRITE}
    page = tmp_path / "browser.html"
    page.write_text(f'<!doctype html><meta charset="utf-8"><script src="{driver_bundle.as_uri()}"></script>'
                    f'<script src="{(JS / "browser_session.js").as_uri()}"></script>', encoding="utf-8")

    with open_page(page.as_uri()) as tab:
        assert tab.evaluate("typeof neo4j.driver") == "function", "the neo4j-driver bundle did not load"
        got = json.loads(tab.evaluate(f"browserSession({json.dumps(plan)})", timeout=120))

    # Browser's start-up: what it needs answers; the gaps listed in docs/neo4j-browser.md are what they are
    # (if one starts working, update the docs).
    assert bridge.connect_url.startswith("bolt://localhost:") and "ArcadeDB" in got["server"]["agent"]
    startup = {(s["query"], s["database"]): s for s in got["startup"]}
    rows = {key: s.get("rows") for key, s in startup.items()}
    assert startup[("SHOW DATABASES", "SYSTEM")]["error"]["code"] == "Neo.ClientError.Security.Forbidden"
    assert rows[(STARTUP[1][0], None)] == [{"name": "Neo4j Kernel", "versions": ["5.26.0"], "edition": "community"}]
    assert got["database"] == "i2x" and {"i2x", "system"} <= {d["name"] for d in rows[("SHOW DATABASES", "system")]}
    assert rows[("CALL dbms.showCurrentUser()", None)][0]["user"] == "i2x_reader"
    # Browser 2025.6 (driver 5.26) gets its post-connect commands from the bridge (test_neo4j_browser.py); this
    # driver (6.3) proposes Bolt's manifest handshake (0x000001FF), which the bridge leaves alone: the server's own
    # empty answer.
    assert rows[("CALL dbms.clientConfig()", "system")] == []
    meta = {r["result"]["name"]: r["result"]["data"] for r in rows[(BROWSER_TYPES, "@chosen")]}
    assert {"Run", "Prototype", "Class", "Sample"} <= set(meta["labels"])
    assert {"KEY_DRIVER_OF", "UNCERTAIN_BETWEEN"} <= set(meta["relationshipTypes"])
    assert meta["propertyKeys"] == []
    counts = {r["result"]["name"]: r["result"]["data"] for r in rows[(BROWSER_COUNTS, "@chosen")]}
    assert counts == {"nodes": store.read("MATCH (n) RETURN count(n) AS n")[0]["n"],
                      "relationships": store.read("MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"]}
    for listing in STARTUP[7:9]:
        assert "signature" in startup[(listing[0], "@chosen")]["error"]["message"]
    assert "nodes" not in rows[("CALL db.schema.visualization()", "@chosen")][0]  # not Neo4j's shape

    # :param, then the catalog questions: the same answers as i2x ask.
    assert got["params"] == params
    for name, given in questions.items():
        answer = ask(store, name, run_id=e.run_id, **given)
        assert len(answer) > 0, f"{name} should have an answer on the digits run"
        assert got["questions"][name] == {"rows": answer.to_dicts()}, name

    # A graph Browser can draw: nodes with labels, relationships joining them by element id.
    drawn = got["graph"]["rows"]
    expected = ask(store, "uncertain_prototypes", run_id=e.run_id, a=a, b=b)
    assert sorted(r["p"]["properties"]["index"] for r in drawn) == sorted(row.prototype for row in expected)
    for r in drawn:
        assert r["p"]["labels"] == ["Prototype"] and r["u"]["type"] == "UNCERTAIN_BETWEEN"
        assert (r["u"]["startNodeElementId"], r["u"]["endNodeElementId"]) == (r["p"]["elementId"], r["a"]["elementId"])
        assert r["v"]["endNodeElementId"] == r["b"]["elementId"]

    assert got["write"]["error"]["code"] == "Neo.ClientError.Security.Forbidden", got["write"]
    assert store.read("MATCH (n:BridgeWrite) RETURN count(n) AS n") == [{"n": 0}]
