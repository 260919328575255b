"""24 h tickers and best bid/ask, from the stream and from REST polls.

BingX's field names stop here; tests/payloads/ws_ticker.json, ws_book_ticker.json, rest_ticker.json and
rest_book_ticker.json pin them (BINGX_API.md §11, §13, §22, §24).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from schemas.dataset import (
    AMOUNT,
    MS,
    ConversionError,
    Converter,
    Dataset,
    Message,
    Row,
    amount,
    integer,
    items,
    ms_or_none,
    time_ms,
)

_AMOUNTS = (
    "price_change",
    "price_change_percent",
    "last_price",
    "last_qty",
    "open_price",
    "high_price",
    "low_price",
    "volume",
    "quote_volume",
    "ask_price",
    "ask_qty",
    "bid_price",
    "bid_qty",
)
# Wire names in the order of _AMOUNTS. Stream `q` changed magnitude in 2025 (§22): stored as sent.
_STREAM_NAMES = ("p", "P", "c", "L", "o", "h", "l", "v", "q", "A", "a", "B", "b")
_REST_NAMES = (
    "priceChange",
    "priceChangePercent",
    "lastPrice",
    "lastQty",
    "openPrice",
    "highPrice",
    "lowPrice",
    "volume",
    "quoteVolume",
    "askPrice",
    "askQty",
    "bidPrice",
    "bidQty",
)
_STREAM_FIELDS = {**{name: "decimal?" for name in _STREAM_NAMES}, "E": "time", "c": "decimal"}
_REST_FIELDS = {"symbol": "text", "openTime": "time?", "closeTime": "time?", "lastPrice": "decimal"}
_BOOK_STREAM_FIELDS = {"b": "decimal", "B": "decimal", "a": "decimal", "A": "decimal", "u": "integer?"}
_BOOK_REST_FIELDS = {
    "bid_price": "decimal",
    "bid_qty": "decimal",
    "ask_price": "decimal",
    "ask_qty": "decimal",
}


def _ticker_rows(tickers: list[Any], message: Message, symbol: str, channel: str) -> list[Row]:
    # `<SYMBOL>@ticker`: event time `E`, window trade times `O`/`C`
    return [
        _ticker(t.get("s") or symbol, time_ms(t["E"]), t.get("O"), t.get("C"), t, _STREAM_NAMES)
        for t in tickers
    ]


def _ticker_rest_rows(tickers: list[Any], envelope: Message, query: Mapping[str, Any]) -> list[Row]:
    # /v2/quote/ticker (an object with `symbol`, an array without). The snapshot has no event time: the
    # envelope's `timestamp` is used when present, else the later of `openTime`/`closeTime` (the window's
    # trade times; their order is inconsistent, §11).
    stamp = envelope.get("timestamp")
    return [
        _ticker(t["symbol"], _rest_time(stamp, t), t.get("openTime"), t.get("closeTime"), t, _REST_NAMES)
        for t in tickers
    ]


def _rest_time(stamp: Any, ticker: Mapping[str, Any]) -> Any:
    if stamp is not None and stamp != "":
        return time_ms(stamp)
    times = [
        time for time in (ms_or_none(ticker.get("openTime")), ms_or_none(ticker.get("closeTime"))) if time
    ]
    if not times:
        raise ConversionError("no event time: neither 'timestamp' nor 'openTime'/'closeTime' is present")
    return max(times)


def _ticker(
    symbol: str, event_time: Any, open_ms: Any, close_ms: Any, item: Any, names: tuple[str, ...]
) -> Row:
    row: Row = {"symbol": symbol, "event_time": event_time}
    for column, name in zip(_AMOUNTS, names, strict=True):
        row[column] = _percent(item.get(name)) if column == "price_change_percent" else amount(item.get(name))
    row["open_time"] = ms_or_none(open_ms)
    row["close_time"] = ms_or_none(close_ms)
    if row["last_price"] is None:
        raise ValueError("no last price")
    return row


def _percent(value: Any) -> float | None:
    # "4.15" as documented, or "0.31%" (a shape seen in third-party fixtures): the same number either way
    if isinstance(value, str) and value.rstrip().endswith("%"):
        return amount(value.rstrip()[:-1])
    return amount(value)


def _book_rows(books: list[Any], message: Message, symbol: str, channel: str) -> list[Row]:
    # `<SYMBOL>@bookTicker`. The first frame after subscribing can be stale (§24).
    return [
        {
            "symbol": b.get("s") or symbol,
            "event_time": ms_or_none(b.get("E")),
            "update_id": integer(b.get("u")),
            "trade_time": ms_or_none(b.get("T")),
            "bid_price": float(b["b"]),
            "bid_qty": float(b["B"]),
            "ask_price": float(b["a"]),
            "ask_qty": float(b["A"]),
        }
        for b in books
    ]


def _book_tickers(data: Any, where: str) -> list[Any]:
    # /v2/quote/bookTicker wraps each item in `book_ticker`
    return [
        item.get("book_ticker", item) if isinstance(item, Mapping) else item for item in items(data, where)
    ]


def _book_rest_rows(books: list[Any], envelope: Message, query: Mapping[str, Any]) -> list[Row]:
    # /v2/quote/bookTicker: snake_case with JSON numbers
    stamp = envelope.get("timestamp")
    return [
        {
            "symbol": b.get("symbol") or query["symbol"],
            "event_time": ms_or_none(b.get("time", stamp)),  # in the field table, absent from samples
            "update_id": integer(b.get("lastUpdateId")),
            "trade_time": None,
            "bid_price": float(b["bid_price"]),
            "bid_qty": float(b["bid_qty"]),
            "ask_price": float(b["ask_price"]),
            "ask_qty": float(b["ask_qty"]),
        }
        for b in books
    ]


TICKERS = Dataset(
    name="tickers",
    fields=(
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("event_time", MS, nullable=False),
        *(pa.field(column, AMOUNT, nullable=column != "last_price") for column in _AMOUNTS),
        pa.field("open_time", MS),  # the 24 h window's first trade (stream O, REST openTime)
        pa.field("close_time", MS),  # the window's last trade (stream C, REST closeTime)
    ),
    key=("symbol", "event_time"),
    event_time="event_time",
    description="Rolling 24 h statistics with top of book; quote_volume's unit changed in 2025 (as sent).",
    channel=re.compile(r"ticker"),
    rest_path="/openApi/swap/v2/quote/ticker",
    paging="all",
    default_channel="ticker",
    stream=Converter(_ticker_rows, _STREAM_FIELDS),
    rest=Converter(_ticker_rest_rows, _REST_FIELDS),
)

BOOK_TICKERS = Dataset(
    name="book_tickers",
    fields=(
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("event_time", MS),  # stream E; REST snapshots usually carry no time
        pa.field("update_id", pa.int64()),  # stream u; absent from REST samples
        pa.field("trade_time", MS),  # stream T (match time)
        *(
            pa.field(name, AMOUNT, nullable=False)
            for name in ("bid_price", "bid_qty", "ask_price", "ask_qty")
        ),
    ),
    # REST snapshots have no exchange time or id, so the one key both sources share is the receive time.
    key=("symbol", "received_at"),
    event_time="received_at",
    description="Best bid and ask with sizes; keyed by receive time because REST snapshots carry no time.",
    channel=re.compile(r"bookTicker"),
    rest_path="/openApi/swap/v2/quote/bookTicker",
    paging="per_symbol",
    default_channel="bookTicker",
    alias="book-tickers",
    stream=Converter(_book_rows, _BOOK_STREAM_FIELDS),
    rest=Converter(_book_rest_rows, _BOOK_REST_FIELDS, find=_book_tickers),
)

ticker_from_stream = TICKERS.convert_stream
ticker_from_rest = TICKERS.convert_rest
book_ticker_from_stream = BOOK_TICKERS.convert_stream
book_ticker_from_rest = BOOK_TICKERS.convert_rest
