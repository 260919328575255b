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
    SHAPE_ERRORS,
    Dataset,
    Message,
    Row,
    envelope_data,
    explain,
    items,
    time_ms,
    topic_parts,
)


def mark_from_stream(message: Message) -> list[Row]:
    """Convert a `<SYMBOL>@markPrice` frame: event time `E`, mark price `p`."""
    return _from_stream("mark_prices stream", message, "mark_price", "p")


def last_from_stream(message: Message) -> list[Row]:
    """Convert a `<SYMBOL>@lastPrice` frame: event time `E`, last price `c`."""
    return _from_stream("last_prices stream", message, "last_price", "c")


def _from_stream(where: str, message: Message, column: str, name: str) -> list[Row]:
    symbol, _ = topic_parts(message, where)
    updates = items(message.get("data"), where)
    try:
        return [
            {"symbol": u.get("s") or symbol, "event_time": time_ms(u["E"]), column: float(u[name])}
            for u in updates
        ]
    except SHAPE_ERRORS as error:
        raise explain(where, updates, {"E": "time", name: "decimal"}, error) from None


def last_from_rest(envelope: Message, query: Mapping[str, Any]) -> list[Row]:
    """Convert /v1/ticker/price (object with `symbol`, array without): matching-engine `time`, `price`."""
    where = "last_prices rest"
    prices = items(envelope_data(envelope, where), where)
    try:
        return [
            {
                "symbol": str(p["symbol"]),
                "event_time": time_ms(p["time"]),
                "last_price": float(p["price"]),
            }
            for p in prices
        ]
    except SHAPE_ERRORS as error:
        raise explain(where, prices, {"symbol": "text", "time": "time", "price": "decimal"}, error) from None


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
    from_stream=mark_from_stream,
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
    from_stream=last_from_stream,
    from_rest=last_from_rest,
)
