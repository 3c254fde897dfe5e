"""Entry point of the Browser bridge's own process: ``python -m i2x_plugin.graph.browser_bridge``.

Neo4j Browser (and every Neo4j JavaScript driver in a web page) speaks Bolt over WebSocket;
the embedded server's Bolt port speaks plain TCP. This process accepts WebSocket connections
on a loopback address (the ``websockets`` library does the handshake and framing) and, for
each, opens a TCP connection to the Bolt port of the server running *now* and copies the bytes
both ways: binary messages in, binary messages out. It changes one thing: Browser's settings query
(``CALL dbms.clientConfig()``) is answered with the commands that apply the style and open the guide
(:mod:`~i2x_plugin.store.browser_settings`). Logins and the read-only account are the server's business. Plain HTTP requests on the same port (Browser's
discovery request, the I2X guide, the style) are answered by :mod:`~i2x_plugin.store.browser_http`.

It holds the server (a lease, see :mod:`~i2x_plugin.store.lifecycle`) while it runs. When the
server goes (stopped, crashed), the bridge stays: Browser's connection closes with a message that
says to start the store, and once ``i2x store start`` (or any command) runs a server on the same
data directory again, the next connection reaches it. On SIGTERM/SIGINT it removes ``bridge.json``
and lets go of the server, which stops if it was started for the bridge and nothing else holds it.
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
from http import HTTPStatus
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from i2x_plugin.atomic import write_text
from i2x_plugin.graph_schema import GRASS_PATH
from i2x_plugin.store.bridge import BRIDGE_STATE_FILE, is_loopback
from i2x_plugin.store.browser_http import answer
from i2x_plugin.store.browser_settings import ClientConfigRewriter, post_connect_commands
from i2x_plugin.graph.guide import guide_page
from i2x_plugin.store.lifecycle import HOST
from i2x_plugin.store.server import EmbeddedServer


NOT_RUNNING = "the embedded graph store is not running: start it (i2x store start), then reconnect"


async def _relay(ws: ServerConnection, data_dir: Path, port: int) -> None:
    """Copy one Browser connection to and from a fresh TCP connection to the running server's Bolt port
    (Browser's settings query answered on the way, see :mod:`~i2x_plugin.store.browser_settings`)."""
    status = EmbeddedServer(data_dir).status()
    if not status.running:
        await ws.close(1011, NOT_RUNNING)
        return
    try:
        reader, writer = await asyncio.open_connection(HOST, int(status.uri.rsplit(":", 1)[1]))
    except OSError:
        await ws.close(1011, NOT_RUNNING)
        return

    settings = ClientConfigRewriter(post_connect_commands(port))

    async def to_bolt() -> None:
        async for message in ws:
            writer.write(settings.feed(message if isinstance(message, bytes) else message.encode()))
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

    data_dir: Path = args.data_dir
    port = args.port

    async def relay(ws: ServerConnection) -> None:
        await _relay(ws, data_dir, port)

    async def http(connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            # Refused before the handshake, so Browser's driver fails at once ("WebSocket connection failure")
            # instead of waiting on a socket that opened and closed.
            running = EmbeddedServer(data_dir).status().running
            return None if running else connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, NOT_RUNNING + "\n")
        return await answer(request, port, lambda p, run: guide_page(data_dir, p, run), Path(str(GRASS_PATH)))

    # max_size=None: Bolt messages are chunked by the client, and a big $param must not be cut off.
    async with serve(relay, args.host, args.port, compression=None, max_size=None, process_request=http) as server:
        port = server.sockets[0].getsockname()[1]
        state = {"pid": os.getpid(), "host": args.host, "port": port, "bolt_port": args.bolt_port,
                 "server_pid": args.server_pid, "started_at": time.time()}
        write_text(state_path, json.dumps(state))
        print(f"i2x bridge ready: {json.dumps(state)}", flush=True)
        was_running = True
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            running = EmbeddedServer(data_dir).status().running
            if running != was_running:  # the log tells when Browser's connections could not have worked
                print("i2x bridge: " + ("the graph store is back" if running else NOT_RUNNING), flush=True)
                was_running = running
        print("i2x bridge stopping: signal", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the bridge until a termination signal arrives or the server process ends."""
    p = argparse.ArgumentParser(prog="i2x_plugin.graph.browser_bridge")
    p.add_argument("--data-dir", required=True, type=Path)
    p.add_argument("--host", default=HOST)
    p.add_argument("--port", required=True, type=int, help="0: a free port")
    p.add_argument("--bolt-port", required=True, type=int)
    p.add_argument("--server-pid", required=True, type=int)
    args = p.parse_args(argv)
    args.data_dir = args.data_dir.resolve()
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
