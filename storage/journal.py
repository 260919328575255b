"""The recorder's write-ahead log: append-only segment files of CRC-checked records under <data-dir>/journal/.

A torn tail (kill -9, power loss) is detected by length and CRC and ignored, never fatal; a corrupt record
in the middle costs that record only (storage/journal_resync.py). One writer at a time (journal_lock.py);
the writer is storage/journal_writer.py, the layout storage/journal_format.py; this module reads.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import zlib
from collections.abc import Generator, Iterator
from pathlib import Path

from storage import journal_resync
from storage.journal_format import (
    BINARY,
    BODY,
    CONTROL,
    DATA,
    DROPPED,
    EVENT,
    HEAD,
    MAX_BODY,
    SUFFIX,
    Offset,
    Record,
    encode,
    segments,
)
from storage.journal_writer import JournalWriter
from storage.state import State

__all__ = [
    "BINARY",
    "CONTROL",
    "DATA",
    "DROPPED",
    "EVENT",
    "SUFFIX",
    "JournalReader",
    "JournalWriter",
    "Offset",
    "Record",
    "encode",
    "segments",
]

log = logging.getLogger(__name__)

STATE_NAME = "journal"


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
        path = self.root / name
        window = max(budget, 1 << 20)
        while True:  # again only after a corrupt span was skipped: scanning goes on after it
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
            size, head, body, crc32 = len(data), HEAD.size, BODY.size, zlib.crc32
            head_unpack, body_unpack = HEAD.unpack_from, BODY.unpack_from
            while at + head <= size:
                length, crc = head_unpack(data, at)
                start = at + head
                stop = start + length
                if length < body or length > MAX_BODY or (stop <= size and crc32(view[start:stop]) != crc):
                    break  # corrupt: the slow path below
                if stop > size:
                    if at == 0 and len(data) == window:  # one record longer than the read window
                        yield from self._scan(name, position, finished, stop)
                        return
                    if finished and len(data) < window:  # cut short, or a corrupt length
                        break
                    return  # not written yet
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
            else:
                if not (finished and at < len(data) < window):  # a finished segment's last bytes
                    return
            resume = yield from self._skip(name, position + at, finished)
            if resume is None:
                return
            position = resume

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
            BODY.unpack_from(rest, found + HEAD.size)[0]
            if found is not None
            else int(path.stat().st_mtime * 1_000_000)
        )
        payload = journal_resync.skip_event(name, offset, len(span), kept, tail=found is None)
        end = offset + len(span)
        yield Record(at_us, f"journal:{name}", offset, EVENT, payload, Offset(name, end))
        return None if found is None else end
