"""The recorder's write-ahead log: append-only segment files of CRC-checked records under <data-dir>/journal/.

A torn tail (kill -9, power loss) is detected by length and CRC and ignored, never fatal; a corrupt record
in the middle costs that record only (storage/journal_resync.py). One writer at a time (journal_lock.py).
"""

from __future__ import annotations

import errno
import io
import itertools
import logging
import os
import shutil
import struct
import threading
import time
import zlib
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import NamedTuple, Protocol

import orjson

from storage import journal_resync
from storage.journal_lock import WriterLock
from storage.journal_stall import BUFFER_BYTES, Stall, size_text
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


class SegmentFile(Protocol):
    """What the writer needs of an open segment (io.FileIO; a test passes a file that fills up)."""

    def write(self, data: memoryview, /) -> int | None: ...
    def tell(self) -> int: ...
    def truncate(self, size: int, /) -> int: ...
    def seek(self, position: int, /) -> int: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...


def open_segment(path: Path) -> SegmentFile:
    return io.FileIO(path, "ab")  # unbuffered: flush() is one write() syscall


class JournalWriter:
    """Buffers appends in memory and write()s them to the OS every `flush_interval_s` from its own thread.

    `append` never touches the disk, so the receive path does not wait on it; a kill -9 loses at most the
    last flush interval. Segments are fsynced on rotation, on close and every `fsync_interval_s`. Holds the
    journal's writer lock (JournalLocked if another process has it). A failed write (disk full) is cut back
    to the last whole record and retried every `retry_s`; meanwhile up to `buffer_bytes` of records wait in
    memory and later ones are dropped, each connection's dropped span journaled as a `gap` event once
    writing works again (storage/journal_stall.py).
    """

    def __init__(
        self,
        root: Path,
        segment_bytes: int = 64 << 20,
        segment_seconds: float = 600.0,
        flush_interval_s: float = 0.05,
        fsync_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        buffer_bytes: int = BUFFER_BYTES,
        retry_s: float = 1.0,
        opener: Callable[[Path], SegmentFile] = open_segment,
    ) -> None:
        self.root = root
        self.segment_bytes = segment_bytes
        self.segment_seconds = segment_seconds
        self.flush_interval_s = flush_interval_s
        self.fsync_interval_s = fsync_interval_s
        self.clock = clock
        self.buffer_bytes = buffer_bytes
        self.retry_s = retry_s
        self.opener = opener
        self.records_written = 0
        self.lost = 0  # records that could never be written (the disk was still full at close)
        self.name = f"{time.time_ns() // 1_000_000:x}-journal"  # the writer's own stream_events rows
        self._events = 0
        self._pending: list[tuple[int, str, int, int, str | bytes]] = []
        self._stalled: Stall | None = None  # set while writes fail
        self._retry_at = 0.0
        self._append_lock = threading.Lock()
        self._file_lock = threading.Lock()
        self._stop = threading.Event()
        root.mkdir(parents=True, exist_ok=True)
        self._lock = WriterLock(root)
        try:
            existing = segments(root)
            self._next_index = int(existing[-1].removesuffix(SUFFIX)) + 1 if existing else 0
            self._file = self._open_segment()
        except BaseException:
            self._lock.release()
            raise
        self._thread = threading.Thread(target=self._flush_loop, name="journal-flush", daemon=True)
        self._thread.start()

    def append(self, received_at_us: int, connection: str, seq: int, kind: int, payload: str | bytes) -> None:
        """Queue one record; cheap and thread-safe. It reaches the OS within one flush interval."""
        with self._append_lock:
            stalled = self._stalled
            if stalled is None or stalled.hold(len(payload)):  # None: the hot path, one test
                self._pending.append((received_at_us, connection, seq, kind, payload))
            else:
                stalled.drop(received_at_us, connection, seq)

    def flush(self) -> None:
        """Write every queued record to the OS now (survives kill -9 of this process once this returns).

        While writes fail this retries at most every `retry_s`; the records stay queued, in order.
        """
        with self._file_lock:
            if self._stalled is not None and self.clock() < self._retry_at:
                return
            with self._append_lock:
                pending, self._pending = self._pending, []
            if not pending:
                return
            step = len(pending) if self._stalled is None else 1024  # a slowly freed disk takes some
            written = 0
            while written < len(pending) and self._write(_chunk(pending[written : written + step])):
                written += min(step, len(pending) - written)
            if written < len(pending):
                with self._append_lock:
                    self._pending[:0] = pending[written:]
            self.records_written += written
            if written == len(pending) and self._stalled is not None:
                self._resume()
            if self._stalled is None and (
                self._file.tell() >= self.segment_bytes or self.clock() - self._opened >= self.segment_seconds
            ):
                self._rotate()

    def close(self) -> None:
        """Flush, fsync and close the current segment; stop the flush thread; release the lock. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        self._retry_at = 0.0  # one last try whatever the retry interval
        self.flush()
        with self._file_lock:
            if self._stalled is not None:
                self.lost = len(self._pending) + self._stalled.dropped_count
                log.error(
                    "journal: %d records could not be written (%s) and are lost; everything written "
                    "before is intact",
                    self.lost,
                    self._stalled.error,
                )
            self._sync()
            self._file.close()
            self._lock.release()

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _flush_loop(self) -> None:
        last_sync = self.clock()
        while not self._stop.wait(self.flush_interval_s):
            try:
                self.flush()
                if self.clock() - last_sync >= self.fsync_interval_s:
                    with self._file_lock:
                        self._sync()
                    last_sync = self.clock()
            except Exception:  # the flush thread must outlive any one failure, or the journal stops
                log.exception("journal: flushing failed; trying again")

    def _write(self, chunk: bytes) -> bool:
        """Append whole records, or nothing: a failed write is cut back so no torn record is left."""
        start = self._file.tell()
        try:
            view = memoryview(chunk)
            while view:
                view = view[self._file.write(view) or 0 :]
            return True
        except OSError as error:
            try:
                self._file.truncate(start)  # needs no space; the reader would resync past it anyway
                self._file.seek(start)  # truncate leaves the position (and so tell()) past the end
            except OSError as cut:
                log.error("journal: could not cut a failed write back (%s); the reader skips it", cut)
            self._stall(error)
            return False

    def _stall(self, error: OSError) -> None:
        self._retry_at = self.clock() + self.retry_s
        if self._stalled is not None:
            return
        with self._append_lock:
            held = sum(len(record[4]) for record in self._pending)
            self._stalled = Stall(error, held, self.buffer_bytes, self.clock())
        log.error(
            "journal: cannot write %s (%s%s); holding up to %s of frames in memory, retrying every %g s",
            self.root,
            "disk full: " if error.errno in (errno.ENOSPC, errno.EDQUOT) else "",
            error.strerror or error,
            size_text(self.buffer_bytes),
            self.retry_s,
        )
        self._event("journal_error", f"cannot write the journal: {error}; holding frames in memory")

    def _resume(self) -> None:
        stalled, self._stalled = self._stalled, None
        assert stalled is not None
        gaps = stalled.gaps()
        with self._append_lock:
            self._pending.extend((t, conn, seq, EVENT, payload) for t, conn, seq, payload in gaps)
        log.warning(
            "journal: writing again after %.1f s; %d frames were dropped%s",
            self.clock() - stalled.since,
            stalled.dropped_count,
            " (stream_events gap rows)" if gaps else "",
        )

    def _event(self, event: str, detail: str) -> None:
        payload = orjson.dumps({"event": event, "topic": None, "code": None, "detail": detail})
        with self._append_lock:
            self._pending.append((time.time_ns() // 1000, self.name, self._events, EVENT, payload))
            self._events += 1

    def _open_segment(self) -> SegmentFile:
        # A new segment on every start: an old one may end in a torn record that must stay last in it.
        path = self.root / f"{self._next_index:012d}{SUFFIX}"
        self._next_index += 1
        self._opened = self.clock()
        handle = self.opener(path)
        _fsync_dir(self.root)
        return handle

    def _rotate(self) -> None:
        try:
            new = self._open_segment()
        except OSError as error:  # stay on this segment; tried again after another segment_seconds
            log.warning("journal: cannot open a new segment (%s); going on with the current one", error)
            return
        old, self._file = self._file, new
        self._sync(old)
        old.close()

    def _sync(self, handle: SegmentFile | None = None) -> None:
        try:
            os.fsync((handle or self._file).fileno())
        except OSError as error:  # logged; the data is in the OS, and the next write tells if it failed
            log.warning("journal: fsync failed: %s", error)


def _chunk(pending: list[tuple[int, str, int, int, str | bytes]]) -> bytes:
    names: dict[str, bytes] = {}
    parts: list[bytes] = []
    for t, conn, seq, kind, data in pending:
        name = names.get(conn) or names.setdefault(conn, conn.encode())
        parts += _pieces(t, name, seq, kind, data.encode() if isinstance(data, str) else data)
    return b"".join(parts)


class JournalReader:
    """Reads records from a committed offset; commits through storage.state and drops converted segments."""

    def __init__(self, root: Path, state: State, archive: Path | None = None) -> None:
        self.root = root
        self.state = state
        self.archive = archive  # None: delete converted segments; a folder: move them there
        self.torn_tails = 0  # finished segments that ended in a span that failed its checks
        self.corrupt_spans = 0  # spans skipped before an intact record

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
        while True:  # a loop, not recursion: a long run of corrupt spans must not exhaust the stack
            resume = yield from self._scan_from(name, position, finished, budget)
            if resume is None:
                return
            position = resume  # past a skipped corrupt span: go on in the same segment

    def _scan_from(
        self, name: str, position: int, finished: bool, budget: int
    ) -> Generator[Record, None, int | None]:
        """Yield records from `position`; return where to go on after a skipped corrupt span (None: done)."""
        path = self.root / name
        window = max(budget, 1 << 20)
        try:
            with open(path, "rb") as handle:
                handle.seek(position)
                data = handle.read(window)
        except FileNotFoundError:
            return None
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
                return (yield from self._skip(name, position + at, finished))
            if stop > size:
                if at == 0 and len(data) == window:  # one record longer than the read window
                    return (yield from self._scan_from(name, position, finished, stop))
                if finished and len(data) < window:  # cut short, or a corrupt length
                    return (yield from self._skip(name, position + at, finished))
                return None
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
            return (yield from self._skip(name, position + at, finished))
        return None

    def _skip(self, name: str, offset: int, finished: bool) -> Generator[Record, None, int | None]:
        """The slow path: skip a span that failed its length/CRC check, keeping its bytes and saying so.

        A live segment's span is skipped only once an intact record follows it: until then it may be a
        record still being written. Returns the next intact record's offset (None: the segment is done).
        """
        path = self.root / name
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                rest = handle.read()
        except FileNotFoundError:
            return None
        found = journal_resync.next_record(rest, 1)
        if found is None and not finished:
            return None
        span = rest if found is None else rest[:found]
        kept, new = journal_resync.quarantine(self.root, name, offset, span)
        if found is None:
            self.torn_tails += 1
        else:
            self.corrupt_spans += 1
        if new:
            log.warning(
                "journal %s: %d bytes at %d failed the length/CRC check; skipped%s, kept in %s",
                name,
                len(span),
                offset,
                " to the segment's end" if found is None else ", the next record is intact",
                kept,
            )
        # the next record's time, or the segment's: the row is the same on every re-read
        at_us = (
            _BODY.unpack_from(rest, found + _HEAD.size)[0]
            if found is not None
            else int(path.stat().st_mtime * 1_000_000)
        )
        payload = journal_resync.skip_event(name, offset, len(span), kept, tail=found is None)
        end = offset + len(span)
        yield Record(at_us, f"journal:{name}", offset, EVENT, payload, Offset(name, end))
        return None if found is None else end


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
