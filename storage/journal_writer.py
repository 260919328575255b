"""The journal's writer: appends buffered in memory, written by a thread, rotated, fsynced; one per journal.

A failed write (disk full) is cut back to the last whole record, held and retried (storage/journal_stall.py).
"""

from __future__ import annotations

import errno
import io
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import orjson

from storage.journal_format import EVENT, SUFFIX, fsync_dir, pieces, segments
from storage.journal_lock import WriterLock
from storage.journal_stall import BUFFER_BYTES, Stall, size_text

log = logging.getLogger(__name__)


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
        self._pending: list[bytes] = []  # whole records, encoded by the appending thread
        self._names: dict[str, bytes] = {}  # connection id -> its bytes
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
        self.append_all([(received_at_us, connection, seq, kind, payload)])

    def append_all(self, records: list[tuple[int, str, int, int, str | bytes]]) -> None:
        """Queue records of the same shape as `append`'s arguments, in order, under one lock.

        They are encoded here, by the appending thread: the flush thread then only joins and writes bytes,
        so it needs the GIL for moments only and a busy receive thread cannot hold up the journal's writes
        (measured at max rate: flushes of ~14,000 records took ~40 ms of contended GIL to encode).
        """
        encoded = [self._encode(*record) for record in records]
        with self._append_lock:
            stalled = self._stalled
            if stalled is None:
                self._pending.extend(encoded)
                return
            for record, data in zip(records, encoded, strict=True):
                if stalled.hold(len(data)):
                    self._pending.append(data)
                else:
                    stalled.drop(record[0], record[1], record[2])

    def _encode(
        self, received_at_us: int, connection: str, seq: int, kind: int, payload: str | bytes
    ) -> bytes:
        name = self._names.get(connection)
        if name is None:
            name = self._names[connection] = connection.encode()
        return b"".join(
            pieces(received_at_us, name, seq, kind, payload.encode() if isinstance(payload, str) else payload)
        )

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
            if self._stalled is None:  # the usual case: one write() of everything queued
                error = self._write(b"".join(pending))
                written = 0 if error else len(pending)
            else:  # in steps: a disk with a little room again takes what fits
                written = 0
                while written < len(pending):
                    error = self._write(b"".join(pending[written : written + 1024]))
                    if error:
                        break
                    written = min(written + 1024, len(pending))
            if written < len(pending):
                with self._append_lock:
                    self._pending[:0] = pending[written:]  # first again, in order
            self.records_written += written
            if error:
                self._stall(error)
                return
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

    def _write(self, chunk: bytes) -> OSError | None:
        """Append whole records, or nothing: a failed write is cut back so no torn record is left."""
        start = self._file.tell()
        try:
            view = memoryview(chunk)
            while view:
                view = view[self._file.write(view) or 0 :]
            return None
        except OSError as error:
            try:
                self._file.truncate(start)  # needs no space; the reader would resync past it anyway
                self._file.seek(start)  # truncate leaves the position (and so tell()) past the end
            except OSError as cut:
                log.error("journal: could not cut a failed write back (%s); the reader skips it", cut)
            return error

    def _stall(self, error: OSError) -> None:
        """Writes fail: hold what is queued (it counts against the buffer), retry later, say so once."""
        self._retry_at = self.clock() + self.retry_s
        if self._stalled is not None:
            return
        with self._append_lock:
            held = sum(map(len, self._pending))
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
            self._pending.extend(self._encode(t, conn, seq, EVENT, payload) for t, conn, seq, payload in gaps)
        log.warning(
            "journal: writing again after %.1f s; %d frames were dropped%s",
            self.clock() - stalled.since,
            stalled.dropped_count,
            " (stream_events gap rows)" if gaps else "",
        )

    def _event(self, event: str, detail: str) -> None:
        payload = orjson.dumps({"event": event, "topic": None, "code": None, "detail": detail})
        with self._append_lock:
            self._pending.append(
                self._encode(time.time_ns() // 1000, self.name, self._events, EVENT, payload)
            )
            self._events += 1

    def _open_segment(self) -> SegmentFile:
        # A new segment on every start: an old one may end in a torn record that must stay last in it.
        path = self.root / f"{self._next_index:012d}{SUFFIX}"
        self._next_index += 1
        self._opened = self.clock()
        handle = self.opener(path)
        fsync_dir(self.root)
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
