"""Server frames read straight off the socket in 64 KiB chunks: the receive path's hot loop.

websocket-client spends ~20 µs of Python per frame (header reads, frame objects, validation); parsing the
frames out of one large recv costs a fraction of that. The handshake and sending stay with websocket-client.
"""

from __future__ import annotations

import contextlib
import socket

import websocket

CHUNK = 1 << 16
OPCODE_CONT, OPCODE_TEXT, OPCODE_BINARY = 0x0, 0x1, 0x2
OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG = 0x8, 0x9, 0xA
_MAX_FRAME = 64 << 20  # a longer frame is a broken stream, not market data


class FrameReader:
    """Returns whole messages (fragments joined) and close frames; answers WebSocket Pings itself."""

    def __init__(self, ws: websocket.WebSocket) -> None:
        if ws.sock is None:
            raise websocket.WebSocketConnectionClosedException("the socket is not connected")
        self._ws = ws
        self._sock: socket.socket = ws.sock
        self._data = b""
        self._pos = 0
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0

    def read(self) -> tuple[int, bytes]:
        """The next (opcode, payload) of a text, binary or close frame.

        Raises websocket.WebSocketTimeoutException when the socket's timeout passes with no whole frame,
        WebSocketConnectionClosedException at EOF, WebSocketProtocolException on a malformed frame.
        """
        while True:
            frame = self._next_frame()
            if frame is None:
                self._fill()
                continue
            fin, opcode, payload = frame
            message = self._message(fin, opcode, payload)
            if message is not None:
                return message

    def pump(self) -> list[tuple[int, bytes]]:
        """One recv (the socket is readable), then every whole message it completed, in order.

        For a selector loop: an SSL socket's already-decrypted bytes are drained too, since the selector
        cannot see them. Raises like `read`, except that a timeout returns what there is.
        """
        try:
            self._fill()
            pending = getattr(self._sock, "pending", None)
            while pending is not None and pending():
                self._fill()
        except websocket.WebSocketTimeoutException:
            pass
        messages = []
        while (frame := self._next_frame()) is not None:
            message = self._message(*frame)
            if message is not None:
                messages.append(message)
        return messages

    def _next_frame(self) -> tuple[bool, int, bytes] | None:
        data, pos = self._data, self._pos
        available = len(data) - pos
        if available < 2:
            return None
        first, second = data[pos], data[pos + 1]
        if first & 0x70 or second & 0x80:
            raise websocket.WebSocketProtocolException("reserved bits set or masked frame from the server")
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
                raise websocket.WebSocketProtocolException(f"frame of {length} bytes")
        end = pos + header + length
        if end > len(data):
            return None
        self._pos = end
        return bool(first & 0x80), first & 0x0F, data[pos + header : end]

    def _fill(self) -> None:
        try:
            chunk = self._sock.recv(CHUNK)
        except TimeoutError as error:  # socket.timeout; an SSL socket with a timeout raises it too
            raise websocket.WebSocketTimeoutException(str(error)) from None
        if not chunk:
            raise websocket.WebSocketConnectionClosedException("Connection to remote host was lost.")
        rest = self._data[self._pos :]
        self._data, self._pos = (rest + chunk if rest else chunk), 0

    def _message(self, fin: bool, opcode: int, payload: bytes) -> tuple[int, bytes] | None:
        if opcode in (OPCODE_TEXT, OPCODE_BINARY):
            if self._fragments:
                raise websocket.WebSocketProtocolException("a new message inside a fragmented one")
            if fin:
                return opcode, payload
            self._fragments, self._fragment_opcode = [payload], opcode
            return None
        if opcode == OPCODE_CONT:
            if not self._fragments:
                raise websocket.WebSocketProtocolException("a continuation frame with nothing to continue")
            self._fragments.append(payload)
            if not fin:
                return None
            whole, self._fragments = b"".join(self._fragments), []
            return self._fragment_opcode, whole
        if opcode == OPCODE_CLOSE:
            with contextlib.suppress(OSError, websocket.WebSocketException):
                self._ws.send_close()  # answer it, as websocket-client would
            return opcode, payload
        if opcode == OPCODE_PING:
            self._ws.pong(payload)
        elif opcode != OPCODE_PONG:
            raise websocket.WebSocketProtocolException(f"unknown opcode {opcode}")
        return None
