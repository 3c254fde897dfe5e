"""The real Neo4j Browser (2025.6.0, ``shared/neo4j-browser/dist``) on the embedded store, through ``i2x store browser``.

Headless Chromium opens the build served on loopback, connects through the form as the read-only user, opens
the I2X guide the bridge serves, applies the project's style from it, runs a table question and a graph of a
question by clicking the guide's blocks, and types a write, which the server refuses. Asserted is what a user
sees: the frames' text, the drawn nodes' and relationships' colours and captions. Skipped, saying why, where
Chromium or the Browser build is missing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_ui import FRAMES, ROOT, BrowserUI, browser_dist, browser_page, serve_dist

from chromium_cdp import CHROMIUM
from i2x_plugin.cli import main
from i2x_plugin.graph_schema.catalog import get_question
from i2x_plugin.graph.questions import ask
from i2x_plugin.store import EmbeddedServer
from i2x_plugin.store.bridge import BRIDGE_MODULE, BridgeStatus, start_bridge, stop_store
from i2x_plugin.store.lifecycle import pid_alive

DIST = browser_dist()
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser installs Debian's package)"),
    pytest.mark.skipif(DIST is None, reason="no Neo4j Browser build: shared/neo4j-browser/dist is not beside the "
                       "repository (set I2X_NEO4J_BROWSER_DIST to a build's dist folder)"),
]
GRASS = {"Class": "#F79767", "Prototype": "#C990C0", "UNCERTAIN_BETWEEN": "#EB2728"}  # graph_schema/i2x.grass
DEFAULT_RELATIONSHIP = "#A5ABB6"  # Browser's own relationship colour, before the style
DOCS_SHOT = ROOT / "docs" / "neo4j-browser.png"


@pytest.fixture(scope="module")
def browser_url() -> Iterator[str]:
    with serve_dist(DIST) as url:  # type: ignore[arg-type]
        yield url


def param(block: str, name: str) -> str:
    match = re.search(rf":param {name} => (.+);", block)
    assert match, f"the guide's :param block does not set {name}: {block}"
    return match.group(1)


def logged(log: Path, line: str, within: float = 30.0) -> bool:
    """Wait until ``log`` has ``line`` (a bound, not a timing assertion)."""
    deadline = time.monotonic() + within
    while line not in log.read_text():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def connected(ui: BrowserUI, bridge: BridgeStatus, password: str) -> str:
    ui.connect(bridge.connect_url, "i2x_reader", password)
    return ui.newest("You are connected as user", "the connected message", 60)


def test_browser_guide_style_questions_and_a_refused_write(browser_url, bridge, digits_graph, store_server,
                                                           tmp_path, request) -> None:
    if request.node.callspec.params.get("graph_store") != "embedded":
        pytest.skip("the bridge serves the embedded store")
    e, store = digits_graph.explanation, digits_graph.store
    with browser_page(browser_url) as ui:
        text = connected(ui, bridge, store_server.reader_auth[1])
        assert "i2x_reader" in text and f"to {bridge.connect_url}" in text
        # Browser's post-connect settings, answered by the bridge: the style and the guide open by themselves.
        ui.newest(f":style http://localhost:{bridge.port}/i2x.grass\n", "the style applied after connecting")
        ui.wait(f"{FRAMES}.some(f => f.innerText.startsWith({json.dumps(bridge.play_command)}) && "
                "f.querySelector('[data-testid=nextSlide]'))", "the guide opened after connecting")

        # The guide for this run (the latest complete one may be another test's). :clear first: Browser would
        # stack a second guide into the first one's frame.
        ui.run(":clear")
        ui.wait(f"{FRAMES}.length === 0", "the cleared stream")
        ui.run(f"{bridge.play_command}?run={e.run_id}")
        blocks = ui.guide_blocks()
        assert blocks[0] == f":style http://localhost:{bridge.port}/i2x.grass"
        ui.click_block(0)  # the style, applied without drag and drop
        style = ui.newest("relationship.UNCERTAIN_BETWEEN", "the :style frame")
        assert style.startswith(":style http://localhost") and GRASS["UNCERTAIN_BETWEEN"] in style

        # A table question, run from the guide's blocks: the rows i2x ask gives.
        ui.guide_to("class_drivers")
        blocks = ui.guide_blocks()
        assert param(blocks[0], "runId") == f'"{e.run_id}"' and param(blocks[0], "step") == "null"
        cls, top = int(param(blocks[0], "cls")), int(param(blocks[0], "top"))
        assert blocks[1] == get_question("class_drivers").cypher
        ui.click_block(0)
        ui.params_set({"runId": f'"{e.run_id}"', "cls": str(cls), "step": "null", "top": str(top)})
        answer = ask(store, "class_drivers", run_id=e.run_id, cls=cls, step=None, top=top)
        assert len(answer) > 0
        ui.click_block(1)
        table = ui.newest(f'"{answer[0].name}"', "the class_drivers table")
        cells = set(table.split())
        for row in answer:
            assert f'"{row.name}"' in cells and str(row.prototype) in cells, (row, table)

        # A question as a graph, drawn with the style: the run's captions, the style's colours.
        ui.guide_to("uncertain_prototypes")
        blocks = ui.guide_blocks()
        a, b = int(param(blocks[0], "a")), int(param(blocks[0], "b"))
        ui.click_block(0)
        ui.params_set({"a": str(a), "b": str(b)})
        ui.click_block(2)
        drawn = ui.graph()
        uncertain = ask(store, "uncertain_prototypes", run_id=e.run_id, a=a, b=b)
        assert len(uncertain) > 0
        names = {c["name"] for c in store.read("MATCH (c:Class {runId: $runId}) WHERE c.index IN [$a, $b] "
                                               "RETURN c.name AS name", runId=e.run_id, a=a, b=b)}
        assert sorted(n["caption"] for n in drawn["nodes"]) == sorted({row.name for row in uncertain} | names)
        fills = {n["caption"]: n["fill"] for n in drawn["nodes"]}
        assert {fills[row.name] for row in uncertain} == {GRASS["Prototype"]}
        assert {fills[name] for name in names} == {GRASS["Class"]}
        red = [r for r in drawn["relationships"] if r["fill"] == GRASS["UNCERTAIN_BETWEEN"]]
        # Captioned with the score (the style's '{score}'), cut with an ellipsis when long. Each prototype has
        # its edge to each class of the pair; Browser also draws the other UNCERTAIN_BETWEEN edges between the
        # nodes on screen (its "connect result nodes"), so there may be more.
        for row in uncertain:
            shown = [r for r in red if repr(row.score).startswith(r["caption"].rstrip("…"))]
            assert len(shown) >= 2, (row, red)
        assert all(float(r["caption"].rstrip("…")) > 0 for r in red)
        assert DEFAULT_RELATIONSHIP not in {r["fill"] for r in red}
        shot = ui.screenshot(tmp_path / "neo4j-browser.png")
        if os.environ.get("I2X_DOCS_SCREENSHOT"):
            DOCS_SHOT.write_bytes(shot.read_bytes())

        # A write typed into the editor: the server refuses it, and Browser shows why.
        ui.run("CREATE (n:BrowserWrite {at: 1}) RETURN n")
        refused = ui.newest("Neo.ClientError.Security.Forbidden", "the refused write")
        assert "i2x_reader" in refused
    assert store.read("MATCH (n:BrowserWrite) RETURN count(n) AS n") == [{"n": 0}]
    assert shot.stat().st_size > 10_000


def test_store_stopped_while_connected_then_started_again(browser_url, tmp_path) -> None:
    """The store goes away under a connected Browser: Browser shows the error, the bridge stays up and
    says what to do, and after ``i2x store start`` the same connect URL works again."""
    db = tmp_path / "db"
    bridge = start_bridge(db)
    try:
        with browser_page(browser_url) as ui:
            password = EmbeddedServer(db).reader_auth[1]
            connected(ui, bridge, password)
            ui.run("RETURN 20 + 1 AS before")
            ui.newest("\t21", "the first answer")
            # The store crashes (SIGKILL; a clean stop with Bolt clients connected waits out ArcadeDB's 60 s).
            os.kill(EmbeddedServer(db).status().pid, signal.SIGKILL)
            assert logged(db / "bridge.log", "the embedded graph store is not running"), "the bridge did not notice"
            # Browser notices a lost server only at its next background check (20-90 s here), so connect again
            # at once, as a user would: the bridge refuses the WebSocket while the store is down, and Browser
            # says so in its connect form.
            ui.run(":server disconnect")
            ui.wait(f"{FRAMES}[0]?.innerText.includes('Connect to Neo4j')", "the connect form after disconnecting")
            ui.connect(bridge.connect_url, "i2x_reader", password)
            error = ui.wait(f"(() => {{ const t = {FRAMES}[0].innerText; "
                            "return /ServiceUnavailable|WebSocket connection failure|Could not reach/.test(t) ? t : '' })()",
                            "the connection error", 60)
            assert "You are connected" not in error
            assert pid_alive(bridge.pid, BRIDGE_MODULE), "the bridge exited with its store"
            assert main(["store", "start", "--data-dir", str(db)]) == 0
            connected(ui, bridge, password)  # the same URL, through the form again
            ui.run("RETURN 40 + 2 AS after")
            ui.newest("\t42", "an answer after the restart", 60)
        log = (db / "bridge.log").read_text()
        assert "Traceback" not in log and "the embedded graph store is not running" in log
        assert "the graph store is back" in log
    finally:
        stop_store(db)
