"""Entry point of the embedded store's own process: ``python -m i2x_plugin.store._serve``.

Runs one ArcadeDB server (Bolt plugin on, everything bound to 127.0.0.1) over a data
directory, creates the ``i2x`` database if absent, keeps the root and read-only users'
passwords in line with ``credentials.json``, then writes the state file that tells
:class:`~i2x_plugin.store.server.EmbeddedServer` it is ready. It sleeps until SIGTERM or
SIGINT and then stops the server cleanly (data is kept) and removes the state file. A
``--transient`` server also stops itself once no process holds it any more (see
:mod:`~i2x_plugin.store.lifecycle`), so a command killed before it could stop it leaves no
JVM behind.

It is a separate process so that the JVM (and its 4 GB heap ceiling, threads and signal
handlers) never lives inside the user's Python process, and so the server can outlive
the command that started it (``i2x store start``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from pathlib import Path

from i2x_plugin.atomic import write_text
from i2x_plugin.store.lifecycle import DirLock, live_leases
from i2x_plugin.store.server import (
    CREDENTIALS_FILE,
    DATABASE,
    READER_GROUP,
    READER_USER,
    STATE_FILE,
    _read_credentials,
)


def _setup_security(java_server: object, creds: dict[str, str]) -> None:
    """Give root the stored password and (re)create the read-only ``reader`` user.

    ``reader`` belongs to a group whose only right on the ``i2x`` database is
    ``readRecord``: the server itself then refuses any create/update/delete/schema change
    made over a connection logged in as ``reader``. Both steps are idempotent.
    """
    import jpype

    json_object = jpype.JClass("com.arcadedb.serializer.json.JSONObject")
    sec = java_server.getSecurity()  # type: ignore[attr-defined]
    sec.setUserPassword("root", creds["root"])
    group = {"access": [], "resultSetLimit": -1, "readTimeout": -1,
             "types": {"*": {"access": ["readRecord"]}}}
    sec.saveGroup(DATABASE, READER_GROUP, json_object(json.dumps(group)))
    if sec.existsUser(READER_USER):
        sec.setUserPassword(READER_USER, creds["reader"])
    else:
        user = {"name": READER_USER, "password": str(sec.encodePassword(creds["reader"])),
                "databases": {DATABASE: [READER_GROUP]}}
        sec.createUser(json_object(json.dumps(user)))


def _unheld(data_dir: Path) -> DirLock | None:
    """The data directory's lock, taken, if this server is transient and no process holds it.

    Never waits for the lock: whoever has it is starting or stopping the server (and may be
    waiting for this very process to exit); the next check comes a second later.
    """
    lock = DirLock(data_dir)
    if not lock.acquire(timeout=0):
        return None
    try:
        state = json.loads((data_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        state = {}
    if state.get("pid") == os.getpid() and not state.get("keep", True) and not live_leases(data_dir):
        return lock
    lock.release()
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the server until a termination signal arrives."""
    p = argparse.ArgumentParser(prog="i2x_plugin.store._serve")
    p.add_argument("--data-dir", required=True, type=Path)
    p.add_argument("--bolt-port", required=True, type=int)
    p.add_argument("--http-port", required=True, type=int)
    p.add_argument("--transient", action="store_true",
                   help="stop when no process holds the server any more (i2x run, ask, browser ...)")
    args = p.parse_args(argv)
    data_dir: Path = args.data_dir.resolve()
    creds = _read_credentials(data_dir / CREDENTIALS_FILE)

    stop = threading.Event()
    t0 = time.monotonic()
    from arcadedb_embedded.jvm import start_jvm
    from arcadedb_embedded.server import ArcadeDBServer

    heap = os.environ.get("I2X_STORE_HEAP")
    start_jvm(**({"heap_size": heap} if heap else {}))
    # Installed after the JVM starts so that Python, not the JVM, owns SIGTERM/SIGINT
    # and the server gets a clean stop() instead of a bare shutdown hook.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    server = ArcadeDBServer(str(data_dir), creds["root"], config={
        "host": "127.0.0.1",
        "http_port": args.http_port,
        "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
        "bolt_port": args.bolt_port,
    })
    server.start()
    unheld: DirLock | None = None
    try:
        server.create_database(DATABASE)  # opens it when it already exists
        _setup_security(server._java_server, creds)
        state = {"pid": os.getpid(), "bolt_port": args.bolt_port, "http_port": args.http_port,
                 "started_at": time.time(), "startup_s": round(time.monotonic() - t0, 3),
                 "keep": not args.transient}
        write_text(data_dir / STATE_FILE, json.dumps(state))
        print(f"i2x store ready: {json.dumps(state)}", flush=True)
        while not stop.wait(1.0):
            if args.transient and (unheld := _unheld(data_dir)) is not None:
                print("i2x store: no command or bridge holds this transient server any more", flush=True)
                break
    finally:
        print("i2x store stopping", flush=True)
        server.stop()
        state_path = data_dir / STATE_FILE
        try:
            if json.loads(state_path.read_text()).get("pid") == os.getpid():
                state_path.unlink()
        except (OSError, ValueError):
            pass
        if unheld is not None:
            unheld.release()
        print("i2x store stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
