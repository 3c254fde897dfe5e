"""The bridge's plain HTTP answers: Browser's discovery request, the I2X guide and the style.

Neo4j Browser sends three kinds of HTTP request to the port it connects to, besides the
WebSocket itself:

* ``GET /`` (``Accept: application/json``), the *discovery* request, on every connect; a
  Neo4j server answers with its Bolt addresses. The bridge answers ``bolt_direct``, never
  ``bolt_routing`` (``neo4j://`` cannot reach the embedded store through the bridge);
* ``GET /guide.html`` (``?run=RUN_ID``: that run, else the latest complete one), what
  ``:play http://localhost:PORT/guide.html`` fetches, with
  ``pragma`` and ``cache-control`` headers, so the page's origin first sends a CORS
  preflight (``OPTIONS``); without an answer Browser says "No guide by that name";
* ``GET /i2x.grass``, what ``:style http://localhost:PORT/i2x.grass`` fetches.

A request from a page (it carries ``Origin``) gets CORS headers only if that page is on a
loopback host; any other origin is refused (403, no CORS header), so a web page elsewhere
cannot read the guide. A request without ``Origin`` (curl, a script on this machine) is
answered without CORS headers. :func:`answer` is the ``process_request`` hook of
``websockets.asyncio.server.serve``: ``None`` lets a WebSocket upgrade through to the relay.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from i2x_plugin.store.bridge import is_loopback
from i2x_plugin.store.server import StoreError


class GuideUnavailableError(StoreError):
    """The guide cannot be built now (the store is not running or does not answer); the message says why. The
    page builder given to :func:`answer` raises it, and the bridge answers 503 with the message."""

GUIDE_PATH, STYLE_PATH = "/guide.html", "/i2x.grass"
# Headers a page may send with its GET: Browser's guide fetch sends pragma and cache-control, and its error
# reporting (Sentry) adds sentry-trace and baggage to every request to localhost. A preflight that asks for
# others gets them too (the origin is loopback: nothing is protected from this machine's own pages).
ALLOWED_HEADERS = "accept, baggage, cache-control, content-type, pragma, sentry-trace, x-ajax-browser-auth, x-stream"


def loopback_origin(origin: str) -> bool:
    """True for an ``Origin`` of a page served from a loopback host (``http://localhost:8080`` ...)."""
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.hostname is not None and is_loopback(parts.hostname)


def _response(status: HTTPStatus, body: bytes, content_type: str, origin: str | None,
              extra: dict[str, str] | None = None) -> Response:
    headers = Headers({"Content-Type": content_type, "Content-Length": str(len(body)),
                       "Cache-Control": "no-store", "Connection": "close"})
    if origin is not None:  # only ever called with a loopback origin or none
        headers["Access-Control-Allow-Origin"] = origin
        headers["Vary"] = "Origin"
    for key, value in (extra or {}).items():
        headers[key] = value
    return Response(status.value, status.phrase, headers, body)


def _text(status: HTTPStatus, text: str, origin: str | None = None) -> Response:
    return _response(status, (text.rstrip("\n") + "\n").encode(), "text/plain; charset=utf-8", origin)


def discovery(port: int) -> dict[str, object]:
    """What a Neo4j server answers on ``GET /``, for the bridge on ``port`` (Browser checks ``auth_config``)."""
    return {"bolt_direct": f"bolt://localhost:{port}", "auth_config": {"oidc_providers": []}}


async def answer(request: Request, port: int, guide: Callable[[int, str | None], str],
                 style: Path) -> Response | None:
    """The response to one HTTP request on the bridge's port; None for a WebSocket upgrade.

    Args:
        request: the parsed request (``websockets``).
        port: the bridge's port (the guide's links name it).
        guide: builds the guide page for that port and a run id (``?run=``; None: the latest complete run),
            in a thread: it queries the store.
        style: the ``.grass`` file served at ``/i2x.grass``.
    """
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return None
    origin = request.headers.get("Origin")
    if origin is not None and not loopback_origin(origin):
        return _text(HTTPStatus.FORBIDDEN, f"Refused: the page at {origin} is not on this machine's loopback "
                     "address. The bridge serves its discovery answer, guide and style to pages on localhost only.")
    url = urlsplit(request.path)
    path = url.path
    if path not in ("/", GUIDE_PATH, STYLE_PATH):
        return _text(HTTPStatus.NOT_FOUND, f"Not found: {path}. The bridge serves /, {GUIDE_PATH} and {STYLE_PATH} "
                     "(and Bolt over WebSocket).", origin)
    method = getattr(request, "method", "GET")
    if method == "OPTIONS":
        return _response(HTTPStatus.NO_CONTENT, b"", "text/plain", origin, {
            "Access-Control-Allow-Methods": "GET, OPTIONS",
            "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers") or ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600"})
    if method != "GET":
        return _response(HTTPStatus.METHOD_NOT_ALLOWED, b"", "text/plain", origin, {"Allow": "GET, OPTIONS"})
    if path == "/":
        return _response(HTTPStatus.OK, json.dumps(discovery(port)).encode(), "application/json", origin)
    if path == STYLE_PATH:
        return _response(HTTPStatus.OK, style.read_bytes(), "text/plain; charset=utf-8", origin)
    try:
        page = await asyncio.to_thread(guide, port, (parse_qs(url.query).get("run") or [None])[0])
    except GuideUnavailableError as e:
        return _text(HTTPStatus.SERVICE_UNAVAILABLE, str(e), origin)
    return _response(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8", origin)
