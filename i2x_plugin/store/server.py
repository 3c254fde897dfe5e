"""The embedded graph server: ArcadeDB with its Bolt plugin, in its own process.

:class:`EmbeddedServer` starts ``python -m i2x_plugin.store._serve`` detached (own session,
stdout/stderr to ``<data_dir>/server.log``), waits until Bolt answers, and finds it again
through ``<data_dir>/server.json`` (pid, ports, start time), so a later call, test or CLI
command reuses a running server instead of starting a second one on the same files.

Layout of the data directory (default ``platformdirs.user_data_dir("i2x-plugin")/arcadedb``,
else ``$I2X_STORE_DIR``, else the ``data_dir`` argument, which wins):

* ``credentials.json`` (mode 0600) -- generated root and read-only passwords, reused on
  every start; the source of truth for both (the server is re-synced to it at start).
* ``server.json`` -- present while a server runs (pid, ports, start time, ``keep``); removed on a
  clean stop.
* ``leases/`` -- one locked file per process holding a transient server (see
  :mod:`~i2x_plugin.store.lifecycle`: kept and transient servers, who stops them).
* ``server.log`` -- the server process's output of its last start.
* ``databases/i2x``, ``config/``, ``log/`` -- ArcadeDB's own files.

Everything listens on 127.0.0.1 only. Start-up (fresh process, JVM, server, database,
Bolt answering) takes about 3 s on a 2-core machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from i2x_plugin.atomic import atomic_open, write_text
from i2x_plugin.store.lifecycle import (
    HAVE_FLOCK,
    HOST,
    SERVE_MODULE,
    DirLock,
    Lease,
    free_port,
    live_leases,
    pid_alive,
    port_free,
)

DATABASE = "i2x"
ROOT_USER = "root"
READER_USER = "i2x_reader"
READER_GROUP = "i2x_readonly"
STATE_FILE = "server.json"
CREDENTIALS_FILE = "credentials.json"
LOG_FILE = "server.log"


class StoreError(RuntimeError):
    """Base class of every graph-store error."""


class StoreDataDirError(StoreError):
    """The data directory cannot be created or written."""


class StorePortInUseError(StoreError):
    """The Bolt port the user asked for is already taken."""


class StoreStartError(StoreError):
    """The server process exited or did not answer in time."""


class StoreConnectionError(StoreError):
    """No Bolt server answers at the URI."""


class StoreAuthError(StoreError):
    """The server refused the user name / password."""


class StoreQueryError(StoreError):
    """The server rejected a statement (syntax, missing database, ...)."""


class ConstraintViolationError(StoreQueryError):
    """A write broke a uniqueness constraint."""


class ReadOnlyQueryError(StoreQueryError):
    """A statement given to ``GraphStore.query`` would have written to the graph."""


def default_data_dir() -> Path:
    """``$I2X_STORE_DIR`` if set, else ``<user data dir>/i2x-plugin/arcadedb``."""
    env = os.environ.get("I2X_STORE_DIR")
    return Path(env) if env else Path(platformdirs.user_data_dir("i2x-plugin")) / "arcadedb"


def _read_credentials(path: Path) -> dict[str, str]:
    return json.loads(path.read_text())


def _ensure_credentials(data_dir: Path) -> dict[str, str]:
    """Load the stored passwords, generating them (0600 file) on first use."""
    path = data_dir / CREDENTIALS_FILE
    if not path.exists():
        with atomic_open(path, "w", permissions=0o600) as f:
            json.dump({"root": secrets.token_urlsafe(24), "reader": secrets.token_urlsafe(24)}, f)
    os.chmod(path, 0o600)
    return _read_credentials(path)


def _prepare_data_dir(data_dir: Path) -> Path:
    """Create the directory and prove it is writable, or say how to fix it."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise StoreDataDirError(
            f"The graph store data directory {data_dir} is not writable ({e.strerror or e}). "
            "Pass a writable directory (--data-dir DIR, or data_dir=...) or set I2X_STORE_DIR."
        ) from e
    return data_dir.resolve()


@dataclass(frozen=True)
class ServerStatus:
    """What ``i2x store status`` reports."""

    running: bool
    pid: int | None
    uri: str | None
    data_dir: Path
    http_port: int | None = None
    started_at: float | None = None
    kept: bool = True


class EmbeddedServer:
    """Starts, finds and stops the ArcadeDB server that owns one data directory.

    ``port`` fixes the Bolt port (an error if it is taken); by default a free one is
    picked at each start. ``uri``, ``auth`` and ``reader_auth`` are valid after
    :meth:`start` (or when :meth:`status` finds a running server).
    """

    database = DATABASE

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, port: int | None = None,
                 start_timeout: float = 120.0) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.port = port
        self.start_timeout = start_timeout
        self.pid: int | None = None
        self.bolt_port: int | None = None
        self.startup_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._creds: dict[str, str] | None = None
        self._lease: Lease | None = None

    # -- connection details ------------------------------------------------------------
    @property
    def uri(self) -> str:
        if self.bolt_port is None:
            raise StoreError(f"The embedded store in {self.data_dir} is not started.")
        return f"bolt://{HOST}:{self.bolt_port}"

    @property
    def auth(self) -> tuple[str, str]:
        return ROOT_USER, self._credentials()["root"]

    @property
    def reader_auth(self) -> tuple[str, str]:
        """Credentials of the user that may only read (used by ``GraphStore.query``)."""
        return READER_USER, self._credentials()["reader"]

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / CREDENTIALS_FILE

    def _credentials(self) -> dict[str, str]:
        if self._creds is None:
            self._creds = _read_credentials(self.credentials_path)
        return self._creds

    # -- lifecycle ---------------------------------------------------------------------
    def _read_state(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.data_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return None

    def _bolt_answers(self, port: int, timeout: float = 5.0) -> bool:
        import neo4j

        try:
            with neo4j.GraphDatabase.driver(f"bolt://{HOST}:{port}", auth=self.auth,
                                            connection_timeout=timeout) as d:
                d.verify_connectivity()
            return True
        except (neo4j.exceptions.ServiceUnavailable, neo4j.exceptions.SessionExpired, OSError):
            return False

    def _log_tail(self, lines: int = 40) -> str:
        try:
            text = (self.data_dir / LOG_FILE).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:])

    def start(self, keep: bool = True) -> EmbeddedServer:
        """Start the server (or reuse the one already running on this directory).

        ``keep=True``: the server runs until :meth:`stop` / ``i2x store stop`` (a running
        transient server becomes kept). ``keep=False``: a transient server, held by this
        instance until :meth:`release`, which stops it if no other process holds it (see
        :mod:`~i2x_plugin.store.lifecycle`); a kept server stays kept.
        """
        keep = keep or not HAVE_FLOCK
        self.data_dir = _prepare_data_dir(self.data_dir)
        with DirLock(self.data_dir):
            self._creds = _ensure_credentials(self.data_dir)
            state = self._read_state()
            if state and pid_alive(state["pid"]) and self._bolt_answers(state["bolt_port"]):
                if self.port is not None and self.port != state["bolt_port"]:
                    raise StorePortInUseError(
                        f"The store in {self.data_dir} already runs on Bolt port "
                        f"{state['bolt_port']}, not {self.port}; stop it first "
                        "(i2x store stop) or omit the port.")
                self.pid, self.bolt_port = state["pid"], state["bolt_port"]
                self.startup_s = 0.0
                if keep and not state.get("keep", True):
                    write_text(self.data_dir / STATE_FILE, json.dumps({**state, "keep": True}))
                elif not keep and not state.get("keep", True):
                    self.hold()
                return self
            if state:  # stale: the process is gone or not answering
                self._terminate(state["pid"])
                (self.data_dir / STATE_FILE).unlink(missing_ok=True)
            if self.port is not None and not port_free(self.port):
                raise StorePortInUseError(
                    f"Bolt port {self.port} on {HOST} is already in use. Pick another port "
                    "(--port / port=...) or omit it to let the store pick a free one.")
            attempts = 1 if self.port is not None else 3
            for attempt in range(attempts):
                try:
                    self._launch(self.port or free_port(), free_port(), keep)
                    if not keep:
                        self.hold()  # inside the lock: the new server never sees itself unheld
                    return self
                except StoreStartError:
                    # A port picked as free can be taken before the JVM binds it.
                    if attempt + 1 == attempts or "Unable to listen" not in self._log_tail(200):
                        raise
        return self

    def _launch(self, bolt_port: int, http_port: int, keep: bool) -> None:
        t0 = time.monotonic()
        cmd = [sys.executable, "-m", SERVE_MODULE, "--data-dir", str(self.data_dir),
               "--bolt-port", str(bolt_port), "--http-port", str(http_port)]
        if not keep:
            cmd.append("--transient")
        with open(self.data_dir / LOG_FILE, "wb") as log:
            popen_kw: dict[str, Any] = (
                {"start_new_session": True} if os.name == "posix"
                else {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)})
            self._proc = subprocess.Popen(cmd, cwd=self.data_dir, stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=subprocess.STDOUT, **popen_kw)
        deadline = t0 + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise StoreStartError(
                    f"The graph store server exited with status {self._proc.returncode} "
                    f"while starting (data dir {self.data_dir}). Last lines of "
                    f"{self.data_dir / LOG_FILE}:\n{self._log_tail()}")
            state = self._read_state()
            if state and state.get("pid") == self._proc.pid and self._bolt_answers(bolt_port):
                self.pid, self.bolt_port = self._proc.pid, bolt_port
                self.startup_s = round(time.monotonic() - t0, 2)
                return
            time.sleep(0.1)
        self._terminate(self._proc.pid)
        raise StoreStartError(
            f"The graph store server did not answer on bolt://{HOST}:{bolt_port} within "
            f"{self.start_timeout:.0f} s. Last lines of {self.data_dir / LOG_FILE}:\n"
            f"{self._log_tail()}")

    def _terminate(self, pid: int, timeout: float = 60.0) -> None:
        """SIGTERM ``pid`` (the server stops and flushes), SIGKILL if it hangs."""
        if not pid_alive(pid):
            return
        own = self._proc is not None and self._proc.pid == pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if own and self._proc is not None and self._proc.poll() is not None:
                return
            if not own and not pid_alive(pid):
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        if own and self._proc is not None:
            self._proc.wait(10)

    def stop(self) -> bool:
        """Stop the server of this directory if one runs; the data stays. True if stopped."""
        if not self.data_dir.is_dir():
            return False
        with DirLock(self.data_dir):
            return self._stop_locked()

    def _stop_locked(self) -> bool:
        state = self._read_state()
        pid = state["pid"] if state else self.pid
        stopped = pid is not None and pid_alive(pid)
        if pid is not None:
            self._terminate(pid)
        (self.data_dir / STATE_FILE).unlink(missing_ok=True)
        self.pid = self.bolt_port = None
        self._proc = None
        return stopped

    def hold(self) -> None:
        """Hold the running server: a transient one keeps running until :meth:`release`."""
        if self._lease is None:
            self._lease = Lease(self.data_dir)

    def release(self, wait: float = 30.0) -> bool:
        """Let go of :meth:`hold`; stop the server if it is transient and no one else holds it.

        Waits at most ``wait`` seconds for another process starting or stopping the server;
        after that the server's own once-a-second check stops it. True if it was stopped here.
        """
        if self._lease is None:
            return False
        lease, self._lease = self._lease, None
        lock = DirLock(self.data_dir)
        got = lock.acquire(timeout=wait)
        try:
            lease.release()
            state = self._read_state()
            if got and state and not state.get("keep", True) and not live_leases(self.data_dir):
                return self._stop_locked()
            return False
        finally:
            lock.release()

    def status(self) -> ServerStatus:
        """Whether a server runs on this directory, and where (no connection is made)."""
        state = self._read_state()
        if state and pid_alive(state["pid"]):
            return ServerStatus(True, state["pid"], f"bolt://{HOST}:{state['bolt_port']}",
                                self.data_dir, state.get("http_port"), state.get("started_at"),
                                state.get("keep", True))
        return ServerStatus(False, None, None, self.data_dir)

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def store_start(data_dir: str | os.PathLike[str] | None = None,
                port: int | None = None) -> ServerStatus:
    """CLI hook for ``i2x store start``: start (or find) the server and report it."""
    server = EmbeddedServer(data_dir, port).start()
    return server.status()


def store_stop(data_dir: str | os.PathLike[str] | None = None) -> bool:
    """CLI hook for ``i2x store stop``: True if a running server was stopped."""
    return EmbeddedServer(data_dir).stop()


def store_status(data_dir: str | os.PathLike[str] | None = None) -> ServerStatus:
    """CLI hook for ``i2x store status``."""
    return EmbeddedServer(data_dir).status()
