"""Every symbol's book from book_updates rows in receive order: snapshot rows, resyncs and depth verdicts.

Pure: the live converter and `bingx-recorder books` feed it the same rows in the same order and get the
same book_snapshots rows. A row's times are epoch ms (`event_time`) and µs (`received_at`) ints.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from books.depthcheck import DEFAULT_TOLERANCE_MS, DISAGREE, EXACT, LAG, DepthCheck, Verdict, frame_of
from books.engine import DISAGREES, Engine

Row = dict[str, Any]
SOURCE = "stream"  # derived rows keep the lineage of the frames they come from


@dataclass(frozen=True)
class SnapshotOptions:
    """`levels` per side every `interval_ms` (0: none); full depth every `checkpoint_ms` (0: none)."""

    levels: int = 25
    interval_ms: int = 100
    checkpoint_ms: int = 300_000
    tolerance_ms: int = DEFAULT_TOLERANCE_MS  # how long a disagreement with depth<N> may last

    @classmethod
    def parse(
        cls, text: str, checkpoint_minutes: float = 5.0, tolerance_ms: int | None = None
    ) -> SnapshotOptions:
        """Parse "25@100ms" (levels @ interval); raise ValueError with the expected form."""
        levels, _, interval = text.strip().partition("@")
        try:
            n, ms = int(levels), int(interval.removesuffix("ms"))
        except ValueError:
            raise ValueError(f"book snapshots {text!r}: expected LEVELS@INTERVALms, e.g. 25@100ms") from None
        if n < 1 or ms < 1 or checkpoint_minutes < 0:
            raise ValueError(f"book snapshots {text!r}: levels and interval must be positive")
        return cls(n, ms, int(checkpoint_minutes * 60_000), tolerance_ms or DEFAULT_TOLERANCE_MS)


@dataclass(frozen=True)
class Resync:
    symbol: str
    reason: str
    update_id: int
    received_at: int  # µs: the frame that showed the break


@dataclass
class Figures:
    """Per symbol: depth-frame verdicts, the worst disagreement and the resyncs by kind."""

    verdicts: Counter[str] = field(default_factory=Counter)
    worst: Verdict | None = None
    resyncs: Counter[str] = field(default_factory=Counter)


class BookTracker:
    """Feed `update` (book_updates rows) and `depth` (depth_snapshots rows) in receive order; then `take`."""

    def __init__(self, options: SnapshotOptions | None, tolerance_ms: int = DEFAULT_TOLERANCE_MS) -> None:
        # None (or levels 0): keep books and resync, write no snapshot rows
        self.options = options if options is not None and options.levels > 0 else None
        self.tolerance_ms = options.tolerance_ms if options else tolerance_ms
        self.engines: dict[str, Engine] = {}
        self.checks: dict[str, DepthCheck] = {}
        self.figures: dict[str, Figures] = {}
        self.rows: list[Row] = []
        self.resyncs: list[Resync] = []
        self._reasons: dict[str, str] = {}  # symbol -> why its book is waiting for a snapshot

    def take(self) -> tuple[list[Row], list[Resync]]:
        """Return and forget the snapshot rows and resyncs produced so far."""
        rows, resyncs = self.rows, self.resyncs
        self.rows, self.resyncs = [], []
        return rows, resyncs

    def subscribed(self, symbol: str) -> None:
        """The recorder subscribed SYMBOL's incrDepth (a stream_events row): an `all` must come first."""
        self._engine(symbol).subscribed()
        self.checks[symbol].reset()

    def _engine(self, symbol: str) -> Engine:
        engine = self.engines.get(symbol)
        if engine is None:
            # Until a subscription or a snapshot is seen, this may be the middle of a stream (a converter
            # restarted on the journal tail): updates before the first `all` are skipped, not a resync.
            engine = self.engines[symbol] = Engine(symbol)
            engine.join_midstream()
            self.checks[symbol] = DepthCheck(self.tolerance_ms)
            self.figures[symbol] = Figures()
        return engine

    def update(self, row: Mapping[str, Any]) -> None:
        symbol = row["symbol"]
        engine = self._engine(symbol)
        event_time, received_at = row["event_time"], row["received_at"]
        if engine.valid and self.options is not None:
            self._due(engine, event_time, received_at)
        reason = engine.apply(
            row["action"],
            row["update_id"],
            event_time,
            row["bid_prices"],
            row["bid_qtys"],
            row["ask_prices"],
            row["ask_qtys"],
        )
        check = self.checks[symbol]
        if reason is not None:
            self._resynced(engine, reason, row["update_id"], received_at)
            return
        if not engine.valid:
            return
        if row["action"] == "all":
            check.reset()
            if self.options is not None:
                self._emit(engine, event_time, "snapshot", received_at, self._reasons.pop(symbol, None))
        self._judged(engine, check.state(engine.book), received_at)

    def depth(self, row: Mapping[str, Any]) -> None:
        """A depth<N> frame or REST depth poll: judged against the book of its instant."""
        engine = self.engines.get(row["symbol"])
        if engine is None:
            return
        frame = frame_of(
            row["event_time"],
            row["levels"],
            row["bid_prices"],
            row["bid_qtys"],
            row["ask_prices"],
            row["ask_qtys"],
        )
        verdicts = self.checks[engine.symbol].frame(frame, engine.book if engine.valid else None)
        self._judged(engine, verdicts, row["received_at"])

    def _judged(self, engine: Engine, verdicts: list[Verdict], received_at: int) -> None:
        if not verdicts:
            return
        figures = self.figures[engine.symbol]
        for verdict in verdicts:
            figures.verdicts[verdict.outcome] += 1
            if verdict.outcome == DISAGREE and (
                figures.worst is None or verdict.differing > figures.worst.differing
            ):
                figures.worst = verdict
        check = self.checks[engine.symbol]
        lasting = check.is_lasting(verdicts)
        if lasting is not None:
            levels = lasting.frame.levels
            reason = engine.resync(
                f"{DISAGREES}{levels} for {check.tolerance_ms} ms: {lasting.differing} of {2 * levels} levels"
            )
            self._resynced(engine, reason, engine.book.update_id, received_at)

    def _resynced(self, engine: Engine, reason: str, update_id: int, received_at: int) -> None:
        self.checks[engine.symbol].reset()
        self.figures[engine.symbol].resyncs[reason.partition(":")[0]] += 1
        self._reasons[engine.symbol] = reason
        self.resyncs.append(Resync(engine.symbol, reason, update_id, received_at))

    def _due(self, engine: Engine, next_time: int, received_at: int) -> None:
        """Rows for the instants between the book's last update and the next one (which is not applied)."""
        options = self.options
        assert options is not None
        since = engine.book.event_time
        checkpoint = _ceil(since, options.checkpoint_ms) if options.checkpoint_ms else None
        interval = _ceil(since, options.interval_ms) if options.interval_ms else None
        if interval is not None and interval < next_time and interval != checkpoint:
            self._emit(engine, interval, "interval", received_at, None)
        if checkpoint is not None and checkpoint < next_time:
            self._emit(engine, checkpoint, "checkpoint", received_at, None)

    def _emit(self, engine: Engine, at: int, trigger: str, received_at: int, reason: str | None) -> None:
        assert self.options is not None
        depth = None if trigger == "checkpoint" else self.options.levels
        bid_prices, bid_qtys = engine.book.bids.columns(depth)
        ask_prices, ask_qtys = engine.book.asks.columns(depth)
        self.rows.append(
            {
                "symbol": engine.symbol,
                "snapshot_time": at,
                "event_time": engine.book.event_time,
                "update_id": engine.book.update_id,
                "trigger": trigger,
                "resync_reason": reason,
                "bid_prices": bid_prices,
                "bid_qtys": bid_qtys,
                "ask_prices": ask_prices,
                "ask_qtys": ask_qtys,
                "received_at": received_at,
                "source": SOURCE,
            }
        )


def _ceil(ms: int, step: int) -> int:
    return -(-ms // step) * step


__all__ = ["DISAGREE", "EXACT", "LAG", "BookTracker", "Figures", "Resync", "SnapshotOptions"]
