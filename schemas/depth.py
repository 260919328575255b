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
    SHAPE_ERRORS,
    ConversionError,
    Dataset,
    Message,
    Row,
    envelope_data,
    explain,
    query_value,
    time_ms,
    topic_parts,
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


def snapshot_from_stream(message: Message) -> list[Row]:
    """Convert `<SYMBOL>@depth<N>[@<ms>]`: one snapshot row; N comes from the topic, the time from `ts`."""
    where = "depth_snapshots stream"
    symbol, channel = topic_parts(message, where)
    data = message.get("data")
    if data is None:
        return []
    try:
        levels = int(channel[5:].partition("@")[0])
        # `ts` sits outside `data`; AISKILLS claims a `data.T` instead (contradicted, but cheap to accept)
        ms = message.get("ts") or data.get("T")
        if ms is None or ms == "":
            raise ConversionError(f"{where}: field 'ts' is missing")
        return [_snapshot(data.get("s") or symbol, time_ms(ms), levels, data["bids"], data["asks"])]
    except SHAPE_ERRORS as error:
        raise explain(where, [data], _SNAPSHOT_FIELDS, error) from None


def snapshot_from_rest(envelope: Message, query: Mapping[str, Any]) -> list[Row]:
    """Convert /v2/quote/depth; the level count is the query's `limit` (BingX's default is 20)."""
    where = "depth_snapshots rest"
    symbol = query_value(query, "symbol", where)
    data = envelope_data(envelope, where)
    if data is None:
        return []
    try:
        levels = int(query.get("limit") or DEFAULT_REST_LIMIT)
        return [_snapshot(symbol, time_ms(data["T"]), levels, data["bids"], data["asks"])]
    except SHAPE_ERRORS as error:
        raise explain(where, [data], _REST_FIELDS, error) from None


def update_from_stream(message: Message) -> list[Row]:
    """Convert `<SYMBOL>@incrDepth`: the first frame is the snapshot ("all"), then diffs ("update")."""
    where = "book_updates stream"
    symbol, _ = topic_parts(message, where)
    data = message.get("data")
    if data is None:
        return []
    try:
        action = data["action"]
        if action not in _ACTIONS:
            raise ConversionError(f"{where}: field 'action' is {action!r}, expected 'all' or 'update'")
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
    except SHAPE_ERRORS as error:
        raise explain(where, [data], _UPDATE_FIELDS, error) from None


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
    from_stream=snapshot_from_stream,
    from_rest=snapshot_from_rest,
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
    from_stream=update_from_stream,
)
