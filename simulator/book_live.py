"""An incrementally maintained copy of `book.book(spec, t, levels)` for live incrDepth feeds.

Advancing touches only the levels whose size epoch ended and the edges the mid price moved past, instead of
recomputing a 1,000-level book per push.
"""

from __future__ import annotations

from simulator.book import TICK_MS, _level, _traits
from simulator.prices import Spec, format_units, path_ticks

Side = dict[int, tuple[str, str]]  # price in ticks -> (price, qty) strings
_REBUILD_AFTER_TICKS = 600  # a longer jump (a paused feed) is cheaper to rebuild than to replay


class LiveBook:
    """`bids`/`asks` equal `book.book(spec, t_ms, levels)` after `advance(t_ms)` (time only moves forward)."""

    def __init__(self, spec: Spec, t_ms: int, levels: int) -> None:
        self.spec, self.levels = spec, levels
        self._zero = format_units(0, spec.quantity_precision)
        self._rebuild(t_ms // TICK_MS)

    def sides(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Return (bids descending, asks ascending) like `book.book`."""
        return [self.bids[p] for p in self._bid_prices], [self.asks[p] for p in self._ask_prices]

    def advance(self, t_ms: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Move to `t_ms`; return changed (bids, asks), prices descending, removed levels with a zero qty."""
        tick = t_ms // TICK_MS
        if tick <= self.tick:
            return [], []
        if tick - self.tick > _REBUILD_AFTER_TICKS:
            old_bids, old_asks = self.bids, self.asks
            self._rebuild(tick)
            return _diff(old_bids, self.bids, self._zero), _diff(old_asks, self.asks, self._zero)
        changes: tuple[Side, Side] = ({}, {})
        self._reprice(tick, changes)
        self._replay(tick, changes)
        return _ordered(changes[0]), _ordered(changes[1])

    # ---- internals ----

    def _rebuild(self, tick: int) -> None:
        self.tick, self.mid = tick, path_ticks(self.spec, tick * TICK_MS)
        self._bid_prices = _walk(self.spec, [self.mid], -1, self.levels)
        self._ask_prices = _walk(self.spec, [self.mid + 1], 1, self.levels)
        self.bids = {p: _level(self.spec, p, tick) for p in self._bid_prices}
        self.asks = {p: _level(self.spec, p, tick) for p in self._ask_prices}
        self._due: dict[int, list[int]] = {}  # tick -> prices whose size changes then
        self._next: dict[int, int] = {}  # price -> the tick it is scheduled at (drops stale entries)
        for price in (*self._bid_prices, *self._ask_prices):
            self._schedule(price, tick)

    def _reprice(self, tick: int, changes: tuple[Side, Side]) -> None:
        """Shift both price ladders to the mid at `tick`; entering levels get their current size."""
        mid = path_ticks(self.spec, tick * TICK_MS)
        if mid == self.mid:
            return
        self.mid = mid
        bids = _shift(self.spec, self._bid_prices, mid, -1, self.levels)
        asks = _shift(self.spec, self._ask_prices, mid + 1, 1, self.levels)
        self._move(self.bids, self._bid_prices, bids, tick, changes[0])
        self._move(self.asks, self._ask_prices, asks, tick, changes[1])
        self._bid_prices, self._ask_prices = bids, asks

    def _move(self, side: Side, old: list[int], new: list[int], tick: int, changed: Side) -> None:
        kept = set(new)
        for price in set(old) - kept:
            changed[price] = (side.pop(price)[0], self._zero)
        for price in kept - side.keys():
            side[price] = changed[price] = _level(self.spec, price, tick)
            self._schedule(price, tick)

    def _replay(self, tick: int, changes: tuple[Side, Side]) -> None:
        """Re-render the levels whose size epoch ended in (self.tick, tick]."""
        before: tuple[Side, Side] = ({}, {})  # a size can change and change back within one step
        for at in range(self.tick + 1, tick + 1):
            for price in self._due.pop(at, ()):
                if self._next.get(price) != at:
                    continue  # rescheduled when it re-entered the book
                index = 0 if price in self.bids else 1 if price in self.asks else None
                if index is None:
                    del self._next[price]
                    continue
                side = (self.bids, self.asks)[index]
                level = _level(self.spec, price, at)
                if level != side[price]:
                    before[index].setdefault(price, side[price])
                    side[price] = changes[index][price] = level
                self._schedule(price, at)
        for changed, originals in zip(changes, before, strict=True):
            for price, level in originals.items():
                if changed.get(price) == level:
                    del changed[price]
        self.tick = tick

    def _schedule(self, price: int, tick: int) -> None:
        _, period, phase = _traits(self.spec, price)
        next_change = ((tick + phase) // period + 1) * period - phase
        if self._next.get(price) == next_change:
            return
        self._next[price] = next_change
        self._due.setdefault(next_change, []).append(price)


def _diff(old: Side, new: Side, zero: str) -> list[tuple[str, str]]:
    changed = {p: level for p, level in new.items() if old.get(p) != level}
    changed.update((p, (level[0], zero)) for p, level in old.items() if p not in new)
    return _ordered(changed)


def _ordered(changed: Side) -> list[tuple[str, str]]:
    return [changed[p] for p in sorted(changed, reverse=True)]


def _walk(spec: Spec, prices: list[int], step: int, levels: int) -> list[int]:
    """Extend a ladder away from the mid with priced levels until it has `levels` (or reaches price 1)."""
    price = prices[-1] + step
    while len(prices) < levels and price >= 1:
        if _traits(spec, price)[0]:
            prices.append(price)
        price += step
    return prices


def _shift(spec: Spec, prices: list[int], start: int, step: int, levels: int) -> list[int]:
    """Return the ladder that starts at `start` (always present, like `book._prices`), reusing `prices`."""
    old = prices[0]
    if start == old:
        return prices
    if (old - start) * step > 0:  # the best moved toward the other side: new levels before the old ones
        head = [p for p in range(start + step, old, step) if _traits(spec, p)[0]]
        tail = prices if _traits(spec, old)[0] else prices[1:]  # the old best was there by rule only
        return _walk(spec, [start, *head, *tail][:levels], step, levels)
    beyond = [p for p in prices[1:] if (p - start) * step > 0]
    return _walk(spec, [start, *beyond], step, levels)
