"""Who may start, stop and hold the embedded server of one data directory.

Two kinds of server:

* **kept** -- started by ``i2x store start`` (or ``EmbeddedServer.start()`` / ``GraphStore.embedded()``
  in Python, or any command given ``--keep-store``): it runs until ``i2x store stop``.
* **transient** -- started by a command for itself (``i2x run``, ``i2x ask``, ``i2x store browser``
  ...): it runs while some process *holds* it and stops when the last holder lets go. A command
  that reuses a transient server holds it too, so two commands never stop the server under each
  other, and a Browser bridge holds it for as long as the bridge runs.

A hold is a :class:`Lease`: a file in ``<data_dir>/leases/`` on which its process keeps an
exclusive ``flock``. The kernel drops the lock when the process ends, however it ends (SIGKILL
included), so a lease never outlives its holder: a lease file whose lock can be taken is left
over from a dead process and is removed. The server process itself checks once a second and
stops when it is transient and unheld, so even a killed command leaves no server behind.

:class:`DirLock` serialises starting, stopping and those checks on one data directory.
Without ``fcntl`` (Windows) there are no leases and every server is kept.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

HAVE_FLOCK = fcntl is not None
LEASES_DIR = "leases"
HOST = "127.0.0.1"
SERVE_MODULE = "i2x_plugin.store._serve"


def pid_alive(pid: int, module: str = SERVE_MODULE) -> bool:
    """True if ``pid`` runs and (where /proc tells) is a ``python -m module`` process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        try:
            if proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return False
            return module.encode() in proc.joinpath("cmdline").read_bytes()
        except OSError:
            return False
    return True


def port_free(port: int, host: str = HOST) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class DirLock:
    """An exclusive ``flock`` on ``<data_dir>/<name>`` (a no-op without ``fcntl``)."""

    def __init__(self, data_dir: Path, name: str = ".lock") -> None:
        self.path = Path(data_dir) / name
        self._file = None

    def acquire(self, timeout: float | None = None) -> bool:
        """Take the lock; wait at most ``timeout`` seconds (``None``: as long as it takes)."""
        self._file = open(self.path, "a")  # noqa: SIM115 -- held until release()
        if fcntl is None:
            return True
        if timeout is None:
            fcntl.flock(self._file, fcntl.LOCK_EX)
            return True
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self._file.close()
                    self._file = None
                    return False
                time.sleep(0.05)

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the file drops the flock
            self._file = None

    def __enter__(self) -> DirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Lease:
    """This process's hold on the server of ``data_dir``; :meth:`release` lets go."""

    def __init__(self, data_dir: Path) -> None:
        folder = Path(data_dir) / LEASES_DIR
        folder.mkdir(exist_ok=True)
        name = f"{os.getpid()}-{secrets.token_hex(4)}"
        tmp = folder / f".{name}.tmp"
        self._file = open(tmp, "w")  # noqa: SIM115 -- held until release()
        if fcntl is not None:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._file.write(str(os.getpid()))
        self._file.flush()
        # Locked before it gets its visible name, so no scan can mistake it for a dead holder's.
        self.path = folder / f"{name}.lease"
        os.replace(tmp, self.path)

    def release(self) -> None:
        if self._file is not None:
            self.path.unlink(missing_ok=True)
            self._file.close()
            self._file = None


def live_leases(data_dir: Path) -> int:
    """How many processes hold the server of ``data_dir``; removes the leases of dead ones."""
    folder = Path(data_dir) / LEASES_DIR
    if fcntl is None or not folder.is_dir():
        return 0
    live = 0
    for path in folder.glob("*.lease"):
        try:
            f = open(path, "a")  # noqa: SIM115
        except FileNotFoundError:
            continue
        with f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                live += 1
                continue
            path.unlink(missing_ok=True)  # its holder is gone
    return live
