"""Order books: partial snapshots (stream and REST) and incremental updates, both sides sorted best first.

BingX's field names stop here; tests/payloads/ws_depth5.json, ws_incr_depth_*.json and rest_depth.json pin
them (BINGX_API.md §4, §20, §21). Ask order differs between sources (§27.3), so every side is sorted here.
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
    time_ms,
)

_SNAPSHOT_FIELDS = {"bids": "levels", "asks": "levels"}
_UPDATE_FIELDS = {
    "action": "text",
    "lastUpdateId": "integer",
    "time": "time",
    "bids": "levels",
    "asks": "levels",
}
_REST_FIELDS = {"T": "time", "bids": "levels", "asks": "levels"}
_ACTIONS = frozenset(("all", "update"))
DEFAULT_REST_LIMIT = 20  # BingX's default for /v2/quote/depth


def _one(data: Any, where: str) -> list[Any]:
    # a depth payload is one book: its `data` object, or none
    return [] if data is None else [data]


def _snapshot_rows(found: list[Any], message: Message, symbol: str, channel: str) -> list[Row]:
    # `<SYMBOL>@depth<N>[@<ms>]`: one snapshot row; N comes from the topic, the time from `ts`
    if not found:
        return []
    (data,) = found
    levels = int(channel[5:].partition("@")[0])
    # `ts` sits outside `data`; AISKILLS claims a `data.T` instead (contradicted, but cheap to accept)
    ms = message.get("ts") or data.get("T")
    if ms is None or ms == "":
        raise ConversionError("field 'ts' is missing")
    return [_snapshot(data.get("s") or symbol, time_ms(ms), levels, data["bids"], data["asks"])]


def _snapshot_rest_rows(found: list[Any], envelope: Message, query: Mapping[str, Any]) -> list[Row]:
    # /v2/quote/depth: the level count is the query's `limit` (BingX's default is 20)
    if not found:
        return []
    (data,) = found
    levels = int(query.get("limit") or DEFAULT_REST_LIMIT)
    return [_snapshot(str(query["symbol"]), time_ms(data["T"]), levels, data["bids"], data["asks"])]


def _update_rows(found: list[Any], message: Message, symbol: str, channel: str) -> list[Row]:
    # `<SYMBOL>@incrDepth`: the first frame is the snapshot ("all"), then diffs ("update")
    if not found:
        return []
    (data,) = found
    action = data["action"]
    if action not in _ACTIONS:
        raise ConversionError(f"field 'action' is {action!r}, expected 'all' or 'update'")
    bid_prices, bid_qtys = _side(data["bids"], True)
    ask_prices, ask_qtys = _side(data["asks"], False)
    return [
        {
            "symbol": data.get("s") or symbol,
            "event_time": time_ms(data["time"]),
            "update_id": int(data["lastUpdateId"]),
            "action": action,
            "bid_prices": bid_prices,
            "bid_qtys": bid_qtys,  # a quantity of 0 deletes the level
            "ask_prices": ask_prices,
            "ask_qtys": ask_qtys,
        }
    ]


def _snapshot(symbol: str, event_time: Any, levels: int, bids: Any, asks: Any) -> Row:
    bid_prices, bid_qtys = _side(bids, True)
    ask_prices, ask_qtys = _side(asks, False)
    return {
        "symbol": symbol,
        "event_time": event_time,
        "levels": levels,
        "bid_prices": bid_prices,
        "bid_qtys": bid_qtys,
        "ask_prices": ask_prices,
        "ask_qtys": ask_qtys,
    }


def _side(levels: Any, descending: bool) -> tuple[list[float], list[float]]:
    """Parse [[price, qty], ...] and order it best first: bids descending, asks ascending."""
    if not isinstance(levels, list):
        raise TypeError(f"a book side must be an array of [price, qty], got {type(levels).__name__}")
    prices = [float(price) for price, _ in levels]
    qtys = [float(qty) for _, qty in levels]
    # Hot path (a depth frame per symbol twice a second): a side comes in one order or the other, so sorting
    # the prices (one pass for timsort) and comparing in C beats sorting (price, qty) tuples.
    ordered = sorted(prices, reverse=descending)
    if len(set(prices)) == len(prices):  # no equal prices: the qty never decides the order
        if ordered == prices:
            return prices, qtys
        if ordered == prices[::-1]:
            return ordered, qtys[::-1]
    pairs = sorted(zip(prices, qtys, strict=True), reverse=descending)
    return [pair[0] for pair in pairs], [pair[1] for pair in pairs]


def _book_fields(*head: pa.Field) -> tuple[pa.Field, ...]:
    side = pa.list_(AMOUNT)
    return (
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("event_time", MS, nullable=False),
        *head,
        *(
            pa.field(name, side, nullable=False)
            for name in ("bid_prices", "bid_qtys", "ask_prices", "ask_qtys")
        ),
    )


DEPTH_SNAPSHOTS = Dataset(
    name="depth_snapshots",
    fields=_book_fields(pa.field("levels", pa.int16(), nullable=False)),
    key=("symbol", "event_time", "received_at"),  # no update id; identical books are re-sent when idle
    event_time="event_time",
    description="Top-N order book snapshots (N = levels), both sides best first.",
    channel=re.compile(r"depth(5|10|20|50|100)(@\d+ms)?"),
    rest_path="/openApi/swap/v2/quote/depth",
    paging="per_symbol",
    rest_params=(("limit", 20),),
    default_channel="depth20@500ms",
    alias="depth",
    stream=Converter(_snapshot_rows, _SNAPSHOT_FIELDS, find=_one),
    rest=Converter(_snapshot_rest_rows, _REST_FIELDS, find=_one, query=("symbol",)),
)

BOOK_UPDATES = Dataset(
    name="book_updates",
    fields=_book_fields(
        pa.field("update_id", pa.int64(), nullable=False),
        pa.field("action", pa.string(), nullable=False),  # "all" (snapshot) or "update" (diff)
    ),
    key=("symbol", "update_id"),
    event_time="event_time",
    description="Incremental book: one full snapshot, then diffs (qty 0 deletes a level); ids skip forward.",
    channel=re.compile(r"incrDepth"),
    default_channel="incrDepth",
    stream=Converter(_update_rows, _UPDATE_FIELDS, find=_one),
)

snapshot_from_stream = DEPTH_SNAPSHOTS.convert_stream
snapshot_from_rest = DEPTH_SNAPSHOTS.convert_rest
update_from_stream = BOOK_UPDATES.convert_stream
