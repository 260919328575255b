"""The recorder's write-ahead log: append-only segment files of CRC-checked records under <data-dir>/journal/.

A torn tail (kill -9, power loss) is detected by length and CRC and ignored, never fatal.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import shutil
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from storage.state import State

log = logging.getLogger(__name__)

# Record kinds (one byte in each record): the receive path's verdict, so the converter needs no extra state.
DATA = 0  # a decoded data frame of an acked topic: normalize it
BINARY = 1  # bytes that did not decode (bad gzip / not UTF-8): quarantine them
EVENT = 2  # a synthetic recorder event (JSON): a stream_events row
CONTROL = 3  # acks, errors, unknown text: raw_messages only
DROPPED = 4  # data for a topic not acked with code 0: raw_messages only

SUFFIX = ".wal"
STATE_NAME = "journal"
_HEAD = struct.Struct("<II")  # body length, crc32(body)
_BODY = struct.Struct("<qqBB")  # received_at µs, seq, kind, len(connection)
_MAX_BODY = 64 << 20  # anything longer is corruption, not a frame


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
    return b"".join(_pieces(received_at_us, connection.encode(), seq, kind, payload))


def _pieces(received_at_us: int, conn: bytes, seq: int, kind: int, payload: bytes) -> tuple[bytes, ...]:
    """A record as (header, fixed fields + connection id, payload): the payload is never copied here."""
    fixed = _BODY.pack(received_at_us, seq, kind, len(conn)) + conn
    crc = zlib.crc32(payload, zlib.crc32(fixed))
    return _HEAD.pack(len(fixed) + len(payload), crc), fixed, payload


def segments(root: Path) -> list[str]:
    """Names of the journal's segment files, oldest first (names sort in write order)."""
    if not root.is_dir():
        return []
    return sorted(entry.name for entry in root.iterdir() if entry.name.endswith(SUFFIX))


class JournalWriter:
    """Buffers appends in memory and write()s them to the OS every `flush_interval_s` from its own thread.

    `append` never touches the disk, so the receive path does not wait on it; a kill -9 loses at most the
    last flush interval. Segments are fsynced on rotation, on close and every `fsync_interval_s`.
    """

    def __init__(
        self,
        root: Path,
        segment_bytes: int = 64 << 20,
        segment_seconds: float = 600.0,
        flush_interval_s: float = 0.05,
        fsync_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self.segment_bytes = segment_bytes
        self.segment_seconds = segment_seconds
        self.flush_interval_s = flush_interval_s
        self.fsync_interval_s = fsync_interval_s
        self.clock = clock
        self.records_written = 0
        self._pending: list[tuple[int, str, int, int, str | bytes]] = []
        self._append_lock = threading.Lock()
        self._file_lock = threading.Lock()
        self._stop = threading.Event()
        root.mkdir(parents=True, exist_ok=True)
        existing = segments(root)
        self._next_index = int(existing[-1].removesuffix(SUFFIX)) + 1 if existing else 0
        self._file = self._open_segment()
        self._thread = threading.Thread(target=self._flush_loop, name="journal-flush", daemon=True)
        self._thread.start()

    def append(self, received_at_us: int, connection: str, seq: int, kind: int, payload: str | bytes) -> None:
        """Queue one record; cheap and thread-safe. It reaches the OS within one flush interval."""
        with self._append_lock:
            self._pending.append((received_at_us, connection, seq, kind, payload))

    def flush(self) -> None:
        """Write every queued record to the OS now (survives kill -9 of this process once this returns)."""
        with self._append_lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        names: dict[str, bytes] = {}
        parts: list[bytes] = []
        for t, conn, seq, kind, data in pending:
            name = names.get(conn) or names.setdefault(conn, conn.encode())
            parts += _pieces(t, name, seq, kind, data.encode() if isinstance(data, str) else data)
        chunk = b"".join(parts)
        with self._file_lock:
            view = memoryview(chunk)
            while view:
                view = view[self._file.write(view) or 0 :]
            self.records_written += len(pending)
            if self._file.tell() >= self.segment_bytes or self.clock() - self._opened >= self.segment_seconds:
                self._rotate()

    def close(self) -> None:
        """Flush, fsync and close the current segment; stop the flush thread. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        self.flush()
        with self._file_lock:
            self._sync()
            self._file.close()

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _flush_loop(self) -> None:
        last_sync = self.clock()
        while not self._stop.wait(self.flush_interval_s):
            self.flush()
            if self.clock() - last_sync >= self.fsync_interval_s:
                with self._file_lock:
                    self._sync()
                last_sync = self.clock()

    def _open_segment(self) -> io.FileIO:
        # A new segment on every start: an old one may end in a torn record that must stay last in it.
        path = self.root / f"{self._next_index:012d}{SUFFIX}"
        self._next_index += 1
        self._opened = self.clock()
        handle = io.FileIO(path, "ab")  # unbuffered: flush() is one write() syscall
        _fsync_dir(self.root)
        return handle

    def _rotate(self) -> None:
        self._sync()
        self._file.close()
        self._file = self._open_segment()

    def _sync(self) -> None:
        os.fsync(self._file.fileno())


class JournalReader:
    """Reads records from a committed offset; commits through storage.state and drops converted segments."""

    def __init__(self, root: Path, state: State, archive: Path | None = None) -> None:
        self.root = root
        self.state = state
        self.archive = archive  # None: delete converted segments; a folder: move them there
        self.torn_tails = 0

    def committed(self) -> Offset:
        """The offset of the first record not yet converted (the journal's start if nothing was committed)."""
        document = self.state.read(STATE_NAME)
        if not document:
            return Offset()
        return Offset(str(document["segment"]), int(document["position"]))

    def commit(self, offset: Offset) -> None:
        """Record that everything before `offset` is converted and durable; remove finished segments."""
        self.state.write(STATE_NAME, {"segment": offset.segment, "position": offset.position})
        for name in segments(self.root):
            if name >= offset.segment:
                break
            path = self.root / name
            if self.archive is None:
                path.unlink(missing_ok=True)
            else:
                self.archive.mkdir(parents=True, exist_ok=True)
                shutil.move(path, self.archive / name)

    def read(self, start: Offset, max_records: int = 50_000, max_bytes: int = 32 << 20) -> list[Record]:
        """Up to `max_records` complete records from `start` on, across segments, oldest first."""
        out: list[Record] = []
        budget = max_bytes
        names = segments(self.root)
        for index, name in enumerate(names):
            if name < start.segment:
                continue
            position = start.position if name == start.segment else 0
            finished = index < len(names) - 1  # the writer opens a new segment only after closing this one
            before = len(out)
            # _scan reads at most `budget` bytes of the segment, so the byte bound holds without per-record
            # accounting (a Python step per record costs as much as decoding the record)
            out.extend(itertools.islice(self._scan(name, position, finished, budget), max_records - before))
            if len(out) > before:
                budget -= out[-1].end.position - position
            if len(out) >= max_records or budget <= 0:
                return out
        return out

    def __iter__(self) -> Iterator[Record]:
        """Every complete record from the committed offset on (a convenience for tests and tools)."""
        offset = self.committed()
        while batch := self.read(offset):
            yield from batch
            offset = batch[-1].end

    def _scan(self, name: str, position: int, finished: bool, budget: int) -> Iterator[Record]:
        path = self.root / name
        window = max(budget, 1 << 20)
        try:
            with open(path, "rb") as handle:
                handle.seek(position)
                data = handle.read(window)
        except FileNotFoundError:
            return
        view = memoryview(data)
        at = 0
        names: dict[bytes, str] = {}  # a few connection ids, decoded once
        new = tuple.__new__
        size, head, body, crc32 = len(data), _HEAD.size, _BODY.size, zlib.crc32
        head_unpack, body_unpack = _HEAD.unpack_from, _BODY.unpack_from
        while at + head <= size:
            length, crc = head_unpack(data, at)
            start = at + head
            stop = start + length
            if length < body or length > _MAX_BODY or (stop <= size and crc32(view[start:stop]) != crc):
                self._torn(name, position + at, finished)
                return
            if stop > size:
                if at == 0 and len(data) == window:  # one record longer than the read window
                    yield from self._scan(name, position, finished, stop)
                elif finished and len(data) < window:
                    self._torn(name, position + at, finished)
                return
            received_at, seq, kind, conn_len = body_unpack(data, start)
            conn_at = start + body
            conn = data[conn_at : conn_at + conn_len]
            connection = names.get(conn) or names.setdefault(conn, conn.decode())
            # tuple.__new__ skips the NamedTuples' Python-level __new__: tens of thousands per batch
            yield new(
                Record,
                (
                    received_at,
                    connection,
                    seq,
                    kind,
                    data[conn_at + conn_len : stop],
                    new(Offset, (name, position + stop)),
                ),
            )
            at = stop
        if finished and at < len(data) < window:
            self._torn(name, position + at, finished)

    def _torn(self, name: str, position: int, finished: bool) -> None:
        if finished:
            self.torn_tails += 1
            log.warning(
                "journal %s: torn or corrupt record at byte %d, skipping the rest of it", name, position
            )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _fsync_dir(path: Path) -> None:
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
