"""Entry point of the Browser bridge's own process: ``python -m i2x_plugin.store._bridge``.

Neo4j Browser (and every Neo4j JavaScript driver in a web page) speaks Bolt over WebSocket;
the embedded server's Bolt port speaks plain TCP. This process accepts WebSocket connections
on a loopback address (the ``websockets`` library does the handshake and framing) and, for
each, opens a TCP connection to the Bolt port and copies the bytes both ways: binary messages
in, binary messages out. It does not read or change Bolt: logins and the read-only account are
the server's business.

It holds the server (a lease, see :mod:`~i2x_plugin.store.lifecycle`) while it runs, exits
when the server process is gone, and on SIGTERM/SIGINT; it then removes ``bridge.json`` and
lets go of the server, which stops if it was started for the bridge and nothing else holds it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from i2x_plugin.store.bridge import BRIDGE_STATE_FILE, is_loopback
from i2x_plugin.store.lifecycle import HOST, pid_alive
from i2x_plugin.atomic import write_text
from i2x_plugin.store.server import EmbeddedServer


async def _relay(ws: ServerConnection, bolt_port: int) -> None:
    """Copy one Browser connection to and from a fresh TCP connection to the Bolt port."""
    try:
        reader, writer = await asyncio.open_connection(HOST, bolt_port)
    except OSError:
        await ws.close(1011, "the embedded graph store does not answer")
        return

    async def to_bolt() -> None:
        async for message in ws:
            writer.write(message if isinstance(message, bytes) else message.encode())
            await writer.drain()

    async def to_browser() -> None:
        while data := await reader.read(1 << 16):
            await ws.send(data)

    tasks = [asyncio.create_task(to_bolt()), asyncio.create_task(to_browser())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:  # a closed socket on either side ends the pair; anything else is a bug
            if isinstance(result, Exception) and not isinstance(result, (ConnectionClosed, ConnectionError)):
                print(f"relay error: {result!r}", file=sys.stderr, flush=True)
        writer.close()
        await ws.close()


async def _serve(args: argparse.Namespace, state_path: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def relay(ws: ServerConnection) -> None:
        await _relay(ws, args.bolt_port)

    # max_size=None: Bolt messages are chunked by the client, and a big $param must not be cut off.
    async with serve(relay, args.host, args.port, compression=None, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        state = {"pid": os.getpid(), "host": args.host, "port": port, "bolt_port": args.bolt_port,
                 "server_pid": args.server_pid, "started_at": time.time()}
        write_text(state_path, json.dumps(state))
        print(f"i2x bridge ready: {json.dumps(state)}", flush=True)
        while not stop.is_set() and pid_alive(args.server_pid):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
        print("i2x bridge stopping: " + ("signal" if stop.is_set() else "the graph store is gone"), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the bridge until a termination signal arrives or the server process ends."""
    p = argparse.ArgumentParser(prog="i2x_plugin.store._bridge")
    p.add_argument("--data-dir", required=True, type=Path)
    p.add_argument("--host", default=HOST)
    p.add_argument("--port", required=True, type=int, help="0: a free port")
    p.add_argument("--bolt-port", required=True, type=int)
    p.add_argument("--server-pid", required=True, type=int)
    args = p.parse_args(argv)
    if not is_loopback(args.host):
        print(f"error: refusing to listen on {args.host}: the bridge binds loopback addresses only",
              file=sys.stderr)
        return 2
    data_dir: Path = args.data_dir.resolve()
    state_path = data_dir / BRIDGE_STATE_FILE
    server = EmbeddedServer(data_dir)
    server.hold()
    try:
        asyncio.run(_serve(args, state_path))
    except OSError as e:
        print(f"error: cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr, flush=True)
        return 3
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(state_path.read_text()).get("pid") == os.getpid():
                state_path.unlink()
        server.release()
    print("i2x bridge stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
