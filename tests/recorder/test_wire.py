"""FrameReader against raw server bytes on a socket pair: lengths, fragments, Pings, close, timeouts."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import websocket

from recorder.wire import OPCODE_BINARY, OPCODE_CLOSE, OPCODE_TEXT, FrameReader


def server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        return bytes([first, n]) + payload
    if n < 1 << 16:
        return bytes([first, 126]) + n.to_bytes(2, "big") + payload
    return bytes([first, 127]) + n.to_bytes(8, "big") + payload


def client_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Unmask what the client sent (it masks every frame)."""
    out, at = [], 0
    while at < len(data):
        opcode, length = data[at] & 0x0F, data[at + 1] & 0x7F
        mask = data[at + 2 : at + 6]
        body = data[at + 6 : at + 6 + length]
        out.append((opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(body))))
        at += 6 + length
    return out


@pytest.fixture
def pair() -> Iterator[tuple[FrameReader, socket.socket]]:
    ours, server = socket.socketpair()
    ws = websocket.WebSocket(skip_utf8_validation=True)
    ws.sock, ws.connected = ours, True
    ours.settimeout(0.2)  # everything a test sends is already in the socket pair's buffer
    server.settimeout(1)
    with ours, server:
        yield FrameReader(ws), server


def test_reads_every_length_form_in_order(pair: tuple[FrameReader, socket.socket]) -> None:
    reader, server = pair
    payloads = [b"", b"x" * 125, b"y" * 126, b"z" * 70_000, "é".encode()]
    server.sendall(b"".join(server_frame(OPCODE_BINARY, p) for p in payloads))
    assert [reader.read() for _ in payloads] == [(OPCODE_BINARY, p) for p in payloads]


def test_a_frame_split_across_reads_is_reassembled(pair: tuple[FrameReader, socket.socket]) -> None:
    reader, server = pair
    whole = server_frame(OPCODE_TEXT, b'{"dataType":"BTC-USDT@trade"}' * 10)
    server.sendall(whole[:1])
    with pytest.raises(websocket.WebSocketTimeoutException):
        reader.read()  # a header byte alone is not a frame
    server.sendall(whole[1:3])
    with pytest.raises(websocket.WebSocketTimeoutException):
        reader.read()
    server.sendall(whole[3:])
    assert reader.read() == (OPCODE_TEXT, b'{"dataType":"BTC-USDT@trade"}' * 10)


def test_fragments_are_joined_and_pings_answered_in_between(pair: tuple[FrameReader, socket.socket]) -> None:
    reader, server = pair
    server.sendall(
        server_frame(OPCODE_TEXT, b"ab", fin=False)
        + server_frame(0x9, b"ping-1")  # control frames may interleave with fragments
        + server_frame(0x0, b"cd", fin=False)
        + server_frame(0xA, b"unsolicited pong")
        + server_frame(0x0, b"ef")
        + server_frame(OPCODE_BINARY, b"next")
    )
    assert reader.read() == (OPCODE_TEXT, b"abcdef")
    assert reader.read() == (OPCODE_BINARY, b"next")
    assert client_frames(server.recv(1024)) == [(0xA, b"ping-1")]


def test_close_is_returned_and_answered(pair: tuple[FrameReader, socket.socket]) -> None:
    reader, server = pair
    server.sendall(server_frame(OPCODE_CLOSE, (1000).to_bytes(2, "big")))
    assert reader.read() == (OPCODE_CLOSE, b"\x03\xe8")
    assert client_frames(server.recv(1024))[0][0] == OPCODE_CLOSE


def test_eof_and_malformed_frames_raise(pair: tuple[FrameReader, socket.socket]) -> None:
    reader, server = pair
    server.sendall(server_frame(OPCODE_TEXT, b"last"))
    server.shutdown(socket.SHUT_WR)
    assert reader.read() == (OPCODE_TEXT, b"last")
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        reader.read()


@pytest.mark.parametrize(
    "raw",
    [
        bytes([0x81 | 0x40, 1]) + b"x",  # reserved bit: no extension was negotiated
        bytes([0x81, 0x81]) + b"mask" + b"x",  # a server must not mask
        bytes([0x83, 1]) + b"x",  # unknown opcode
        server_frame(0x0, b"x"),  # a continuation of nothing
    ],
)
def test_protocol_violations_raise(pair: tuple[FrameReader, socket.socket], raw: bytes) -> None:
    reader, server = pair
    server.sendall(raw)
    with pytest.raises(websocket.WebSocketProtocolException):
        reader.read()


def test_pump_returns_every_whole_message_of_one_read_and_keeps_a_partial_one(
    pair: tuple[FrameReader, socket.socket],
) -> None:
    reader, server = pair
    tail = server_frame(OPCODE_BINARY, b"c" * 300)
    whole = server_frame(OPCODE_TEXT, b"a") + server_frame(0x9, b"p") + server_frame(OPCODE_BINARY, b"b")
    server.sendall(whole)
    server.sendall(tail[:100])
    # A socket pair delivers at once: both writes are in the buffer, so one recv takes them
    assert len(reader._ws.sock.recv(4096, socket.MSG_PEEK)) == len(whole) + 100
    assert reader.pump() == [(OPCODE_TEXT, b"a"), (OPCODE_BINARY, b"b")]
    assert client_frames(server.recv(1024)) == [(0xA, b"p")]  # the Ping was answered meanwhile
    assert reader.pump() == []  # nothing new: the read times out, the partial frame waits
    server.sendall(tail[100:])
    assert reader.pump() == [(OPCODE_BINARY, b"c" * 300)]
