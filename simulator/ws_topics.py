"""Public swap topics: names, validation and the exact message shapes of BINGX_API.md §18–24.

Pure: builds dicts from a Market, never touches a socket. BingX's field names live here on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from simulator.intervals import INTERVALS

if TYPE_CHECKING:
    from simulator.market import Bar, Market, Trade

Message = dict[str, Any]
Levels = list[tuple[str, str]]

DEPTH_LEVELS = (5, 10, 20, 50, 100)
DEPTH_SPEEDS = ("100ms", "200ms", "500ms", "1000ms")
SIMPLE_CHANNELS = ("trade", "incrDepth", "ticker", "bookTicker", "markPrice", "lastPrice")


@dataclass(frozen=True)
class Topic:
    name: str  # the dataType exactly as subscribed, e.g. "BTC-USDT@depth20@500ms"
    symbol: str
    channel: str  # trade | kline | depth | incrDepth | ticker | bookTicker | markPrice | lastPrice
    interval: str = ""  # kline interval
    levels: int = 0  # depth levels


def parse_topic(name: str, market: Market) -> Topic | None:
    """Return the Topic for a dataType, or None where BingX answers 80015 (§17 error ack)."""
    symbol, _, rest = name.partition("@")
    if symbol not in market.symbols or not rest or market.is_paused(symbol):
        return None  # unknown or lower-case symbol
    if rest in SIMPLE_CHANNELS:
        return Topic(name, symbol, rest)
    if rest.startswith("kline_") and rest.removeprefix("kline_") in INTERVALS:
        return Topic(name, symbol, "kline", interval=rest.removeprefix("kline_"))
    if rest.startswith("depth"):
        level, _, speed = rest.removeprefix("depth").partition("@")
        if level.isdigit() and int(level) in DEPTH_LEVELS and (not speed or speed in DEPTH_SPEEDS):
            return Topic(name, symbol, "depth", levels=int(level))
    return None


def trade_message(topic: Topic, trades: list[Trade]) -> Message:
    """§18: an array newest first, no ids; equal-looking fills stay separate."""
    newest_first = sorted(trades, key=lambda trade: (trade.time_ms, trade.id), reverse=True)
    data = [
        {"q": t.qty, "p": t.price, "T": t.time_ms, "m": t.is_buyer_maker, "s": topic.symbol}
        for t in newest_first
    ]
    return {"code": 0, "dataType": topic.name, "data": data}


def kline_message(topic: Topic, bar: Bar) -> Message:
    """§19: symbol at top level, T is the bar's open time, no closed flag."""
    item = {"c": bar.close, "o": bar.open, "h": bar.high, "l": bar.low, "v": bar.volume, "T": bar.open_ms}
    return {"code": 0, "dataType": topic.name, "s": topic.symbol, "data": [item]}


def depth_message(topic: Topic, bids: Levels, asks: Levels, now_ms: int) -> Message:
    """§20: ts at top level; bids descending; asks DESCENDING too (best ask last)."""
    data = {"bids": [list(level) for level in bids], "asks": [list(level) for level in reversed(asks)]}
    return {"code": 0, "dataType": topic.name, "ts": now_ms, "data": data}


def incr_depth_message(
    topic: Topic, action: str, update_id: int, now_ms: int, bids: Levels, asks: Levels
) -> Message:
    """§21: `all` has asks ascending, `update` asks descending (worst first); the caller orders them."""
    data = {
        "action": action,
        "lastUpdateId": update_id,
        "time": now_ms,
        "bids": [list(level) for level in bids],
        "asks": [list(level) for level in asks],
    }
    return {"code": 0, "dataType": topic.name, "data": data}


def book_diff(old: dict[str, str], new: dict[str, str], descending: bool) -> Levels:
    """Levels that changed between two books of one side; removed levels get a zero qty like "0.0000"."""
    changed = [(price, qty) for price, qty in new.items() if old.get(price) != qty]
    changed += [(price, _zero_like(qty)) for price, qty in old.items() if price not in new]
    return sorted(changed, key=lambda level: Decimal(level[0]), reverse=descending)


def _zero_like(qty: str) -> str:
    decimals = len(qty.partition(".")[2])
    return "0." + "0" * decimals if decimals else "0"


def book_ticker_message(topic: Topic, update_id: int, now_ms: int, market: Market) -> Message:
    """§24: u, E, T (match time), best bid/ask as strings."""
    bids, asks = market.book(topic.symbol, now_ms, 1)
    data = {
        "e": "bookTicker",
        "u": update_id,
        "E": now_ms,
        "T": now_ms - 3,
        "s": topic.symbol,
        "b": bids[0][0],
        "B": bids[0][1],
        "a": asks[0][0],
        "A": asks[0][1],
    }
    return {"code": 0, "dataType": topic.name, "data": data}


def mark_price_message(topic: Topic, now_ms: int, market: Market) -> Message:
    data = {
        "e": "markPriceUpdate",
        "E": now_ms,
        "s": topic.symbol,
        "p": market.mark_price(topic.symbol, now_ms),
    }
    return {"code": 0, "dataType": topic.name, "data": data}


def last_price_message(topic: Topic, now_ms: int, price: str) -> Message:
    data = {"e": "lastPriceUpdate", "E": now_ms, "s": topic.symbol, "c": price}
    return {"code": 0, "dataType": topic.name, "data": data}


def ticker_message(topic: Topic, now_ms: int, market: Market, window_ms: int) -> Message:
    """§22: rolling statistics (BingX: 24 h) plus the current best bid/ask."""
    stats = market.ticker(topic.symbol, now_ms, window_ms)
    bids, asks = market.book(topic.symbol, now_ms, 1)
    data = {
        "e": "24hTicker",
        "E": now_ms,
        "s": topic.symbol,
        "p": stats.change,
        "P": stats.change_percent,
        "c": stats.last,
        "L": stats.last_qty,
        "h": stats.high,
        "l": stats.low,
        "v": stats.volume,
        "q": stats.quote_volume,
        "o": stats.open,
        "O": stats.first_ms,
        "C": stats.last_ms,
        "A": asks[0][0],
        "a": asks[0][1],
        "B": bids[0][0],
        "b": bids[0][1],
    }
    return {"code": 0, "dataType": topic.name, "data": data}


def unknown_topic_message(symbol: str) -> Message:
    """A data frame for a topic nobody subscribed to (garbage kind `unknown_datatype`)."""
    return {"code": 0, "dataType": f"{symbol}@nope", "data": {"x": 1}}
