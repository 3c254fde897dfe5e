"""Offline HTML views (neo4j-viz) of answers and whole runs: self-contained, and nodes drawn in Chromium."""

from __future__ import annotations

import re

import pytest
from chromium_cdp import CHROMIUM, colour_pixels, screenshot_when

from i2x_plugin.graph.questions import ask
from i2x_plugin.graph.view import answer_keys, grass_colours, view_answer, view_run

CLASS, PROTOTYPE = grass_colours()[0]["Class"], grass_colours()[0]["Prototype"]


def external_references(html: str) -> list[str]:
    """src/href attributes and CSS imports that would need the network."""
    refs = re.findall(r"""<(?:script|link|img|iframe)[^>]+(?:src|href)=["']?(https?:)?//[^"' >]+""", html)
    refs += re.findall(r"@import\s+url\(\s*['\"]?https?://", html)
    return refs


@pytest.fixture(scope="module")
def uncertain_answer(digits_graph):
    e = digits_graph.explanation
    u = e.uncertain[0]
    return ask(digits_graph.store, "uncertain_prototypes", run_id=e.run_id, a=u.a, b=u.b)


def test_answer_view_is_the_named_subgraph(digits_graph, uncertain_answer, tmp_path) -> None:
    keys = answer_keys(uncertain_answer)
    u = digits_graph.explanation.uncertain[0]
    assert keys["Class"] == {str(u.a), str(u.b)}
    assert keys["Prototype"] == {str(r.prototype) for r in uncertain_answer}
    page = view_answer(digits_graph.store, uncertain_answer, tmp_path / "answer.html")
    html = page.read_text()
    assert "neo4j-viz-data" in html and external_references(html) == []
    assert '"UNCERTAIN_BETWEEN' in html and f'"caption": "P{u.prototype}"' in html


def test_nothing_to_view_is_a_clear_error(digits_graph, tmp_path) -> None:
    empty = ask(digits_graph.store, "class_drivers", run_id=digits_graph.explanation.run_id, cls=99)
    with pytest.raises(ValueError, match="Nothing to view.*Class 99 does not exist"):
        view_answer(digits_graph.store, empty, tmp_path / "x.html")
    with pytest.raises(ValueError, match="Run 'nope' is not in the graph"):
        view_run(digits_graph.store, "nope", tmp_path / "y.html")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make browser)")
def test_views_render_nodes_in_headless_chromium(digits_graph, uncertain_answer, tmp_path) -> None:
    pages = [view_answer(digits_graph.store, uncertain_answer, tmp_path / "answer.html"),
             view_run(digits_graph.store, digits_graph.explanation.run_id, tmp_path / "run.html")]
    # The legend alone has a few pixels of each colour; drawn class and prototype nodes have hundreds.
    drawn = lambda im: min(colour_pixels(im, CLASS), colour_pixels(im, PROTOTYPE)) > 400  # noqa: E731
    for page in pages:
        for _attempt in range(3):  # software-rendered headless Chromium now and then never starts the layout
            image = screenshot_when(page, drawn, timeout=20)
            if drawn(image):
                break
        assert colour_pixels(image, CLASS) > 400, page.name
        assert colour_pixels(image, PROTOTYPE) > 400, page.name
