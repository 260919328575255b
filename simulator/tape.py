"""One UTC hour of trades for one symbol, generated from a seeded RNG, with per-minute OHLCV aggregates.

Prices are integer ticks and quantities integer units so that sums are exact decimals.
"""

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from threading import Lock

from simulator.prices import HOUR_MS, SECOND_MS, Spec, hash_of, path_ticks

MINUTE_MS = 60_000
IDS_PER_DAY = 10**8  # trade id = day number * 10^8 + index within the day: strictly increasing in time
DUPLICATE_SHARE = 0.03  # trades that share their millisecond with the previous one (BINGX_API §18: legit)


@dataclass(frozen=True)
class Agg:
    """OHLCV of a span of trades: prices in ticks, volume in quantity units, quote in ticks x units."""

    open: int
    high: int
    low: int
    close: int
    volume: int
    count: int
    quote: int

    def then(self, later: Agg) -> Agg:
        """Merge with the aggregate of the span right after this one."""
        return Agg(
            self.open,
            max(self.high, later.high),
            min(self.low, later.low),
            later.close,
            self.volume + later.volume,
            self.count + later.count,
            self.quote + later.quote,
        )


def combine(parts: Iterable[Agg | None]) -> Agg | None:
    """Merge consecutive aggregates, oldest first; None for spans without trades."""
    result: Agg | None = None
    for part in parts:
        if part is not None:
            result = part if result is None else result.then(part)
    return result


@dataclass
class Tape:
    """The trades of one (symbol, UTC hour), ascending by time; columns are parallel arrays."""

    hour: int  # hours since the epoch
    first_id: int  # id of the first trade: day * 10^8 + trades earlier that day
    times: array[int] = field(default_factory=lambda: array("q"))
    prices: array[int] = field(default_factory=lambda: array("q"))
    qtys: array[int] = field(default_factory=lambda: array("q"))
    sides: bytearray = field(default_factory=bytearray)  # 1 = buyer is maker (taker sold)
    _minutes: list[Agg | None] | None = None

    def span(self, start_ms: int, end_ms: int) -> tuple[int, int]:
        """Return the index range of trades with time in [start_ms, end_ms)."""
        return bisect_left(self.times, start_ms), bisect_left(self.times, end_ms)

    def aggregate(self, lo: int = 0, hi: int | None = None) -> Agg | None:
        """Aggregate trades with indexes in [lo, hi) (all of them by default)."""
        hi = len(self.times) if hi is None else hi
        if lo >= hi:
            return None
        prices, qtys = self.prices[lo:hi], self.qtys[lo:hi]
        quote = sum(p * q for p, q in zip(prices, qtys, strict=True))
        return Agg(prices[0], max(prices), min(prices), prices[-1], sum(qtys), hi - lo, quote)

    def minutes(self) -> list[Agg | None]:
        """Return the 60 per-minute aggregates of the hour (computed once)."""
        if self._minutes is None:
            bounds = [bisect_left(self.times, self.hour * HOUR_MS + m * MINUTE_MS) for m in range(61)]
            self._minutes = [self.aggregate(bounds[m], bounds[m + 1]) for m in range(60)]
        return self._minutes


def _poisson(rng: random.Random, mean: float) -> int:
    if mean < 30:  # Knuth's product of uniforms
        limit, count, product = math.exp(-mean), 0, rng.random()
        while product > limit:
            count, product = count + 1, product * rng.random()
        return count
    return max(0, round(rng.gauss(mean, math.sqrt(mean))))  # normal approximation: "Poisson-ish"


def hour_counts(spec: Spec, hour: int, rate: float, listed_ms: int) -> tuple[int, int]:
    """Return (trades, extra same-ms copies) of an hour, drawn without generating the trades."""
    start, end = max(hour * HOUR_MS, listed_ms), (hour + 1) * HOUR_MS
    if start >= end or rate <= 0:
        return 0, 0
    rng = random.Random(hash_of(spec.key, 15, hour))
    base = _poisson(rng, rate * (end - start) / SECOND_MS)
    return base, min(base, _poisson(rng, base * DUPLICATE_SHARE))


def generate(spec: Spec, hour: int, first_id: int, counts: tuple[int, int], listed_ms: int) -> Tape:
    """Generate an hour's trades: `counts[0]` uniform times (a Poisson process given its count), and
    `counts[1]` of them followed by a same-ms copy (identical for about half, another qty for the rest)."""
    tape = Tape(hour, first_id)
    base, copies = counts
    if base == 0:
        return tape
    start, end = max(hour * HOUR_MS, listed_ms), (hour + 1) * HOUR_MS
    rng = random.Random(hash_of(spec.key, 5, hour))
    draw = rng.random
    stamps = sorted(start + int(draw() * (end - start)) for _ in range(base))
    copied = set(rng.sample(range(base), copies))
    times, prices, qtys, sides = tape.times.append, tape.prices.append, tape.qtys.append, tape.sides.append
    scale = 10**spec.quantity_precision / spec.tick
    second, fair = -1, 0
    for index, ms in enumerate(stamps):
        if ms // SECOND_MS != second:
            second, fair = ms // SECOND_MS, path_ticks(spec, ms)
        price = max(1, fair + int(draw() * 5) - 2)
        qty = max(1, round(5.0 * 10_000.0 ** draw() / price * scale))  # 5 .. 50,000 USDT, log-uniform
        side = 1 if draw() < 0.5 else 0
        for copy in range(2 if index in copied else 1):
            times(ms)
            prices(price)
            qtys(qty + (copy if index % 2 else 0))
            sides(side)
    return tape


class TapeCache:
    """A thread-safe LRU of generated tapes, keyed by everything that determines them.

    Tapes are pure functions of their key, so one process-wide cache serves every Market with the same seed:
    each test's fresh Simulator reuses the hours an earlier one generated.
    """

    def __init__(self, size: int = 512, max_trades: int = 4_000_000) -> None:
        self._size, self._max_trades = size, max_trades  # ~25 bytes a trade: about 100 MB at most
        self._lock = Lock()
        self._tapes: OrderedDict[Hashable, Tape] = OrderedDict()

    def get(self, key: Hashable, build: Callable[[], Tape]) -> Tape:
        with self._lock:
            tape = self._tapes.get(key)
            if tape is not None:
                self._tapes.move_to_end(key)
                return tape
        tape = build()  # outside the lock: an hour at 10/s takes tens of milliseconds
        with self._lock:
            self._tapes[key] = tape
            while len(self._tapes) > 1 and (
                len(self._tapes) > self._size
                or sum(len(t.times) for t in self._tapes.values()) > self._max_trades
            ):
                self._tapes.popitem(last=False)
        return tape
