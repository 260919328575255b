"""The WebSocket framing as bytes in, messages out: lengths, splits, fragments, control frames, violations."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder.wire import (
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_CONT,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
    FrameParser,
    ProtocolError,
    client_frame,
)


def server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        return bytes([first, n]) + payload
    if n < 1 << 16:
        return bytes([first, 126]) + n.to_bytes(2, "big") + payload
    return bytes([first, 127]) + n.to_bytes(8, "big") + payload


def client_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Unmask what a client sent (it masks every frame): an independent reading of RFC 6455 §5.2."""
    out, at = [], 0
    while at < len(data):
        assert data[at] & 0x80 and data[at + 1] & 0x80, "a client frame is final and masked"
        opcode, length, header = data[at] & 0x0F, data[at + 1] & 0x7F, 2
        if length == 126:
            length, header = int.from_bytes(data[at + 2 : at + 4], "big"), 4
        elif length == 127:
            length, header = int.from_bytes(data[at + 2 : at + 10], "big"), 10
        mask = data[at + header : at + header + 4]
        body = data[at + header + 4 : at + header + 4 + length]
        out.append((opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(body))))
        at += header + 4 + length
    return out


def test_reads_every_length_form_in_order() -> None:
    payloads = [b"", b"x" * 125, b"y" * 126, b"z" * 70_000, "é".encode()]
    data = b"".join(server_frame(OPCODE_BINARY, p) for p in payloads)
    assert FrameParser().feed(data) == [(OPCODE_BINARY, p) for p in payloads]


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=8), st.data())
def test_any_split_of_the_bytes_gives_the_same_messages(payloads: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(server_frame(OPCODE_TEXT, p) for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    parser, got = FrameParser(), []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += parser.feed(stream[start:end])
    assert got == [(OPCODE_TEXT, p) for p in payloads]


def test_a_partial_frame_waits_for_the_rest() -> None:
    whole = server_frame(OPCODE_TEXT, b'{"dataType":"BTC-USDT@trade"}' * 10)
    parser = FrameParser()
    assert parser.feed(whole[:1]) == []  # a header byte alone is not a frame
    assert parser.feed(whole[1:3]) == []
    assert parser.feed(whole[3:]) == [(OPCODE_TEXT, b'{"dataType":"BTC-USDT@trade"}' * 10)]


def test_fragments_are_joined_and_control_frames_in_between_come_out_first() -> None:
    data = (
        server_frame(OPCODE_TEXT, b"ab", fin=False)
        + server_frame(OPCODE_PING, b"ping-1")  # control frames may interleave with fragments
        + server_frame(OPCODE_CONT, b"cd", fin=False)
        + server_frame(OPCODE_PONG, b"unsolicited pong")
        + server_frame(OPCODE_CONT, b"ef")
        + server_frame(OPCODE_BINARY, b"next")
        + server_frame(OPCODE_CLOSE, (1000).to_bytes(2, "big"))
    )
    assert FrameParser().feed(data) == [
        (OPCODE_PING, b"ping-1"),
        (OPCODE_TEXT, b"abcdef"),
        (OPCODE_BINARY, b"next"),
        (OPCODE_CLOSE, b"\x03\xe8"),
    ]


@pytest.mark.parametrize(
    "raw",
    [
        bytes([0x81 | 0x40, 1]) + b"x",  # reserved bit: no extension was negotiated
        bytes([0x81, 0x81]) + b"mask" + b"x",  # a server must not mask
        bytes([0x83, 1]) + b"x",  # unknown opcode
        server_frame(OPCODE_CONT, b"x"),  # a continuation of nothing
        server_frame(OPCODE_TEXT, b"a", fin=False) + server_frame(OPCODE_TEXT, b"b"),  # a message in one
        bytes([0x82, 127]) + (65 << 20).to_bytes(8, "big"),  # 65 MiB: a broken stream, not market data
    ],
)
def test_protocol_violations_raise_with_the_messages_before_them(raw: bytes) -> None:
    before = server_frame(OPCODE_TEXT, b"fine")
    with pytest.raises(ProtocolError) as caught:
        FrameParser().feed(before + raw)
    assert caught.value.messages == [(OPCODE_TEXT, b"fine")]


@pytest.mark.parametrize("length", [0, 4, 125, 126, 65_535, 65_536])
def test_client_frames_are_final_masked_and_read_back(length: int) -> None:
    payload = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    frame = client_frame(OPCODE_TEXT, payload, b"\x01\x02\x03\x04")
    assert client_frames(frame) == [(OPCODE_TEXT, payload)]
    assert frame[-length:] != payload or length == 0  # masked on the wire
