"""What the journal writer does while it cannot write (disk full, I/O error): hold, then count what it drops.

Frames held in memory are written once the disk takes them again; frames past the bound are dropped and
each connection's dropped span becomes one stream_events `gap` row, so the hole is visible in SQL.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson

log = logging.getLogger(__name__)

BUFFER_BYTES = 64 << 20  # frames held while the disk is full: ~a minute of the whole market


class Stall:
    """One episode of failed writes: how much is held, and per connection what was dropped."""

    def __init__(self, error: OSError, held_bytes: int, limit_bytes: int, since: float) -> None:
        self.error = f"{error.strerror or error}" if isinstance(error, OSError) else str(error)
        self.held_bytes = held_bytes
        self.limit_bytes = limit_bytes
        self.since = since  # the writer's clock
        self.dropping = False
        self.dropped: dict[str, list[int]] = {}  # connection -> [first seq, first µs, last µs, count]

    def hold(self, size: int) -> bool:
        """Whether a record of `size` bytes still fits in memory; once one does not, none does."""
        if not self.dropping and self.held_bytes + size <= self.limit_bytes:
            self.held_bytes += size
            return True
        if not self.dropping:
            self.dropping = True
            log.error(
                "journal: %s held in memory and the disk still refuses writes; dropping frames until it "
                "takes them again (each connection's dropped span becomes a stream_events gap row)",
                size_text(self.limit_bytes),
            )
        return False

    def drop(self, received_at_us: int, connection: str, seq: int) -> None:
        span = self.dropped.get(connection)
        if span is None:
            self.dropped[connection] = [seq, received_at_us, received_at_us, 1]
        else:
            span[2] = received_at_us
            span[3] += 1

    @property
    def dropped_count(self) -> int:
        return sum(span[3] for span in self.dropped.values())

    def gaps(self) -> list[tuple[int, str, int, bytes]]:
        """(received_at µs, connection, seq, event payload) per connection that dropped frames.

        The row takes the first dropped frame's seq: that seq is never used by a journaled record, so the
        (connection, seq) key of stream_events stays unique.
        """
        out = []
        for connection, (seq, first, last, count) in self.dropped.items():
            detail = (
                f"journal could not write ({self.error}): {count} frames received from {_iso(first)} "
                f"to {_iso(last)} (seq {seq} on) were dropped"
            )
            payload = orjson.dumps({"event": "gap", "topic": None, "code": None, "detail": detail})
            out.append((first, connection, seq, payload))
        return out


def size_text(size: int) -> str:
    return f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"


def _iso(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, tz=UTC).isoformat(timespec="microseconds")
