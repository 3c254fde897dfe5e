"""Browser's post-connect settings, answered by the bridge: the I2X style and guide open by themselves.

After connecting, Neo4j Browser reads its settings with ``CALL dbms.clientConfig()`` (rows of ``name``,
``value``) and runs the commands of ``browser.post_connect_cmd`` (``;``-separated). ArcadeDB answers that
procedure with no rows. :class:`ClientConfigRewriter` watches the bytes Browser sends through the bridge
and, in the one ``RUN`` message whose query is exactly that call, swaps the query for
:data:`POST_CONNECT_CYPHER` with the commands as ``$commands``; the server runs it and answers in the
same exchange, so nothing else about the session changes. Every other byte passes unchanged (only the
chunk boundaries of a rewritten message move, which Bolt does not give a meaning).

Bolt framing (the parts used here): the client opens with a 20-byte handshake (magic and four proposed
versions); then each message is a series of chunks (a 2-byte big-endian size, then that many bytes) ended
by an empty chunk; an empty chunk between messages is a keep-alive. A ``RUN`` message is the PackStream
structure ``B3 10`` with three fields: the query (a string), the parameters (a map) and the extra map.
A client that proposes the newer manifest handshake (``0x000001FF``) sends more bytes after it, so for
such a client the rewriter stays out of the way.
"""

from __future__ import annotations

CLIENT_CONFIG_QUERY = "CALL dbms.clientConfig()"
POST_CONNECT_CYPHER = "RETURN 'browser.post_connect_cmd' AS name, $commands AS value"
_HANDSHAKE = 20
_MANIFEST = b"\x00\x00\x01\xff"
_RUN = b"\xb3\x10"
_EMPTY_MAP = b"\xa0"


def post_connect_commands(port: int) -> str:
    """What Browser runs after connecting through the bridge on ``port``: the style, then the guide."""
    return f"style http://localhost:{port}/i2x.grass; play http://localhost:{port}/guide.html"


def _pack_string(text: str) -> bytes:
    data = text.encode()
    n = len(data)
    if n < 16:
        return bytes([0x80 | n]) + data
    for marker, width in ((0xD0, 1), (0xD1, 2), (0xD2, 4)):
        if n < 1 << (8 * width):
            return bytes([marker]) + n.to_bytes(width, "big") + data
    raise ValueError("string too long for PackStream")


def _unpack_string(data: bytes, at: int) -> tuple[str, int] | None:
    """The string starting at ``data[at]`` and the offset after it; None if no string starts there."""
    if at >= len(data):
        return None
    marker = data[at]
    if 0x80 <= marker <= 0x8F:
        start, n = at + 1, marker & 0x0F
    elif marker in (0xD0, 0xD1, 0xD2):
        width = {0xD0: 1, 0xD1: 2, 0xD2: 4}[marker]
        start, n = at + 1 + width, int.from_bytes(data[at + 1:at + 1 + width], "big")
    else:
        return None
    if start + n > len(data):
        return None
    return data[start:start + n].decode(errors="replace"), start + n


def _chunked(message: bytes) -> bytes:
    out = bytearray()
    for i in range(0, len(message), 0xFFFF):
        part = message[i:i + 0xFFFF]
        out += len(part).to_bytes(2, "big") + part
    return bytes(out + b"\x00\x00")


class ClientConfigRewriter:
    """A filter over one Browser connection's bytes toward the server (see the module docstring).

    Args:
        commands: the value of ``browser.post_connect_cmd`` to answer with.
    """

    def __init__(self, commands: str) -> None:
        self.params = b"\xa1" + _pack_string("commands") + _pack_string(commands)
        self.rewritten = 0
        self._handshake = bytearray()
        self._pending = bytearray()  # bytes of an incomplete chunk
        self._message = bytearray()
        self._passthrough = False

    def feed(self, data: bytes) -> bytes:
        """The bytes to send on for ``data`` (what Browser sent); an incomplete chunk waits for the rest."""
        if self._passthrough:
            return data
        out = bytearray()
        if len(self._handshake) < _HANDSHAKE:
            take = data[:_HANDSHAKE - len(self._handshake)]
            self._handshake += take
            out += take
            data = data[len(take):]
            if len(self._handshake) == _HANDSHAKE and _MANIFEST in bytes(self._handshake[4:]):
                self._passthrough = True
                return bytes(out) + data
        self._pending += data
        while len(self._pending) >= 2:
            size = int.from_bytes(self._pending[:2], "big")
            if len(self._pending) < 2 + size:
                break
            chunk = bytes(self._pending[2:2 + size])
            del self._pending[:2 + size]
            if size:
                self._message += chunk
            elif self._message:
                out += _chunked(self._rewrite(bytes(self._message)))
                self._message.clear()
            else:
                out += b"\x00\x00"  # a keep-alive
        return bytes(out)

    def _rewrite(self, message: bytes) -> bytes:
        if not message.startswith(_RUN):
            return message
        query = _unpack_string(message, len(_RUN))
        if query is None or query[0].strip() != CLIENT_CONFIG_QUERY or message[query[1]:query[1] + 1] != _EMPTY_MAP:
            return message
        self.rewritten += 1
        return _RUN + _pack_string(POST_CONNECT_CYPHER) + self.params + message[query[1] + 1:]
