"""WebSocket framing (RFC 6455) as bytes in, messages out, and client frames as bytes: no socket in here.

websocket-client spends ~20 µs of Python per frame (header reads, frame objects, validation); parsing the
frames out of one large recv costs a fraction of that. The handshake stays with websocket-client
(recorder/connection.py); everything after it is this parser and `client_frame`.
"""

from __future__ import annotations

OPCODE_CONT, OPCODE_TEXT, OPCODE_BINARY = 0x0, 0x1, 0x2
OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG = 0x8, 0x9, 0xA
_MAX_FRAME = 64 << 20  # a longer frame is a broken stream, not market data


class ProtocolError(ConnectionError):
    """The server broke the WebSocket protocol: the connection cannot continue past this point."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.messages: list[tuple[int, bytes]] = []  # the whole messages before the violation


class FrameParser:
    """Turns the server's bytes, as they arrive, into whole messages: (opcode, payload).

    Text and binary messages come out whole (fragments joined); Ping and Close frames come out as they
    are, for the caller to answer; unsolicited Pongs are dropped. A partial frame waits for more bytes.
    """

    def __init__(self) -> None:
        self._data = b""
        self._pos = 0
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0

    def feed(self, chunk: bytes) -> list[tuple[int, bytes]]:
        """Every message `chunk` completes, in order; ProtocolError on a malformed frame (with the whole
        messages before it)."""
        rest = self._data[self._pos :]
        self._data, self._pos = (rest + chunk if rest else chunk), 0
        messages: list[tuple[int, bytes]] = []
        try:
            while (frame := self._next_frame()) is not None:
                message = self._message(*frame)
                if message is not None:
                    messages.append(message)
        except ProtocolError as error:
            error.messages = messages
            raise
        return messages

    def _next_frame(self) -> tuple[bool, int, bytes] | None:
        data, pos = self._data, self._pos
        available = len(data) - pos
        if available < 2:
            return None
        first, second = data[pos], data[pos + 1]
        if first & 0x70 or second & 0x80:
            raise ProtocolError("reserved bits set or masked frame from the server")
        length, header = second & 0x7F, 2
        if length == 126:
            if available < 4:
                return None
            length, header = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
        elif length == 127:
            if available < 10:
                return None
            length, header = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
            if length > _MAX_FRAME:
                raise ProtocolError(f"frame of {length} bytes")
        end = pos + header + length
        if end > len(data):
            return None
        self._pos = end
        return bool(first & 0x80), first & 0x0F, data[pos + header : end]

    def _message(self, fin: bool, opcode: int, payload: bytes) -> tuple[int, bytes] | None:
        if opcode in (OPCODE_TEXT, OPCODE_BINARY):
            if self._fragments:
                raise ProtocolError("a new message inside a fragmented one")
            if fin:
                return opcode, payload
            self._fragments, self._fragment_opcode = [payload], opcode
            return None
        if opcode == OPCODE_CONT:
            if not self._fragments:
                raise ProtocolError("a continuation frame with nothing to continue")
            self._fragments.append(payload)
            if not fin:
                return None
            whole, self._fragments = b"".join(self._fragments), []
            return self._fragment_opcode, whole
        if opcode in (OPCODE_PING, OPCODE_CLOSE):
            return opcode, payload
        if opcode != OPCODE_PONG:
            raise ProtocolError(f"unknown opcode {opcode}")
        return None


def client_frame(opcode: int, payload: bytes, mask: bytes) -> bytes:
    """One final client frame: a client masks every frame it sends with a fresh 4-byte key."""
    length = len(payload)
    if length < 126:
        header = bytes([0x80 | opcode, 0x80 | length])
    elif length < 1 << 16:
        header = bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + length.to_bytes(8, "big")
    key = (mask * (length // 4 + 1))[:length]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")
    return header + mask + masked
