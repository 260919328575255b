"""Public trades, one row per fill, from the stream (no trade id) and REST history (with ids).

BingX's field names stop here; tests/payloads/ws_trade.json, rest_historical_trades.json and rest_trades.json
pin them (BINGX_API.md §5, §12, §18).
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
    amount,
    time_ms,
)

_STREAM_FIELDS = {"T": "time", "p": "decimal", "q": "decimal", "m": "flag"}
_REST_FIELDS = {
    "time": "time",
    "price": "decimal",
    "qty": "decimal",
    "isBuyerMaker": "flag",
    "quoteQty": "decimal?",
}


def _stream_rows(trades: list[Any], message: Message, symbol: str, channel: str) -> list[Row]:
    # `<SYMBOL>@trade`: `data` is an array (2023 docs showed one object; CCXT handles both); frame_index is
    # each trade's position in it
    return [
        {
            "symbol": trade.get("s") or symbol,
            "trade_time": time_ms(trade["T"]),
            "price": float(trade["p"]),
            "qty": float(trade["q"]),
            "is_buyer_maker": _is_true(trade["m"]),
            "trade_id": None,
            "quote_qty": None,
            "frame_index": index,
        }
        for index, trade in enumerate(trades)
    ]


def _rest_rows(trades: list[Any], envelope: Message, query: Mapping[str, Any]) -> list[Row]:
    # /v1/market/historicalTrades (`id`) or /v2/quote/trades (`fillId` or no id)
    symbol = str(query["symbol"])
    return [
        {
            "symbol": symbol,
            "trade_time": time_ms(trade["time"]),
            "price": float(trade["price"]),
            "qty": float(trade["qty"]),
            "is_buyer_maker": _is_true(trade["isBuyerMaker"]),
            "trade_id": _trade_id(trade),
            "quote_qty": amount(trade.get("quoteQty")),
            "frame_index": None,
        }
        for trade in trades
    ]


def _is_true(value: Any) -> bool:
    if value is True or value is False:
        return bool(value)
    if value == "true":
        return True
    if value == "false":
        return False
    raise ValueError(f"expected a boolean, got {value!r}")


def _trade_id(trade: Mapping[str, Any]) -> str | None:
    # historicalTrades sends "id" (a numeric string); /quote/trades sends "fillId" (newer) or nothing.
    value = trade.get("id")
    if value is None or value == "":
        value = trade.get("fillId")
    if value is None or value == "":
        return None
    return str(value)


TRADES = Dataset(
    name="trades",
    fields=(
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("trade_time", MS, nullable=False),
        pa.field("price", AMOUNT, nullable=False),
        pa.field("qty", AMOUNT, nullable=False),
        pa.field("is_buyer_maker", pa.bool_(), nullable=False),
        pa.field("trade_id", pa.string()),  # REST only: the stream carries no id
        pa.field("quote_qty", AMOUNT),  # REST only
        pa.field("frame_index", pa.int32()),  # stream only: position in the frame's data array
    ),
    key=("symbol", "trade_time", "price", "qty", "is_buyer_maker"),
    event_time="trade_time",
    description="Public fills (price, size, taker side); REST rows carry the trade id, stream rows do not.",
    channel=re.compile(r"trade"),
    rest_path="/openApi/swap/v1/market/historicalTrades",
    paging="id",
    default_channel="trade",
    stream=Converter(_stream_rows, _STREAM_FIELDS),
    rest=Converter(_rest_rows, _REST_FIELDS, query=("symbol",)),
    occurrence=True,  # equal-looking fills are separate facts (BINGX_API.md §18)
    replay_key={
        "stream": ("symbol", "received_at", "frame_index"),
        "backfill": ("symbol", "trade_id"),
        "poll": ("symbol", "trade_id"),
    },
)

from_stream = TRADES.convert_stream
from_rest = TRADES.convert_rest
