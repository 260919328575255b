"""Single-price streams: mark price (stream only) and last price (stream, or REST polls).

BingX's field names stop here; tests/payloads/ws_mark_price.json, ws_last_price.json and rest_price.json
pin them (BINGX_API.md §14, §23).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from schemas.dataset import (
    AMOUNT,
    MS,
    Converter,
    Dataset,
    Message,
    Row,
    time_ms,
)


def _mark_rows(updates: list[Any], message: Message, symbol: str, channel: str) -> list[Row]:
    # `<SYMBOL>@markPrice`: event time `E`, mark price `p`
    return _price_rows(updates, symbol, "mark_price", "p")


def _last_rows(updates: list[Any], message: Message, symbol: str, channel: str) -> list[Row]:
    # `<SYMBOL>@lastPrice`: event time `E`, last price `c`
    return _price_rows(updates, symbol, "last_price", "c")


def _price_rows(updates: list[Any], symbol: str, column: str, name: str) -> list[Row]:
    return [
        {"symbol": u.get("s") or symbol, "event_time": time_ms(u["E"]), column: float(u[name])}
        for u in updates
    ]


def _last_rest_rows(prices: list[Any], envelope: Message, query: Mapping[str, Any]) -> list[Row]:
    # /v1/ticker/price (an object with `symbol`, an array without): matching-engine `time`, `price`
    return [
        {"symbol": str(p["symbol"]), "event_time": time_ms(p["time"]), "last_price": float(p["price"])}
        for p in prices
    ]


def _fields(column: str) -> tuple[pa.Field, ...]:
    return (
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("event_time", MS, nullable=False),
        pa.field(column, AMOUNT, nullable=False),
    )


MARK_PRICES = Dataset(
    name="mark_prices",
    fields=_fields("mark_price"),
    key=("symbol", "event_time"),
    event_time="event_time",
    description="Mark price pushes (~1/s); index price and funding come from premium_index polls.",
    channel=re.compile(r"markPrice"),
    default_channel="markPrice",
    stream=Converter(_mark_rows, {"E": "time", "p": "decimal"}),
)

LAST_PRICES = Dataset(
    name="last_prices",
    fields=_fields("last_price"),
    key=("symbol", "event_time"),
    event_time="event_time",
    description="Last traded price pushes, or polled from REST with the matching engine's time.",
    channel=re.compile(r"lastPrice"),
    rest_path="/openApi/swap/v1/ticker/price",
    paging="all",
    default_channel="lastPrice",
    alias="prices",
    stream=Converter(_last_rows, {"E": "time", "c": "decimal"}),
    rest=Converter(_last_rest_rows, {"symbol": "text", "time": "time", "price": "decimal"}),
)

mark_from_stream = MARK_PRICES.convert_stream
last_from_stream = LAST_PRICES.convert_stream
last_from_rest = LAST_PRICES.convert_rest
