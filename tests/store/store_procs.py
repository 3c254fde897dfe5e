"""Which store processes run for a data directory, read from /proc (Linux): the test of "no JVM left"."""

from __future__ import annotations

import time
from pathlib import Path

from i2x_plugin.store.bridge import BRIDGE_MODULE
from i2x_plugin.store.lifecycle import SERVE_MODULE


def running(data_dir: Path, module: str = SERVE_MODULE) -> list[int]:
    """Pids of live ``python -m module --data-dir data_dir`` processes (the server's JVM lives in it)."""
    wanted = [module.encode(), str(Path(data_dir).resolve()).encode()]
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = proc.joinpath("cmdline").read_bytes().split(b"\0")
            zombie = proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if not zombie and wanted[0] in args and wanted[1] in args:
            pids.append(int(proc.name))
    return pids


def gone(data_dir: Path, module: str = SERVE_MODULE, within: float = 120.0) -> bool:
    """Wait until no such process is left (a generous bound, not a timing assertion)."""
    deadline = time.monotonic() + within
    while running(data_dir, module):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def bridge_gone(data_dir: Path) -> bool:
    return gone(data_dir, BRIDGE_MODULE)
