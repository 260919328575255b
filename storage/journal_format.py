"""The journal's on-disk format: record kinds, the record layout, segment names. No I/O but listing."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import NamedTuple

# Record kinds (one byte in each record): the receive path's verdict, so the converter needs no extra state.
DATA = 0  # a decoded data frame of an acked topic: normalize it
BINARY = 1  # bytes that did not decode (bad gzip / not UTF-8): quarantine them
EVENT = 2  # a synthetic recorder event (JSON): a stream_events row
CONTROL = 3  # acks, errors, unknown text: raw_messages only
DROPPED = 4  # data for a topic not acked with code 0: raw_messages only

SUFFIX = ".wal"
HEAD = struct.Struct("<II")  # body length, crc32(body)
BODY = struct.Struct("<qqBB")  # received_at µs, seq, kind, len(connection)
MAX_BODY = 64 << 20  # anything longer is corruption, not a frame


class Offset(NamedTuple):
    """A position in the journal: the next record to read is at `position` bytes into `segment`."""

    segment: str = ""
    position: int = 0


class Record(NamedTuple):
    """One journal record; a NamedTuple because the converter makes tens of thousands per second."""

    received_at_us: int
    connection: str
    seq: int
    kind: int
    payload: bytes  # UTF-8 text for every kind except BINARY
    end: Offset  # where the record after this one starts


def encode(received_at_us: int, connection: str, seq: int, kind: int, payload: bytes) -> bytes:
    """One record's bytes: length and CRC header, fixed fields, connection id, payload."""
    return b"".join(pieces(received_at_us, connection.encode(), seq, kind, payload))


def pieces(received_at_us: int, conn: bytes, seq: int, kind: int, payload: bytes) -> tuple[bytes, ...]:
    """A record as (header, fixed fields + connection id, payload): the payload is never copied here."""
    fixed = BODY.pack(received_at_us, seq, kind, len(conn)) + conn
    crc = zlib.crc32(payload, zlib.crc32(fixed))
    return HEAD.pack(len(fixed) + len(payload), crc), fixed, payload


def segments(root: Path) -> list[str]:
    """Names of the journal's segment files, oldest first (names sort in write order)."""
    if not root.is_dir():
        return []
    return sorted(entry.name for entry in root.iterdir() if entry.name.endswith(SUFFIX))


def fsync_dir(path: Path) -> None:
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
