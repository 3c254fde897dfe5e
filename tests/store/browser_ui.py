"""Neo4j Browser's own UI in headless Chromium, driven over DevTools (``tests/chromium_cdp.py``).

The build is ``shared/neo4j-browser/dist`` beside the repository (``$I2X_NEO4J_BROWSER_DIST`` overrides it),
served here on a free loopback port. The selectors are the ``data-testid`` attributes Browser's own
end-to-end tests use (``shared/neo4j-browser/README.md``). Every wait polls a DOM condition with a bound.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from chromium_cdp import Page, open_page

ROOT = Path(__file__).resolve().parents[2]


def browser_dist() -> Path | None:
    """The Browser build: ``$I2X_NEO4J_BROWSER_DIST``, else ``shared/neo4j-browser/dist`` beside the repository
    or above it (a worktree's ``shared/`` may sit a level higher); None where there is none."""
    if os.environ.get("I2X_NEO4J_BROWSER_DIST"):
        candidates = [Path(os.environ["I2X_NEO4J_BROWSER_DIST"])]
    else:
        candidates = [parent / "shared" / "neo4j-browser" / "dist" for parent in ROOT.parents]
    return next((c for c in candidates if (c / "index.html").is_file()), None)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_dist(dist: Path) -> Iterator[str]:
    """The build served on 127.0.0.1 (a free port); yields the URL of its index page."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(dist)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    finally:
        httpd.shutdown()
        httpd.server_close()


FRAMES = "Array.from(document.querySelectorAll('[data-testid=frame]'))"  # newest first
GUIDE = f"{FRAMES}.find(f => f.querySelector('[data-testid=nextSlide]'))"


class BrowserUI:
    """One Neo4j Browser page: fill the connect form, type commands, click guide blocks, read frames."""

    def __init__(self, tab: Page) -> None:
        self.tab = tab

    def js(self, expression: str, timeout: float = 30) -> Any:
        return self.tab.evaluate(expression, timeout)

    def wait(self, expression: str, what: str, timeout: float = 30.0) -> Any:
        """The first truthy value of ``expression``, polled every 0.2 s; fails naming ``what`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                frames = self.js(f"{FRAMES}.slice(0, 3).map(f => f.innerText.slice(0, 1500))")
                if os.environ.get("I2X_BROWSER_FAILSHOT"):
                    self.screenshot(Path(os.environ["I2X_BROWSER_FAILSHOT"]))
                raise AssertionError(f"Browser did not show {what} within {timeout:.0f} s; newest frames: {frames}")
            time.sleep(0.2)

    def type_into(self, selector: str, text: str) -> None:
        self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.focus(); "
                "if (e.select) e.select(); return true })()")
        self.tab.call("Input.insertText", {"text": text})

    def connect(self, url: str, user: str, password: str) -> None:
        """Fill Browser's connect form and press Connect."""
        self.wait("!!document.querySelector('input[data-testid=boltaddress]')", "the connect form", 60)
        self.type_into("input[data-testid=boltaddress]", url)
        self.type_into("input[data-testid=username]", user)
        self.type_into("input[data-testid=password]", password)
        self.js("document.querySelector('button[data-testid=connect]').click()")

    def frame_count(self) -> int:
        return int(self.js(f"{FRAMES}.length"))

    def run(self, command: str) -> None:
        """Type ``command`` into the editor and press Run; the result is the newest frame."""
        self.js("document.querySelector('[data-testid=activeEditor]').click()")
        self.type_into("[data-testid=activeEditor] textarea", command)
        self.wait("document.querySelector('[data-testid=activeEditor]').innerText.trim().length > 0", "the typed text")
        self.js("document.querySelector('[data-testid=editor-Run]').click()")

    def newest(self, text: str, what: str, timeout: float = 30.0) -> str:
        """The text of the newest frame (the guide aside) that contains ``text``, once there is one."""
        return self.wait(f"(() => {{ const f = {FRAMES}.find(f => !f.querySelector('[data-testid=nextSlide]') && "
                         f"f.innerText.includes({json.dumps(text)})); return f ? f.innerText : '' }})()", what, timeout)

    def params_set(self, expected: dict[str, str], timeout: float = 30.0) -> str:
        """Wait until Browser holds these parameters (``:params``, typed, shows them; values as Browser prints
        them); the :param lines of a guide block are evaluated on the server one after the other."""
        deadline = time.monotonic() + timeout
        while True:
            before = self.js(f"{FRAMES}.length")
            self.run(":params")
            self.wait(f"{FRAMES}.length > {before}", "the :params frame")
            shown = self.js(f"{FRAMES}[0].innerText")
            if all(f'"{name}": {value}' in shown for name, value in expected.items()):
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"Browser's parameters are not {expected}: {shown}")
            time.sleep(0.5)

    def guide_to(self, title: str) -> None:
        """Page the guide's carousel forward to the slide whose heading contains ``title``."""
        self.wait(f"!!{GUIDE}", "the guide")
        for _ in range(40):
            heading = self.js(f"Array.from({GUIDE}.querySelectorAll('h3')).map(h => h.innerText).join('|')")
            if title in heading:
                return
            self.js(f"{GUIDE}.querySelector('[data-testid=nextSlide]').click()")
            self.wait(f"Array.from({GUIDE}.querySelectorAll('h3')).map(h => h.innerText).join('|') !== "
                      f"{json.dumps(heading)}", "the next slide", 10)
        raise AssertionError(f"the guide has no slide {title!r}")

    def guide_blocks(self) -> list[str]:
        """The runnable blocks of the guide's current slide (their text)."""
        self.wait(f"!!{GUIDE}?.querySelector('pre.runnable i')", "the guide's play icons")
        return self.js(f"Array.from({GUIDE}.querySelectorAll('pre.runnable')).map(p => p.innerText.trim())")

    def click_block(self, index: int) -> None:
        """Click the play icon Browser puts before a runnable block: it runs the block in a new frame."""
        self.js(f"{GUIDE}.querySelectorAll('pre.runnable i')[{index}].click()")

    def graph(self, timeout: float = 30.0) -> dict[str, list[dict[str, str]]]:
        """The newest frame's drawn graph once it has settled: node and relationship fills and captions."""
        newest = f"{FRAMES}.find(f => !f.querySelector('[data-testid=nextSlide]'))"
        self.wait(f"({newest}?.querySelectorAll('g.node').length ?? 0) > 0", "a drawn graph", timeout)
        read = ("(() => { const f = NEWEST; const one = (g, shape) => ({fill: g.querySelector(shape).getAttribute('fill'), "
                "caption: Array.from(g.querySelectorAll('text')).map(t => t.textContent.trim()).join(' ')}); "
                "return JSON.stringify({nodes: Array.from(f.querySelectorAll('g.node')).map(g => one(g, 'circle.b-outline')), "
                "relationships: Array.from(f.querySelectorAll('g.relationship')).map(g => one(g, 'path.b-outline'))}) })()"
                ).replace("NEWEST", newest)
        last, deadline = None, time.monotonic() + timeout
        while time.monotonic() < deadline:  # Browser adds the relationships between drawn nodes in a second query
            drawn = self.js(read)
            if drawn == last:
                return json.loads(drawn)
            last = drawn
            time.sleep(0.5)
        return json.loads(last)

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.tab.call("Page.captureScreenshot", {"format": "png"})["data"]))
        return path


@contextlib.contextmanager
def browser_page(index_url: str, width: int = 1400, height: int = 1000) -> Iterator[BrowserUI]:
    with open_page(index_url, width, height) as tab:
        yield BrowserUI(tab)
