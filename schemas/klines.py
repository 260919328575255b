"""Candles (trade and mark price): one row per (symbol, interval, open_time).

BingX's field names stop here; tests/payloads/ws_kline_1m.json, rest_klines.json and rest_mark_klines.json
pin them (BINGX_API.md §8, §9, §19).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from schemas.dataset import (
    AMOUNT,
    INTERVALS,
    MS,
    ConversionError,
    Converter,
    Dataset,
    Message,
    Row,
    time_ms,
)

_STREAM_FIELDS = {"T": "time", "o": "decimal", "h": "decimal", "l": "decimal", "c": "decimal", "v": "decimal"}
_REST_FIELDS = {
    "open": "decimal",
    "high": "decimal",
    "low": "decimal",
    "close": "decimal",
    "volume": "decimal",
}

# The stream has no closed flag: a stream bar is final once a later bar of its series exists (§19).
IS_FINAL = (
    "(source <> 'stream' OR open_time < max(open_time) OVER (PARTITION BY symbol, \"interval\")) AS is_final"
)


def _stream_rows(bars: list[Any], message: Message, symbol: str, channel: str) -> list[Row]:
    # a `<SYMBOL>@kline_<interval>` frame: symbol at top level as `s`, bars in `data`
    interval = channel.removeprefix("kline_")
    symbol = message.get("s") or symbol
    return [
        _row(bar.get("s") or symbol, interval, bar["T"], bar["o"], bar["h"], bar["l"], bar["c"], bar["v"])
        for bar in bars
    ]


def _rest_rows(bars: list[Any], envelope: Message, query: Mapping[str, Any]) -> list[Row]:
    # /v3/quote/klines: the items repeat neither symbol nor interval, so the query supplies them
    return _rest_bars(bars, query, "time", "openTime")


def _mark_rest_rows(bars: list[Any], envelope: Message, query: Mapping[str, Any]) -> list[Row]:
    # /v1/market/markPriceKlines: the open time is `openTime` (docs) or `time` (AISKILLS)
    return _rest_bars(bars, query, "openTime", "time")


def _rest_bars(bars: list[Any], query: Mapping[str, Any], first: str, second: str) -> list[Row]:
    # The legacy v2 endpoint returned one object without a time range; items() accepts that too.
    symbol, interval = str(query["symbol"]), str(query["interval"])
    return [
        _row(symbol, interval, _open_ms(bar, first, second), *(bar[name] for name in _REST_FIELDS))
        for bar in bars
    ]


def _open_ms(bar: Mapping[str, Any], first: str, second: str) -> Any:
    value = bar.get(first)
    if value is None or value == "":
        value = bar.get(second)
        if value is None or value == "":
            raise ConversionError(f"field {first!r} (or {second!r}) is missing")
    return value


def _row(symbol: str, interval: str, open_ms: Any, o: Any, h: Any, low: Any, c: Any, v: Any) -> Row:
    return {
        "symbol": symbol,
        "interval": interval,
        "open_time": time_ms(open_ms),
        "open": float(o),
        "high": float(h),
        "low": float(low),
        "close": float(c),
        "volume": float(v),
    }


def _fields() -> tuple[pa.Field, ...]:
    return (
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("interval", pa.string(), nullable=False),
        pa.field("open_time", MS, nullable=False),
        *(pa.field(column, AMOUNT, nullable=False) for column in ("open", "high", "low", "close", "volume")),
    )


KLINES = Dataset(
    name="klines",
    fields=_fields(),
    key=("symbol", "interval", "open_time"),
    event_time="open_time",
    description="Trade-price candles per interval; the view's is_final says whether a bar can still change.",
    channel=re.compile("kline_(" + "|".join(INTERVALS) + ")"),
    rest_path="/openApi/swap/v3/quote/klines",
    paging="time",
    default_channel="kline_1m",
    stream=Converter(_stream_rows, _STREAM_FIELDS),
    rest=Converter(_rest_rows, _REST_FIELDS, query=("symbol", "interval")),
    partitions=("symbol", "interval"),
    view_columns=(IS_FINAL,),
)

MARK_KLINES = Dataset(
    name="mark_klines",
    fields=_fields(),
    key=("symbol", "interval", "open_time"),
    event_time="open_time",
    description="Mark-price candles per interval (REST history only; no stream topic).",
    rest_path="/openApi/swap/v1/market/markPriceKlines",
    paging="time",
    alias="mark-klines",
    rest=Converter(_mark_rest_rows, _REST_FIELDS, query=("symbol", "interval")),
    partitions=("symbol", "interval"),
    view_columns=(IS_FINAL,),
)

from_stream = KLINES.convert_stream
from_rest = KLINES.convert_rest
mark_from_rest = MARK_KLINES.convert_rest
