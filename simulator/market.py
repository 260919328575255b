"""The seeded market behind both simulator servers: any past window is computed on demand, never stored.

Times are epoch ms; every `as_of`/`end` bound is exclusive. Prices are strings with the contract's precision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from simulator import book as _book
from simulator.history import History
from simulator.intervals import INTERVALS, floor_open, next_open, opens
from simulator.prices import (
    DAY_MS,
    HOUR_MS,
    Spec,
    format_units,
    funding_rate,
    hash_of,
    index_ticks,
    mark_ticks,
    path_ticks,
    spec_for,
    unit,
)
from simulator.records import Bar, Ticker, Trade, contract_row
from simulator.tape import Agg, Tape

__all__ = ["LISTED_MS", "Bar", "Market", "Ticker", "Trade"]

LISTED_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC: every contract is listed then unless told otherwise
MINUTE_MS = 60_000
_MARK_SAMPLES = 60  # mark bars sample the mark price this many times per bar (at least once a second)


class Market:
    """Deterministic prices, trades, bars, funding, book and open interest for a few perpetual contracts."""

    def __init__(
        self,
        symbols: Sequence[str] = ("BTC-USDT", "ETH-USDT"),
        seed: int = 0,
        trades_per_second: float = 2.0,
        listed_ms: int = LISTED_MS,
    ) -> None:
        self.symbols = tuple(symbols)
        self.seed = seed
        self.trades_per_second = trades_per_second
        self.listed_ms = listed_ms
        self.paused: set[str] = set()  # status 25: refused by REST (109415) and WS (80015)
        self._specs = {symbol: spec_for(seed, symbol, i) for i, symbol in enumerate(self.symbols)}
        self._histories = {s: History(spec, trades_per_second, listed_ms) for s, spec in self._specs.items()}

    # ---- contracts ----

    def spec(self, symbol: str) -> Spec:
        """Return the contract's constants; KeyError for a symbol the market does not list."""
        try:
            return self._specs[symbol]
        except KeyError:
            raise KeyError(
                f"{symbol} is not listed by this simulated market ({', '.join(self.symbols)})"
            ) from None

    def pause(self, symbol: str, paused: bool = True) -> None:
        """Switch a contract to status 25 (paused) or back to 1."""
        self.spec(symbol)
        (self.paused.add if paused else self.paused.discard)(symbol)

    def is_paused(self, symbol: str) -> bool:
        return symbol in self.paused

    def contract(self, symbol: str) -> dict[str, Any]:
        """Return the wire-shaped /openApi/swap/v2/quote/contracts row (BINGX_API §3)."""
        return contract_row(self.spec(symbol), self.listed_ms, symbol in self.paused)

    # ---- trades ----

    def trades(self, symbol: str, start_ms: int, end_ms: int) -> list[Trade]:
        """Return the trades with time in [start_ms, end_ms), ascending by id (= by time)."""
        result: list[Trade] = []
        for tape in self._history(symbol).hours(start_ms, end_ms):
            result.extend(self._slice(symbol, tape, *tape.span(start_ms, end_ms)))
        return result

    def trades_from_id(self, symbol: str, from_id: int, limit: int, end_ms: int) -> list[Trade]:
        """Return up to `limit` trades with id >= from_id and time < end_ms, ascending."""
        history = self._history(symbol)
        result: list[Trade] = []
        hour = history.first_hour_of_id(from_id)
        while len(result) < limit and hour * HOUR_MS < end_ms:
            if history.size(hour):
                tape = history.tape(hour)
                lo = max(0, from_id - tape.first_id)
                stop = min(len(tape.times), lo + limit - len(result), tape.span(0, end_ms)[1])
                result.extend(self._slice(symbol, tape, lo, stop))
            hour += 1
        return result

    def recent_trades(self, symbol: str, end_ms: int, limit: int) -> list[Trade]:
        """Return the last `limit` trades with time < end_ms, ascending."""
        chunks: list[list[Trade]] = []
        wanted = limit
        for tape in self._history(symbol).hours_back(end_ms):
            if wanted <= 0:
                break
            stop = tape.span(0, end_ms)[1]
            chunks.append(self._slice(symbol, tape, max(0, stop - wanted), stop))
            wanted -= len(chunks[-1])
        return [trade for chunk in reversed(chunks) for trade in chunk]

    def last_price(self, symbol: str, t_ms: int) -> str:
        """Return the price of the last trade before `t_ms` (the fair price at listing if none)."""
        return self._format(self.spec(symbol), self._last_ticks(symbol, t_ms))

    def prepare(self, symbol: str, t_ms: int) -> None:
        """Generate (and cache) the trades of the hour holding `t_ms` before anyone asks for them."""
        history = self._history(symbol)
        hour = t_ms // HOUR_MS
        if hour >= history.first_hour and history.size(hour):
            history.tape(hour)

    # ---- bars ----

    def klines(
        self, symbol: str, interval: str, start_ms: int, end_ms: int, as_of_ms: int | None = None
    ) -> list[Bar]:
        """Return trade bars with open in [start_ms, end_ms) built from trades with time < as_of_ms.

        A bar without trades repeats the previous close with volume "0"; a bar that has not opened before
        as_of_ms is absent, and so is every bar before the listing.
        """
        spec = self.spec(symbol)
        first, stop = self._bar_range(interval, start_ms, end_ms, as_of_ms)
        bars: list[Bar] = []
        previous: int | None = None
        for open_ms in opens(interval, first, stop):
            close_ms = next_open(interval, open_ms)
            agg = self.aggregate(symbol, open_ms, close_ms if as_of_ms is None else min(close_ms, as_of_ms))
            if agg is None:
                previous = self._last_ticks(symbol, open_ms) if previous is None else previous
                agg = Agg(previous, previous, previous, previous, 0, 0, 0)
            previous = agg.close
            bars.append(self._bar(spec, open_ms, agg))
        return bars

    def mark_klines(
        self, symbol: str, interval: str, start_ms: int, end_ms: int, as_of_ms: int | None = None
    ) -> list[Bar]:
        """Return mark-price bars like `klines`; OHLC from 60 samples per bar (each bar on its own)."""
        spec = self.spec(symbol)
        first, stop = self._bar_range(interval, start_ms, end_ms, as_of_ms)
        bars = []
        for open_ms in opens(interval, first, stop):
            close_ms = next_open(interval, open_ms)
            bound = close_ms if as_of_ms is None else min(close_ms, as_of_ms)
            step = max(1000, (close_ms - open_ms) // _MARK_SAMPLES)
            samples = [mark_ticks(spec, t) for t in range(open_ms, bound, step)] + [
                mark_ticks(spec, bound - 1)
            ]
            agg = Agg(samples[0], max(samples), min(samples), samples[-1], 0, 0, 0)
            bars.append(self._bar(spec, open_ms, agg))
        return bars

    def aggregate(self, symbol: str, start_ms: int, end_ms: int) -> Agg | None:
        """Aggregate the trades in [start_ms, end_ms) (None when there are none)."""
        return self._history(symbol).aggregate(start_ms, end_ms)

    def ticker(self, symbol: str, t_ms: int, window_ms: int = DAY_MS) -> Ticker:
        """Return the rolling statistics over [t_ms - window_ms, t_ms) (BingX: 24 h)."""
        spec = self.spec(symbol)
        agg = self.aggregate(symbol, t_ms - window_ms, t_ms)
        last = self.recent_trades(symbol, t_ms, 1)
        if agg is None:
            price = self._last_ticks(symbol, t_ms)
            agg = Agg(price, price, price, price, 0, 0, 0)
        change = agg.close - agg.open
        scale = spec.tick * 10**-spec.quantity_precision
        return Ticker(
            symbol=symbol,
            time_ms=t_ms,
            open=self._format(spec, agg.open),
            high=self._format(spec, agg.high),
            low=self._format(spec, agg.low),
            last=self._format(spec, agg.close),
            last_qty=last[0].qty if last else format_units(0, spec.quantity_precision),
            volume=format_units(agg.volume, spec.quantity_precision),
            quote_volume=f"{agg.quote * scale:.2f}",
            change=self._format(spec, change),
            change_percent=f"{change / agg.open * 100:.2f}",
            first_ms=t_ms - window_ms,
            last_ms=last[0].time_ms if last else t_ms,
        )

    # ---- funding, mark, index, book, open interest ----

    def funding_interval_hours(self, symbol: str) -> int:
        return self.spec(symbol).funding_interval_hours

    def funding(self, symbol: str, start_ms: int, end_ms: int) -> list[tuple[int, str]]:
        """Return the settlements (time_ms, rate) in [start_ms, end_ms) after the listing, ascending."""
        spec = self.spec(symbol)
        step = spec.funding_interval_hours * HOUR_MS
        first = max(start_ms, self.listed_ms + 1)
        return [(t, funding_rate(spec, t)) for t in range(-(-first // step) * step, end_ms, step)]

    def next_funding_ms(self, symbol: str, t_ms: int) -> int:
        """Return the first settlement instant strictly after `t_ms`."""
        step = self.funding_interval_hours(symbol) * HOUR_MS
        return (t_ms // step + 1) * step

    def estimated_funding_rate(self, symbol: str, t_ms: int) -> str:
        """Return the running estimate for the next settlement (premiumIndex lastFundingRate, PROBE)."""
        return funding_rate(self.spec(symbol), self.next_funding_ms(symbol, t_ms))

    def mark_price(self, symbol: str, t_ms: int) -> str:
        spec = self.spec(symbol)
        return self._format(spec, mark_ticks(spec, t_ms))

    def index_price(self, symbol: str, t_ms: int) -> str:
        spec = self.spec(symbol)
        return self._format(spec, index_ticks(spec, t_ms))

    def book(
        self, symbol: str, t_ms: int, levels: int
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Return (bids descending, asks ascending) of (price, qty) strings; changes every 100 ms."""
        return _book.book(self.spec(symbol), t_ms, levels)

    def open_interest(self, symbol: str, t_ms: int) -> str:
        """Return open interest in USDT value (CCXT's reading of BINGX_API §10), 2 decimals."""
        spec = self.spec(symbol)
        base = 10 ** (6 + 2 * unit(spec.key, 20))
        wave = 1 + 0.2 * math.sin(2 * math.pi * t_ms / (6 * HOUR_MS) + spec.phases[1])
        cents = round(base * wave * 100) + hash_of(spec.key, 21, t_ms // 1000) % 10_000
        return format_units(cents, 2)

    # ---- internals ----

    def _history(self, symbol: str) -> History:
        return self._histories[self.spec(symbol).symbol]

    def _slice(self, symbol: str, tape: Tape, lo: int, hi: int) -> list[Trade]:
        spec = self.spec(symbol)
        return [
            Trade(
                id=tape.first_id + i,
                time_ms=tape.times[i],
                price=format_units(tape.prices[i], spec.price_precision),
                qty=format_units(tape.qtys[i], spec.quantity_precision),
                is_buyer_maker=bool(tape.sides[i]),
            )
            for i in range(lo, hi)
        ]

    def _last_ticks(self, symbol: str, t_ms: int) -> int:
        for tape in self._history(symbol).hours_back(t_ms):
            stop = tape.span(0, t_ms)[1]
            if stop:
                return tape.prices[stop - 1]
        return path_ticks(self.spec(symbol), self.listed_ms)

    def _bar_range(self, interval: str, start_ms: int, end_ms: int, as_of_ms: int | None) -> tuple[int, int]:
        if interval not in INTERVALS:
            raise ValueError(f"unknown interval {interval!r}; expected one of {', '.join(INTERVALS)}")
        first = max(start_ms, floor_open(interval, self.listed_ms))
        return first, end_ms if as_of_ms is None else min(end_ms, as_of_ms)

    @staticmethod
    def _format(spec: Spec, ticks: int) -> str:
        return format_units(ticks, spec.price_precision)

    def _bar(self, spec: Spec, open_ms: int, agg: Agg) -> Bar:
        return Bar(
            open_ms,
            self._format(spec, agg.open),
            self._format(spec, agg.high),
            self._format(spec, agg.low),
            self._format(spec, agg.close),
            format_units(agg.volume, spec.quantity_precision),
        )
