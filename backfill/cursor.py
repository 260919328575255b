"""Backfill cursors: which time ranges of one (dataset, symbol, interval) are on disk.

A cursor is a set of half-open ranges [from_ms, to_ms) of event time whose rows are all in the lake. It is
only ever extended AFTER the rows of a range were written, so it is never ahead of the data on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from storage.state import State

Span = tuple[int, int]


@dataclass
class Cursor:
    """Covered ranges (sorted, disjoint, non-adjacent) and, for trades, where the id walk stopped."""

    covered: list[Span] = field(default_factory=list)
    resume_ms: int | None = None  # trades: the walk stopped at this time ...
    resume_id: int | None = None  # ... and the next trade to ask for has this id

    def add(self, span: Span) -> None:
        """Mark [from_ms, to_ms) as on disk, merging with what touches it."""
        self.covered = merged([*self.covered, span])

    def gaps(self, start_ms: int, end_ms: int) -> list[Span]:
        """Return the parts of [start_ms, end_ms) not covered yet, in time order."""
        found: list[Span] = []
        at = start_ms
        for low, high in self.covered:
            if high <= at:
                continue
            if low >= end_ms:
                break
            if low > at:
                found.append((at, low))
            at = max(at, high)
        if at < end_ms:
            found.append((at, end_ms))
        return found

    def resume_id_at(self, start_ms: int) -> int | None:
        """Return the trade id to continue from when a walk starts where the last one stopped."""
        return self.resume_id if self.resume_ms == start_ms else None


def merged(spans: list[Span]) -> list[Span]:
    """Sort and join overlapping or touching ranges; drop empty ones."""
    result: list[Span] = []
    for low, high in sorted(s for s in spans if s[0] < s[1]):
        if result and low <= result[-1][1]:
            result[-1] = (result[-1][0], max(result[-1][1], high))
        else:
            result.append((low, high))
    return result


def cursor_name(dataset: str, symbol: str, interval: str | None) -> str:
    """Name of the State document for one backfill series, e.g. backfill/klines/BTC-USDT/1m."""
    return f"backfill/{dataset}/{symbol}/{interval or '-'}"


def load(state: State, name: str) -> Cursor:
    """Read a cursor; a missing document is an empty cursor."""
    document = state.read(name) or {}
    covered = [(int(low), int(high)) for low, high in document.get("covered", [])]
    resume = document.get("resume")
    return Cursor(
        merged(covered),
        int(resume["ms"]) if resume else None,
        int(resume["id"]) if resume else None,
    )


def save(state: State, name: str, cursor: Cursor) -> None:
    """Replace the cursor document atomically (State.write)."""
    document: dict[str, object] = {"covered": [list(span) for span in cursor.covered]}
    if cursor.resume_ms is not None and cursor.resume_id is not None:
        document["resume"] = {"ms": cursor.resume_ms, "id": cursor.resume_id}
    state.write(name, document)
