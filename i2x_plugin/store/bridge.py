"""Neo4j Browser on the embedded store: a loopback WebSocket bridge to its Bolt port.

``i2x store browser`` calls :func:`start_bridge`, which starts the server if needed, then
``python -m i2x_plugin.graph.browser_bridge`` detached (log in ``<data_dir>/bridge.log``, state in
``<data_dir>/bridge.json``), and prints :func:`connect_details`: what to type into Browser's
connect form. A second call finds the running bridge and reports the same details.

Lifecycle (see :mod:`~i2x_plugin.store.lifecycle`):

* loopback only: any other listen address is refused before anything starts;
* the bridge outlives its server: when the server stops or crashes, Browser's connection closes
  with a message saying to start the store, and after ``i2x store start`` the next connection (the
  same URL) reaches the new server;
* a server started for the bridge is transient and held by the bridge, so it stops when the
  bridge stops (``i2x store stop``, a signal, even SIGKILL); a kept server stays up;
* :func:`stop_store` (``i2x store stop``) stops the bridge, then the server.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from i2x_plugin.store.lifecycle import HOST, DirLock, pid_alive, port_free
from i2x_plugin.store.server import (
    CREDENTIALS_FILE,
    DATABASE,
    READER_USER,
    ROOT_USER,
    EmbeddedServer,
    StoreError,
    StorePortInUseError,
    StoreStartError,
    default_data_dir,
)

# The bridge process composes the store with the graph stage's guide, so it lives there (started by name).
BRIDGE_MODULE = "i2x_plugin.graph.browser_bridge"
BRIDGE_STATE_FILE = "bridge.json"
BRIDGE_LOG_FILE = "bridge.log"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class StoreBridgeError(StoreError):
    """The Browser bridge was asked for something it refuses (a non-loopback address)."""


@dataclass(frozen=True)
class BridgeStatus:
    """A running bridge (what ``i2x store browser`` and ``i2x store status`` report)."""

    pid: int
    host: str
    port: int
    bolt_port: int
    data_dir: Path
    reused: bool = False
    server_kept: bool = True

    @property
    def connect_url(self) -> str:
        """What to type into Browser's *Connect URL*: ``bolt://``, never ``neo4j://``."""
        host = "localhost" if self.host in ("127.0.0.1", "localhost") else self.host
        return f"bolt://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def play_command(self) -> str:
        """What to type into Browser to open the I2X guide the bridge serves (see :mod:`~i2x_plugin.graph.guide`)."""
        return f":play http://localhost:{self.port}/guide.html"


def _data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    return Path(data_dir) if data_dir is not None else default_data_dir()


def _read(data_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((data_dir / BRIDGE_STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def _status(state: dict[str, Any], data_dir: Path, reused: bool = False) -> BridgeStatus:
    server = EmbeddedServer(data_dir).status()  # the bridge relays to the server running now
    bolt_port = int(server.uri.rsplit(":", 1)[1]) if server.running else state["bolt_port"]
    return BridgeStatus(state["pid"], state["host"], state["port"], bolt_port, data_dir, reused, server.kept)


def bridge_status(data_dir: str | os.PathLike[str] | None = None) -> BridgeStatus | None:
    """The bridge running for the store of ``data_dir``, or None."""
    directory = _data_dir(data_dir)
    state = _read(directory)
    return _status(state, directory) if state and pid_alive(state["pid"], BRIDGE_MODULE) else None


def start_bridge(data_dir: str | os.PathLike[str] | None = None, port: int | None = None,
                 host: str = HOST, start_timeout: float = 60.0) -> BridgeStatus:
    """Start (or find) the bridge in front of the embedded store's Bolt port.

    ``port``: the port Browser connects to (default: a free one). Starts the server if it
    is not running; that server then lives as long as the bridge.
    """
    if not is_loopback(host):
        raise StoreBridgeError(
            f"Refusing to listen on {host}: the bridge binds loopback addresses only (127.0.0.1, "
            "::1, localhost), because anyone who can reach it can try to log in to the graph "
            "store. Omit --host; to use Browser on another machine, forward the port over SSH "
            "(ssh -L PORT:127.0.0.1:PORT this-host).")
    host = HOST if host == "localhost" else host  # one socket: localhost may resolve to two addresses
    running = bridge_status(data_dir)
    if port is not None and not port_free(port, host) and (running is None or running.port != port):
        raise StorePortInUseError(
            f"Bridge port {port} on {host} is already in use. Pick another port (--port) "
            "or omit it to let the bridge pick a free one.")
    server = EmbeddedServer(_data_dir(data_dir)).start(keep=False)  # held by us until the bridge holds it
    try:
        with DirLock(server.data_dir, ".bridge.lock"):
            state = _read(server.data_dir)
            if state and pid_alive(state["pid"], BRIDGE_MODULE):
                if port is not None and port != state["port"]:
                    raise StorePortInUseError(
                        f"A bridge for this store already listens on port {state['port']}, not {port}. "
                        "Use that one, or stop it first (i2x store stop) and ask again.")
                return _status(state, server.data_dir, reused=True)
            if state:  # stale: left by a bridge that was killed
                (server.data_dir / BRIDGE_STATE_FILE).unlink(missing_ok=True)
            return _status(_launch(server, host, port or 0, start_timeout), server.data_dir)
    finally:
        server.release()  # stops a server started for a bridge that did not start


def _launch(server: EmbeddedServer, host: str, port: int, timeout: float) -> dict[str, Any]:
    """Start the bridge process; its state once it listens."""
    cmd = [sys.executable, "-m", BRIDGE_MODULE, "--data-dir", str(server.data_dir), "--host", host,
           "--port", str(port), "--bolt-port", str(server.bolt_port), "--server-pid", str(server.pid)]
    log_path = server.data_dir / BRIDGE_LOG_FILE
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=server.data_dir, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip()[-2000:]
            raise StoreStartError(f"The Browser bridge exited with status {proc.returncode} while "
                                  f"starting. Last lines of {log_path}:\n{tail}")
        state = _read(server.data_dir)
        if state and state.get("pid") == proc.pid:
            return state
        time.sleep(0.05)
    _terminate(proc.pid)
    raise StoreStartError(f"The Browser bridge did not start within {timeout:.0f} s; see {log_path}.")


def _terminate(pid: int, timeout: float = 60.0) -> None:
    """SIGTERM the bridge and wait until it (and any server it was holding) has let go."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid, BRIDGE_MODULE):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.05)


def stop_bridge(data_dir: str | os.PathLike[str] | None = None) -> bool:
    """Stop the bridge (a server started for it stops too); True if one was running."""
    bridge = bridge_status(data_dir)
    if bridge is not None:
        _terminate(bridge.pid)
    return bridge is not None


def stop_store(data_dir: str | os.PathLike[str] | None = None) -> tuple[bool, bool]:
    """``i2x store stop``: stop the bridge, then the server. Returns (bridge stopped, server stopped)."""
    server = EmbeddedServer(_data_dir(data_dir))
    was_running = server.status().running
    bridge_stopped = stop_bridge(server.data_dir)
    server.stop()
    return bridge_stopped, was_running and not server.status().running


def connect_details(bridge: BridgeStatus, admin: bool = False) -> str:
    """What ``i2x store browser`` prints: the connect form of Neo4j Browser, field by field."""
    creds = bridge.data_dir / CREDENTIALS_FILE
    user, key = (ROOT_USER, "root") if admin else (READER_USER, "reader")
    role = ("administrator: can change and delete everything" if admin
            else "read-only: the server refuses any write")
    lifetime = ("The store keeps running without the bridge (i2x store start or --keep-store asked for that)."
                if bridge.server_kept else "The store stops with the bridge, once no command uses it.")
    lines = [
        f"Neo4j Browser bridge: ws://{bridge.host}:{bridge.port} -> the embedded graph store "
        f"(Bolt port {bridge.bolt_port}, data {bridge.data_dir})",
        "In Neo4j Browser's connect form (:server connect), enter:",
        f"  Connect URL   {bridge.connect_url}",
        f"  Database      {DATABASE}   (the store's only database; empty also selects it)",
        "  Auth          Username / Password",
        f"  Username      {user}   ({role})",
        f"  Password      the \"{key}\" value in {creds} (readable only by you); print it with",
        f"                python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"{key}\"])' {creds}",
        "Type bolt://, not neo4j://: with neo4j:// the driver follows the server's routing table to the "
        "plain Bolt port, which Browser cannot reach.",
        f"Once connected, open the I2X guide (the latest run's questions, the style, how far to trust a claim): "
        f"{bridge.play_command}",
        f"Stop: i2x store stop   (the bridge and the store). {lifetime}",
    ]
    return "\n".join(lines)
