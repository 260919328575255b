"""Per-topic push state: what the next frame of each topic is and when it is due. No sockets here."""

from __future__ import annotations

import random
import weakref
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from simulator import ws_topics as wt
from simulator.book_live import LiveBook
from simulator.intervals import floor_open

if TYPE_CHECKING:
    from simulator.market import Market

FAST_SYMBOLS = ("BTC-USDT", "ETH-USDT")  # BingX pushes their books every 200 ms, others slower (§20, §21)
INCR_LEVELS = 1000  # the `all` snapshot depth (§21: docs 1,000, capture up to 1,024)
# Base push periods (ms) at rate 1.0; the book channels use (fast, slow) by symbol.
PERIODS_MS: dict[str, int | tuple[int, int]] = {
    "trade": 100,
    "kline": 500,
    "depth": (200, 500),
    "incrDepth": (200, 500),
    "ticker": 1000,
    "bookTicker": 500,
    "markPrice": 1000,
    "lastPrice": 100,
}


# Per market and symbol: the last incrDepth id issued, so a feed made for a later subscriber continues it.
_ISSUED: weakref.WeakKeyDictionary[Market, dict[str, int]] = weakref.WeakKeyDictionary()


@dataclass
class FeedOptions:
    rate: float = 1.0  # push cadence multiplier: 2.0 pushes twice as often
    incr_id_skip_max: int = 9  # incrDepth ids after the first update step forward by 1..this (§21 PROBE)
    kline_final_update: bool = (
        True  # push a bar's final state when the next bar opens (BingX: not guaranteed)
    )
    seed: int = 0
    # The live ticker's rolling window. BingX's is 24 h, but that costs a day of trades per symbol on first
    # use (~0.4 s each at 2 trades/s); one hour needs only the tapes the other feeds generate anyway.
    ticker_window_ms: int = 3_600_000


@dataclass
class Feed:
    """One topic's producer; `tick` returns the messages due now, shared by every subscriber."""

    topic: wt.Topic
    market: Market
    options: FeedOptions
    period_ms: float = 0.0
    due_ms: float = 0.0
    started_ms: int = 0
    state: dict[str, object] = field(default_factory=dict)
    warm: bool = False  # built once: its market data is cached, so the next builds are cheap

    def __post_init__(self) -> None:
        base = PERIODS_MS[self.topic.channel]
        if isinstance(base, tuple):
            base = base[0] if self.topic.symbol in FAST_SYMBOLS else base[1]
        self.period_ms = base / self.options.rate

    def start(self, now_ms: int) -> None:
        self.started_ms = now_ms
        self.due_ms = now_ms + self.period_ms

    def is_due(self, now_ms: int) -> bool:
        return now_ms >= self.due_ms

    def tick(self, now_ms: int) -> list[wt.Message]:
        self.due_ms = max(self.due_ms + self.period_ms, now_ms)
        return self.build(now_ms)

    def build(self, now_ms: int) -> list[wt.Message]:
        raise NotImplementedError

    def snapshot(self, now_ms: int) -> wt.Message | None:
        """The frame a new subscriber gets right after its ack (incrDepth's `all`); None elsewhere."""
        return None


class TradeFeed(Feed):
    def start(self, now_ms: int) -> None:
        super().start(now_ms)
        self.state["since"] = now_ms

    def build(self, now_ms: int) -> list[wt.Message]:
        # Consecutive [since, now) windows, so the stream is exactly market.trades over the subscription.
        since = int(self.state["since"])  # type: ignore[call-overload]
        trades = self.market.trades(self.topic.symbol, since, now_ms)
        self.state["since"] = now_ms
        self.state["window"] = (since, now_ms)
        return [wt.trade_message(self.topic, trades)] if trades else []


class KlineFeed(Feed):
    def build(self, now_ms: int) -> list[wt.Message]:
        symbol, interval = self.topic.symbol, self.topic.interval
        bars = self.market.klines(symbol, interval, floor_open(interval, now_ms), now_ms + 1, as_of_ms=now_ms)
        if not bars:
            return []
        current, messages = bars[-1], []
        previous = self.state.get("open")
        if isinstance(previous, int) and previous < current.open_ms and self.options.kline_final_update:
            final = self.market.klines(symbol, interval, previous, previous + 1, as_of_ms=now_ms)
            if final and final[-1] != self.state.get("bar"):
                messages.append(wt.kline_message(self.topic, final[-1]))
        if current != self.state.get("bar"):
            messages.append(wt.kline_message(self.topic, current))
        self.state["open"], self.state["bar"] = current.open_ms, current
        return messages


class DepthFeed(Feed):
    def build(self, now_ms: int) -> list[wt.Message]:
        bids, asks = self.market.book(self.topic.symbol, now_ms, self.topic.levels)
        return [wt.depth_message(self.topic, bids, asks, now_ms)]


class IncrDepthFeed(Feed):
    """`all` per new subscriber, then shared `update` diffs; ids skip forward like BingX's (§21)."""

    def start(self, now_ms: int) -> None:
        super().start(now_ms)
        self.rng = random.Random(self.options.seed * 1_000_003 + zlib.crc32(self.topic.symbol.encode()))
        self.next_id = 800_000_000 + self.rng.randrange(100_000_000)
        issued = _ISSUED.setdefault(self.market, {})
        if self.topic.symbol in issued:  # a new subscriber after a gap: BingX's ids never go back
            self.next_id = issued[self.topic.symbol] + 2
        self.live: LiveBook | None = None  # built off the loop, on first use
        self.withhold = 0  # fault: updates to compute but not send (a real loss)
        self.repeat = 0  # fault: updates to send twice (the second has id == last)
        self.withheld: list[int] = []
        self.withhold_top = (
            0  # fault: withhold the next updates that change a best-5 level (a loss that shows)
        )
        self.backward = 0  # fault: send an update after the next one (its id steps back)
        self.cross = 0  # fault: send an extra update whose bid is at the best ask (a crossed book)
        self._held: wt.Message | None = None

    def _book(self, now_ms: int) -> LiveBook:
        if self.live is None:
            self.live = LiveBook(self.market.spec(self.topic.symbol), now_ms, INCR_LEVELS)
        return self.live

    def snapshot(self, now_ms: int) -> wt.Message:
        bids, asks = self._book(now_ms).sides()
        return wt.incr_depth_message(self.topic, "all", self.next_id - 1, now_ms, bids, asks)

    def build(self, now_ms: int) -> list[wt.Message]:
        if self.live is None:
            self._book(now_ms)
            return []
        bids, asks = self.live.advance(now_ms)  # both sides descending: `update` asks are worst first
        if not bids and not asks:
            return []  # quiet books go silent; BingX never sends an empty update
        update_id = self._take_id()
        message = wt.incr_depth_message(self.topic, "update", update_id, now_ms, bids, asks)
        if self.withhold > 0 or (self.withhold_top > 0 and self._touches_top(bids, asks)):
            if self.withhold > 0:
                self.withhold -= 1
            else:
                self.withhold_top -= 1
            self.withheld.append(update_id)
            return []
        if self.repeat > 0:
            self.repeat -= 1
            return [message, message]
        return self._faulted(message, now_ms)

    def _take_id(self) -> int:
        update_id = self.next_id
        self.next_id += self.rng.randint(1, max(1, self.options.incr_id_skip_max))
        _ISSUED.setdefault(self.market, {})[self.topic.symbol] = update_id
        return update_id

    def _faulted(self, message: wt.Message, now_ms: int) -> list[wt.Message]:
        """Apply the reorder and crossing faults to one real update."""
        if self._held is not None:
            held, self._held = self._held, None
            return [message, held]  # the held update's id is lower: a step back
        if self.backward > 0:
            self.backward -= 1
            self._held = message
            return []
        if self.cross > 0 and self.live is not None:
            self.cross -= 1
            _, asks = self.live.sides()
            price, qty = asks[0]  # the best ask (after this update) also becomes a bid: crossed
            fake = wt.incr_depth_message(self.topic, "update", self._take_id(), now_ms, [(price, qty)], [])
            return [message, fake]  # the real update first, then the crossing one, ids increasing
        return [message]

    def _touches_top(self, bids: wt.Levels, asks: wt.Levels) -> bool:
        assert self.live is not None
        best_bids, best_asks = self.live.sides()
        top = {price for price, _ in best_bids[:5]} | {price for price, _ in best_asks[:5]}
        return any(price in top for price, _ in (*bids, *asks))


class TickerFeed(Feed):
    def build(self, now_ms: int) -> list[wt.Message]:
        return [wt.ticker_message(self.topic, now_ms, self.market, self.options.ticker_window_ms)]


class BookTickerFeed(Feed):
    def build(self, now_ms: int) -> list[wt.Message]:
        update_id = int(self.state.get("u", 300_000_000 + zlib.crc32(self.topic.symbol.encode()) % 10**7)) + 1  # type: ignore[call-overload]
        self.state["u"] = update_id
        return [wt.book_ticker_message(self.topic, update_id, now_ms, self.market)]


class MarkPriceFeed(Feed):
    def build(self, now_ms: int) -> list[wt.Message]:
        return [wt.mark_price_message(self.topic, now_ms, self.market)]


class LastPriceFeed(Feed):
    def build(self, now_ms: int) -> list[wt.Message]:
        price = self.market.last_price(self.topic.symbol, now_ms)
        if price == self.state.get("price"):
            return []  # realtime channel: pushes on change only
        self.state["price"] = price
        return [wt.last_price_message(self.topic, now_ms, price)]


FEEDS: dict[str, type[Feed]] = {
    "trade": TradeFeed,
    "kline": KlineFeed,
    "depth": DepthFeed,
    "incrDepth": IncrDepthFeed,
    "ticker": TickerFeed,
    "bookTicker": BookTickerFeed,
    "markPrice": MarkPriceFeed,
    "lastPrice": LastPriceFeed,
}


def feed_for(topic: wt.Topic, market: Market, options: FeedOptions, now_ms: int) -> Feed:
    """Create and start the producer of one topic."""
    feed = FEEDS[topic.channel](topic, market, options)
    feed.start(now_ms)
    return feed
