"""Trade history of one market: which hour tapes hold a window, id arithmetic, and cached aggregates.

Hour tapes and aggregates are pure functions of (symbol key, rate, listing, hour), so caches are process-wide.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import accumulate
from threading import Lock

from simulator.prices import DAY_MS, HOUR_MS, Spec
from simulator.tape import IDS_PER_DAY, MINUTE_MS, Agg, Tape, TapeCache, combine, generate, hour_counts

_TAPES = TapeCache(size=1024, max_trades=6_000_000)  # live feeds: 250 symbols x 3 hours at 2/s
_LAYOUTS: dict[tuple[int, float, int, int], tuple[list[tuple[int, int]], list[int]]] = {}
_AGGS: dict[tuple[int, float, int, int, int], Agg | None] = {}
_LOCK = Lock()
_CACHE_BOUND = 200_000  # entries; a bound, not an eviction policy: everything is cheap to recompute


class History:
    """Locate and aggregate the trades of one symbol: a Poisson tape per hour, ids per day."""

    def __init__(self, spec: Spec, rate: float, listed_ms: int) -> None:
        self.spec, self.rate, self.listed_ms = spec, rate, listed_ms
        self._key = (spec.key, rate, listed_ms)
        self.first_hour = listed_ms // HOUR_MS

    def layout(self, day: int) -> tuple[list[tuple[int, int]], list[int]]:
        """Return the day's per-hour (trades, copies) and the 25 id offsets of its hours."""
        key = (*self._key, day)
        with _LOCK:
            found = _LAYOUTS.get(key)
        if found is None:
            counts = [hour_counts(self.spec, day * 24 + h, self.rate, self.listed_ms) for h in range(24)]
            found = counts, [0, *accumulate(base + copies for base, copies in counts)]
            with _LOCK:
                if len(_LAYOUTS) > _CACHE_BOUND:
                    _LAYOUTS.clear()
                _LAYOUTS[key] = found
        return found

    def size(self, hour: int) -> int:
        """Return the number of trades in an hour without generating them."""
        base, copies = self.layout(hour // 24)[0][hour % 24]
        return base + copies

    def tape(self, hour: int) -> Tape:
        day, index = divmod(hour, 24)
        counts, offsets = self.layout(day)
        first_id = day * IDS_PER_DAY + offsets[index]
        return _TAPES.get(
            (*self._key, hour), lambda: generate(self.spec, hour, first_id, counts[index], self.listed_ms)
        )

    def hours(self, start_ms: int, end_ms: int) -> Iterator[Tape]:
        """Yield the non-empty tapes overlapping [start_ms, end_ms), oldest first."""
        for hour in range(max(start_ms // HOUR_MS, self.first_hour), (end_ms - 1) // HOUR_MS + 1):
            if self.size(hour):
                yield self.tape(hour)

    def hours_back(self, end_ms: int) -> Iterator[Tape]:
        """Yield the non-empty tapes before end_ms, newest first, back to the listing."""
        for hour in range((end_ms - 1) // HOUR_MS, self.first_hour - 1, -1):
            if self.size(hour):
                yield self.tape(hour)

    def first_hour_of_id(self, trade_id: int) -> int:
        """Return the hour holding `trade_id` (or the first hour after it, or the listing hour)."""
        day, index = divmod(trade_id, IDS_PER_DAY)
        if day < self.first_hour // 24:
            return self.first_hour
        offsets = self.layout(day)[1]
        hour = next((h for h in range(24) if index < offsets[h + 1]), 24)
        return max(day * 24 + hour, self.first_hour)

    def aggregate(self, start_ms: int, end_ms: int) -> Agg | None:
        """Aggregate trades in [start_ms, end_ms) from cached days, hours and minutes plus raw edges."""
        parts: list[Agg | None] = []
        for day in range(max(start_ms, self.listed_ms) // DAY_MS, (end_ms - 1) // DAY_MS + 1):
            lo, hi = max(start_ms, day * DAY_MS), min(end_ms, (day + 1) * DAY_MS)
            if hi - lo == DAY_MS:
                parts.append(self._cached(DAY_MS, day))
                continue
            for hour in range(lo // HOUR_MS, (hi - 1) // HOUR_MS + 1):
                h_lo, h_hi = max(lo, hour * HOUR_MS), min(hi, (hour + 1) * HOUR_MS)
                if not self.size(hour):
                    continue
                whole = h_hi - h_lo == HOUR_MS
                parts.append(
                    self._cached(HOUR_MS, hour) if whole else _part_of_hour(self.tape(hour), h_lo, h_hi)
                )
        return combine(parts)

    def _cached(self, unit_ms: int, index: int) -> Agg | None:
        key = (*self._key, unit_ms, index)
        with _LOCK:
            if key in _AGGS:
                return _AGGS[key]
        if unit_ms == HOUR_MS:
            agg = self.tape(index).aggregate() if self.size(index) else None
        else:
            agg = combine(self._cached(HOUR_MS, hour) for hour in range(index * 24, index * 24 + 24))
        with _LOCK:
            if len(_AGGS) > _CACHE_BOUND:
                _AGGS.clear()
            _AGGS[key] = agg
        return agg


def _part_of_hour(tape: Tape, lo: int, hi: int) -> Agg | None:
    first_minute, last_minute = -(-lo // MINUTE_MS), hi // MINUTE_MS
    if first_minute >= last_minute:
        return tape.aggregate(*tape.span(lo, hi))
    base = tape.hour * 60
    return combine(
        [
            tape.aggregate(*tape.span(lo, first_minute * MINUTE_MS)),
            *tape.minutes()[first_minute - base : last_minute - base],
            tape.aggregate(*tape.span(last_minute * MINUTE_MS, hi)),
        ]
    )
