"""One symbol's order book maintained from incrDepth frames, and the rules that decide it needs a resync.

Pure: numbers in, a book and resync reasons out; no socket, no file, no clock (BINGX_API.md §21).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence

Levels = list[tuple[float, float]]

# Resync reasons: the first words of the stream_events detail and of book_snapshots.resync_reason.
REPEAT = "repeated id"
STEP_BACK = "backward id"
BEFORE_SNAPSHOT = "update before snapshot"
CROSSED = "crossed book"
DISAGREES = "disagrees with depth"


class Side:
    """Price levels of one side: prices sorted ascending (bisect) beside a price -> quantity map."""

    __slots__ = ("descending", "prices", "qtys")

    def __init__(self, descending: bool) -> None:
        self.descending = descending  # bids: the best is the highest price
        self.prices: list[float] = []
        self.qtys: dict[float, float] = {}

    def replace(self, prices: Sequence[float], qtys: Sequence[float]) -> None:
        self.qtys = {price: qty for price, qty in zip(prices, qtys, strict=True) if qty != 0}
        self.prices = sorted(self.qtys)

    def apply(self, prices: Sequence[float], qtys: Sequence[float]) -> None:
        """Set each level; a quantity of 0 deletes it (absent or not). Order on the wire does not matter."""
        book, ladder = self.qtys, self.prices
        for price, qty in zip(prices, qtys, strict=True):
            if qty == 0:
                if book.pop(price, None) is not None:
                    del ladder[bisect_left(ladder, price)]
            else:
                if price not in book:
                    insort(ladder, price)
                book[price] = qty

    def best(self) -> float | None:
        if not self.prices:
            return None
        return self.prices[-1] if self.descending else self.prices[0]

    def top(self, levels: int | None = None) -> Levels:
        """The best `levels` levels (all if None), best first."""
        return list(zip(*self.columns(levels), strict=True))

    def columns(self, levels: int | None = None) -> tuple[list[float], list[float]]:
        """(prices, quantities) of the best `levels` levels (all if None), best first."""
        if self.descending:
            chosen = self.prices[::-1] if levels is None else self.prices[: -levels - 1 : -1]
        else:
            chosen = self.prices[:] if levels is None else self.prices[:levels]
        book = self.qtys
        return chosen, [book[price] for price in chosen]

    def __len__(self) -> int:
        return len(self.prices)


class Book:
    """A full-depth book and the update it reflects (`update_id`, `event_time` in epoch ms)."""

    __slots__ = ("asks", "bids", "event_time", "update_id")

    def __init__(self) -> None:
        self.bids = Side(descending=True)
        self.asks = Side(descending=False)
        self.update_id = 0
        self.event_time = 0

    def top(self, levels: int | None = None) -> tuple[Levels, Levels]:
        return self.bids.top(levels), self.asks.top(levels)

    def is_crossed(self) -> bool:
        bid, ask = self.bids.best(), self.asks.best()
        return bid is not None and ask is not None and bid >= ask


class Engine:
    """Apply `all` snapshots and `update` diffs of one symbol in receive order; say when to resync.

    After a resync the book is invalid (`valid` False) and every update is ignored until the next `all`:
    the live recorder resubscribes, which brings one. A forward id jump is normal on BingX, never a resync.
    """

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.book = Book()
        self.valid = False
        self.snapshots = 0  # `all` frames applied
        self.applied = 0  # updates applied
        self.ignored = 0  # updates dropped while waiting for a snapshot after a resync
        self.resyncs = 0
        self._awaiting = False  # a resync happened: quiet until the next snapshot

    def apply(
        self,
        action: str,
        update_id: int,
        event_time: int,
        bid_prices: Sequence[float],
        bid_qtys: Sequence[float],
        ask_prices: Sequence[float],
        ask_qtys: Sequence[float],
    ) -> str | None:
        """Apply one incrDepth frame; return the resync reason when this frame broke the book, else None."""
        book = self.book
        if action == "all":
            book.bids.replace(bid_prices, bid_qtys)
            book.asks.replace(ask_prices, ask_qtys)
            book.update_id, book.event_time = update_id, event_time
            self.valid, self._awaiting = True, False
            self.snapshots += 1
            if book.is_crossed():
                return self.resync(f"{CROSSED} in the snapshot at id {update_id}")
            return None
        if not self.valid:
            if self._awaiting:
                self.ignored += 1
                return None
            return self.resync(f"{BEFORE_SNAPSHOT}: id {update_id} arrived before any snapshot")
        last = book.update_id
        if update_id <= last:
            kind = REPEAT if update_id == last else STEP_BACK
            return self.resync(f"{kind}: incrDepth update id {update_id} after {last}")
        book.bids.apply(bid_prices, bid_qtys)
        book.asks.apply(ask_prices, ask_qtys)
        book.update_id, book.event_time = update_id, event_time
        self.applied += 1
        if book.is_crossed():
            best_bid, best_ask = book.bids.best(), book.asks.best()
            return self.resync(f"{CROSSED}: best bid {best_bid} >= best ask {best_ask} at id {update_id}")
        return None

    def subscribed(self) -> None:
        """A new subscription: its `all` comes next, so an update before it is a fault (a resync)."""
        self.valid, self._awaiting = False, False

    def join_midstream(self) -> None:
        """Start quiet: updates before the first `all` are ignored (a replay that starts mid-stream)."""
        self.valid, self._awaiting = False, True

    def resync(self, reason: str) -> str:
        """Mark the book invalid until the next snapshot; count it; return the reason."""
        self.valid, self._awaiting = False, True
        self.resyncs += 1
        return reason
