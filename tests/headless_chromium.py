"""Headless Chromium for page tests: screenshots, and which <img> elements actually decoded.

Every call uses a fresh profile and no network (``--disable-background-networking`` etc.), so a page
that needs the internet shows up as broken images. Tests skip when ``chromium`` is not installed
(``make browser`` installs Debian's package).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None)
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--hide-scrollbars"]

# Appended to a copy of the page: records every image's decoded size once the page has loaded.
_PROBE = """<script>window.addEventListener('load', function () {
  var imgs = Array.from(document.images).map(function (i) {
    return {w: i.naturalWidth, h: i.naturalHeight, complete: i.complete, src: i.currentSrc.slice(0, 32)};
  });
  var out = document.createElement('pre'); out.id = 'i2x-probe';
  out.textContent = JSON.stringify(imgs); document.body.appendChild(out);
});</script>"""


def _run(args: list[str], timeout: float = 90) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="i2x-chromium-") as profile:
        return subprocess.run([CHROMIUM, *_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout)


def screenshot(page: Path, png: Path, width: int = 1200, height: int = 3000) -> np.ndarray:
    """Render ``page`` and return the screenshot as an ``(H, W, 3)`` float array."""
    from matplotlib.image import imread

    _run([f"--screenshot={png}", f"--window-size={width},{height}", "--virtual-time-budget=5000",
          page.resolve().as_uri()])
    assert png.is_file(), f"chromium wrote no screenshot of {page}"
    return imread(png)[..., :3]


def loaded_images(page: Path) -> list[dict]:
    """Decoded size of every <img> of ``page`` (a probe script is added to a temporary copy)."""
    with tempfile.TemporaryDirectory(prefix="i2x-page-") as tmp:
        copy = Path(tmp) / page.name
        for other in page.parent.iterdir():  # keep relative references working
            if other.is_file() and other != page:
                shutil.copy(other, Path(tmp) / other.name)
        copy.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"), encoding="utf-8")
        dom = _run(["--dump-dom", "--run-all-compositor-stages-before-draw", "--virtual-time-budget=5000",
                    copy.as_uri()]).stdout
    match = re.search(r'<pre id="i2x-probe">(.*?)</pre>', dom, re.S)
    assert match, "the page's load event never fired (probe output missing from the DOM)"
    return json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def non_background_fraction(image: np.ndarray) -> float:
    """Share of pixels that differ from the most common colour (the background)."""
    flat = (image.reshape(-1, image.shape[-1]) * 255).round().astype(np.int32)
    keys = flat[:, 0] * 65536 + flat[:, 1] * 256 + flat[:, 2]
    values, counts = np.unique(keys, return_counts=True)
    return float(1 - counts.max() / len(keys))
