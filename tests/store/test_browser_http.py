"""The bridge's plain HTTP answers (``i2x_plugin.store.browser_http``) and the guide it serves (``graph.guide``):
Browser's discovery request and the guide's CORS preflight answered for pages on loopback only, any other
origin refused without a CORS header, and the guide's content for the digits run."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest

from i2x_plugin.graph_schema import GRASS_PATH, load_catalog
from i2x_plugin.store.bridge import BridgeStatus
from i2x_plugin.store.browser_http import loopback_origin
from i2x_plugin.graph.guide import GRAPH_OF, GuideRun, param_commands, render_guide

LOOPBACK = ["http://127.0.0.1:8090", "http://localhost:3000", "http://[::1]:8080"]
ELSEWHERE = ["https://browser.neo4j.io", "http://192.0.2.1:8080", "null", "http://localhost.example.org"]


def fetch(bridge: BridgeStatus, path: str, origin: str | None = None, method: str = "GET",
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{bridge.port}{path}", method=method,
                                     headers={**({"Origin": origin} if origin else {}), **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


@pytest.mark.parametrize("origin", LOOPBACK)
def test_discovery_answered_with_cors_for_a_loopback_page(bridge, origin) -> None:
    status, headers, body = fetch(bridge, "/", origin, headers={"Accept": "application/json"})
    assert status == 200 and headers["access-control-allow-origin"] == origin
    found = json.loads(body)
    assert found["bolt_direct"] == bridge.connect_url and "bolt_routing" not in found  # neo4j:// cannot work here
    assert "oidc_providers" in found["auth_config"]  # what Browser checks to take it for Neo4j's discovery


@pytest.mark.parametrize("origin", ELSEWHERE)
@pytest.mark.parametrize("path", ["/", "/guide.html", "/i2x.grass"])
def test_any_other_origin_is_refused_without_a_cors_header(bridge, origin, path) -> None:
    for method in ("GET", "OPTIONS"):
        status, headers, body = fetch(bridge, path, origin, method)
        assert status == 403 and "access-control-allow-origin" not in headers, (method, headers)
        assert b"localhost only" in body and b"<article" not in body


def test_the_guide_preflight_and_page_for_a_loopback_page(bridge, digits_graph, request) -> None:
    if request.node.callspec.params.get("graph_store") != "embedded":
        pytest.skip("the bridge serves the embedded store")
    origin = "http://127.0.0.1:8090"
    asked = "pragma,cache-control,sentry-trace,baggage"  # what Browser's guide fetch asks for
    status, headers, _ = fetch(bridge, "/guide.html", origin, "OPTIONS", {
        "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": asked})
    assert status == 204 and headers["access-control-allow-origin"] == origin
    assert headers["access-control-allow-headers"] == asked and "GET" in headers["access-control-allow-methods"]

    run_id = digits_graph.explanation.run_id
    status, headers, body = fetch(bridge, f"/guide.html?run={run_id}", origin, headers={"pragma": "no-cache"})
    page = body.decode()
    assert status == 200 and headers["access-control-allow-origin"] == origin
    assert page.startswith('<article class="guide">') and page.count("<slide") == 2 + len(load_catalog())
    assert f":style http://localhost:{bridge.port}/i2x.grass" in page
    assert page.count(f':param runId =&gt; &quot;{run_id}&quot;;') == len(load_catalog())
    assert "<script" not in page and " on" not in re.sub(r">[^<]*<", "><", page)  # Browser strips both anyway
    _, _, style = fetch(bridge, "/i2x.grass", origin)
    assert style.decode() == GRASS_PATH.read_text(encoding="utf-8")

    status, _, body = fetch(bridge, "/guide.html?run=no-such-run", origin)
    assert status == 200 and b"no complete run &#x27;no-such-run&#x27;" in body


def test_other_paths_and_methods(bridge) -> None:
    assert fetch(bridge, "/db/data/")[0] == 404
    status, headers, _ = fetch(bridge, "/", method="POST")
    assert status == 405 and headers["allow"] == "GET, OPTIONS"
    status, headers, _ = fetch(bridge, "/")  # no Origin (curl, a script): answered, no CORS header
    assert status == 200 and "access-control-allow-origin" not in headers


def test_loopback_origins() -> None:
    assert all(loopback_origin(o) for o in LOOPBACK) and not any(loopback_origin(o) for o in ELSEWHERE)


def test_guide_parameters_stay_integers_and_every_question_has_a_slide() -> None:
    run = GuideRun("r1", examples={"driver": {"cls": 3, "k": 7}, "uncertain": {"a": 2, "b": 5}})
    page = render_guide(run, 7777)
    for question in load_catalog().values():
        assert f"{question.number}. {question.name}</h3>" in page
    uncertain = load_catalog()["uncertain_prototypes"]
    assert param_commands(run.params(uncertain)) == ':param runId => "r1";\n:param a => 2;\n:param b => 5;'
    drivers = run.params(load_catalog()["class_drivers"])
    assert drivers == {"runId": "r1", "cls": 3, "step": None, "top": 5}
    assert ":param step => null;" in param_commands(drivers)
    assert set(GRAPH_OF) <= set(load_catalog())
    assert "no complete run" in render_guide(GuideRun(None), 7777)
