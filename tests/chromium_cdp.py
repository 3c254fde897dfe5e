"""Headless Chromium over the DevTools pipe: run JavaScript in a page, screenshot it once its canvas has drawn.

neo4j-viz lays the graph out asynchronously (a worker and animation frames), so a plain
``chromium --screenshot`` races the layout and ``--virtual-time-budget`` stalls it. This helper
drives Chromium through ``--remote-debugging-pipe`` (fd 3 in, fd 4 out, NUL-terminated JSON) and
polls screenshots until a predicate holds or the deadline passes. Standard library only; a fresh
profile and no network, like ``tests/headless_chromium.py``.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


class _Pipe:
    def __init__(self, proc: subprocess.Popen, write_fd: int, read_fd: int) -> None:
        self.proc, self.out, self.inp = proc, os.fdopen(write_fd, "wb"), os.fdopen(read_fd, "rb")
        self.buffer, self.next_id = b"", 0

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no message from chromium")
            chunk = os.read(self.inp.fileno(), 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium closed the DevTools pipe (exit {self.proc.poll()})")
            self.buffer += chunk
        raw, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.out.write(json.dumps(msg).encode() + b"\0")
        self.out.flush()
        deadline = time.monotonic() + timeout
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})


def _png(data: str) -> np.ndarray:
    from matplotlib.image import imread

    return imread(io.BytesIO(base64.b64decode(data)), format="png")[..., :3]


class Page:
    """One tab of a headless Chromium driven over the DevTools pipe (see :func:`open_page`)."""

    def __init__(self, pipe: _Pipe, session: str) -> None:
        self.pipe, self.session = pipe, session

    def call(self, method: str, params: dict | None = None, timeout: float = 30) -> dict[str, Any]:
        return self.pipe.call(method, params, self.session, timeout)

    def evaluate(self, expression: str, timeout: float = 30) -> Any:
        """The value of a JavaScript expression; a promise is awaited; a thrown error raises."""
        reply = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                               "returnByValue": True, "timeout": timeout * 1000}, timeout + 5)
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            raise RuntimeError(details.get("exception", {}).get("description") or details.get("text"))
        return reply["result"].get("value")

    def screenshot(self) -> np.ndarray:
        return _png(self.call("Page.captureScreenshot", {"format": "png"})["data"])


@contextlib.contextmanager
def open_page(url: str, width: int = 1200, height: int = 800) -> Iterator[Page]:
    """A fresh headless Chromium (own profile, no network but what the page opens itself) on ``url``,
    once the page has loaded."""
    assert CHROMIUM is not None
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    with tempfile.TemporaryDirectory(prefix="i2x-cdp-") as profile:
        cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
               "--remote-debugging-pipe", "about:blank"]

        def pipes_to_3_and_4() -> None:  # in the child: move both ends out of the way, then onto fds 3 and 4
            high_r, high_w = (fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in (to_browser_r, from_browser_w))
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        proc = subprocess.Popen(cmd, pass_fds=(3, 4), preexec_fn=pipes_to_3_and_4,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        pipe = _Pipe(proc, to_browser_w, from_browser_r)
        try:
            target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            page = Page(pipe, pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"])
            page.call("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
            page.call("Page.navigate", {"url": url})
            deadline = time.monotonic() + 60
            while page.evaluate("document.readyState") != "complete":
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{url} did not finish loading")
                time.sleep(0.1)
            yield page
        finally:
            try:
                pipe.call("Browser.close", timeout=5)
            except Exception:
                pass
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            pipe.out.close()
            pipe.inp.close()


def screenshot_when(page: Path, ready: Callable[[np.ndarray], bool], width: int = 1200, height: int = 800,
                    timeout: float = 60.0) -> np.ndarray:
    """Load ``page`` and return the first screenshot (``(H, W, 3)`` floats) for which ``ready`` holds,
    or the last one taken when ``timeout`` seconds have passed."""
    with open_page(page.resolve().as_uri(), width, height) as tab:
        deadline = time.monotonic() + timeout
        while True:
            time.sleep(0.5)
            image = tab.screenshot()
            if ready(image) or time.monotonic() > deadline:
                return image


def colour_pixels(image: np.ndarray, hex_colour: str, tolerance: int = 6) -> int:
    """How many pixels have (about) this colour."""
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    pixels = (image * 255).round().astype(int)
    return int((np.abs(pixels - rgb).max(-1) <= tolerance).sum())
