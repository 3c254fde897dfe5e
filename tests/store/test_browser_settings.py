"""``i2x_plugin.store.browser_settings``: only Browser's settings query is rewritten, whatever the byte split;
every other byte (handshake, messages, keep-alives) passes unchanged, and a manifest-handshake client is left alone."""

from __future__ import annotations

import pytest

from i2x_plugin.store.browser_settings import (
    CLIENT_CONFIG_QUERY,
    POST_CONNECT_CYPHER,
    ClientConfigRewriter,
    _chunked,
    _pack_string,
    _unpack_string,
    post_connect_commands,
)

HANDSHAKE = bytes.fromhex("6060b017" "00070705" "00020404" "00000104" "00000003")  # Browser 2025.6's
EXTRA = b"\xa1" + _pack_string("db") + _pack_string("system")


def run(query: str, params: bytes = b"\xa0") -> bytes:
    return _chunked(b"\xb3\x10" + _pack_string(query) + params + EXTRA)


def feed(rewriter: ClientConfigRewriter, stream: bytes, step: int) -> bytes:
    return b"".join(rewriter.feed(stream[i:i + step]) for i in range(0, len(stream), step))


@pytest.mark.parametrize("step", [1, 3, 64, 10_000])
def test_only_the_settings_query_is_rewritten(step: int) -> None:
    rewriter = ClientConfigRewriter(post_connect_commands(7777))
    other = run("RETURN 1 AS one") + b"\x00\x00" + run("MATCH (n) RETURN n " * 4000)  # a keep-alive; a query of 2 chunks
    out = feed(rewriter, HANDSHAKE + other + run(CLIENT_CONFIG_QUERY), step)
    assert out.startswith(HANDSHAKE + other) and rewriter.rewritten == 1
    message = out[len(HANDSHAKE + other) + 2:-2]
    query, end = _unpack_string(message, 2)
    assert query == POST_CONNECT_CYPHER and message[end:].endswith(EXTRA)
    assert "play http://localhost:7777/guide.html" in _unpack_string(message, end + 10)[0]


def test_with_parameters_or_a_manifest_handshake_nothing_changes() -> None:
    rewriter = ClientConfigRewriter("x")
    stream = HANDSHAKE + run(CLIENT_CONFIG_QUERY, b"\xa1" + _pack_string("a") + b"\x01")
    assert feed(rewriter, stream, 5) == stream and rewriter.rewritten == 0
    manifest = HANDSHAKE[:4] + b"\x00\x00\x01\xff" + HANDSHAKE[8:]
    rewriter = ClientConfigRewriter("x")
    stream = manifest + b"\x01\x02" + run(CLIENT_CONFIG_QUERY)
    assert feed(rewriter, stream, 7) == stream and rewriter.rewritten == 0
