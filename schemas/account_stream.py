"""The account stream's events (listenKey socket, BINGX_API.md §25): balances and positions pushed, orders and
fills, leverage and margin-mode changes. tests/payloads/ws_account_update.json, ws_order_trade_update.json and
ws_account_config_update.json pin BingX's field names, which stop here.

Account events carry no id. `event_id` is a hash of the event's content (its `E` included): the same event
received twice (a journal replay, two sockets during a listenKey rotation) is one row in the views.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from schemas.dataset import (
    AMOUNT,
    MS,
    Converter,
    Dataset,
    Find,
    Message,
    Row,
    amount,
    flag,
    integer,
    ms_or_none,
    time_ms,
)

EXPIRED = "listenKeyExpired"


def event_id(message: Message) -> str:
    """A stable id for an event without one: 32 hex digits of SHA-256 over its canonical JSON."""
    canonical = json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _nonzero_ms(value: Any) -> int | None:
    parsed = ms_or_none(value)
    return None if parsed == 0 else parsed  # an order's trade time is 0 before its first fill (§25)


def _account_update_rows(found: list[Any], message: Message) -> list[Row]:
    # ACCOUNT_UPDATE: one row per balance (`B`) and per position (`P`) in the event
    body = message["a"]
    common = {
        "event_id": event_id(message),
        "event_time": time_ms(message["E"]),
        "transaction_time": ms_or_none(message.get("T")),
        "reason": _text(body.get("m")),
    }
    balances, held = body.get("B") or [], body.get("P") or []
    rows = [_balance(common, index, b) for index, b in enumerate(balances)]
    rows += [_position(common, len(balances) + index, p) for index, p in enumerate(held)]
    if not rows:  # an event that changed nothing visible is still an event
        rows = [{**common, **_EMPTY_ITEM, "item": 0, "kind": "none"}]
    return rows


_BALANCE_COLUMNS = ("asset", "wallet_balance", "cross_wallet_balance", "balance_change")
_POSITION_COLUMNS = (
    "symbol",
    "position_amount",
    "entry_price",
    "unrealized_pnl",
    "margin_type",
    "isolated_wallet",
    "position_side",
    "realized_pnl",
)
_EMPTY_ITEM: Row = dict.fromkeys(_BALANCE_COLUMNS + _POSITION_COLUMNS)


def _balance(common: Row, index: int, item: Mapping[str, Any]) -> Row:
    return {
        **common,
        **_EMPTY_ITEM,
        "item": index,
        "kind": "balance",
        "asset": str(item["a"]),
        "wallet_balance": amount(item.get("wb")),
        "cross_wallet_balance": amount(item.get("cw")),
        "balance_change": amount(item.get("bc")),
    }


def _position(common: Row, index: int, item: Mapping[str, Any]) -> Row:
    return {
        **common,
        **_EMPTY_ITEM,
        "item": index,
        "kind": "position",
        "symbol": str(item["s"]),
        "position_amount": amount(item.get("pa")),
        "entry_price": amount(item.get("ep")),
        "unrealized_pnl": amount(item.get("up")),
        "margin_type": _text(item.get("mt")),
        "isolated_wallet": amount(item.get("iw")),
        "position_side": _text(item.get("ps")),
        "realized_pnl": amount(item.get("cr")),  # JK only
    }


def _order_update_rows(found: list[Any], message: Message) -> list[Row]:
    # ORDER_TRADE_UPDATE: one row per event; the order id is a number beyond 2^53 or a string (§25)
    order = message["o"]
    return [
        {
            "event_id": event_id(message),
            "event_time": time_ms(message["E"]),
            "symbol": str(order["s"]),
            "order_id": str(order["i"]),  # orjson reads a big JSON number as an exact int
            "client_order_id": _text(order.get("c")),
            "side": str(order["S"]),
            "order_type": str(order["o"]),
            "quantity": amount(order.get("q")),
            "price": amount(order.get("p")),
            "stop_price": amount(order.get("sp")),
            "average_price": amount(order.get("ap")),
            "execution_type": str(order["x"]),
            "order_status": str(order["X"]),
            "fee_asset": _text(order.get("N")),
            "fee": amount(order.get("n")),
            "trade_time": _nonzero_ms(order.get("T")),
            "working_type": _text(order.get("wt")),
            "position_side": _text(order.get("ps")),
            "realized_pnl": amount(order.get("rp")),
            "filled_quantity": amount(order.get("z")),
            "filled_quote": amount(order.get("Z")),
            "last_filled_quantity": amount(order.get("l")),
            "last_filled_price": amount(order.get("L")),
            "reduce_only": flag(order.get("ro")),
        }
    ]


def _config_update_rows(found: list[Any], message: Message) -> list[Row]:
    # ACCOUNT_CONFIG_UPDATE: a symbol's long and short leverage and margin mode
    config = message["ac"]
    return [
        {
            "event_id": event_id(message),
            "event_time": time_ms(message["E"]),
            "symbol": str(config["s"]),
            "long_leverage": integer(config.get("l")),
            "short_leverage": integer(config.get("S")),
            "margin_mode": _text(config.get("mt")),
        }
    ]


_ORDER_FIELDS = {"s": "text", "i": "text", "S": "text", "o": "text", "x": "text", "X": "text"}


def _event(data: Any, where: str) -> list[Any]:
    return [data]  # the event itself is the object `explain` checks


def _event_part(name: str) -> Find:
    return lambda event, where: [event.get(name)]


_EVENT_FIELDS = (
    pa.field("event_id", pa.string(), nullable=False),
    pa.field("event_time", MS, nullable=False),
)

ACCOUNT_UPDATES = Dataset(
    name="account_updates",
    fields=(
        *_EVENT_FIELDS,
        pa.field("item", pa.int64(), nullable=False),
        pa.field("transaction_time", MS),
        pa.field("reason", pa.string()),
        pa.field("kind", pa.string(), nullable=False),  # balance | position | none
        pa.field("asset", pa.string()),
        *(pa.field(name, AMOUNT) for name in _BALANCE_COLUMNS[1:]),
        pa.field("symbol", pa.string()),
        *(pa.field(name, AMOUNT) for name in ("position_amount", "entry_price", "unrealized_pnl")),
        pa.field("margin_type", pa.string()),
        pa.field("isolated_wallet", AMOUNT),
        pa.field("position_side", pa.string()),
        pa.field("realized_pnl", AMOUNT),
    ),
    key=("event_id", "item"),
    event_time="event_time",
    description="Account stream ACCOUNT_UPDATE: balances and positions as pushed, one row per item.",
    event=Converter(_account_update_rows, {"E": "time", "a": "object"}, find=_event),
    partitions=(),
)

ORDER_UPDATES = Dataset(
    name="order_updates",
    fields=(
        *_EVENT_FIELDS,
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("order_id", pa.string(), nullable=False),
        pa.field("client_order_id", pa.string()),
        pa.field("side", pa.string(), nullable=False),
        pa.field("order_type", pa.string(), nullable=False),
        *(pa.field(name, AMOUNT) for name in ("quantity", "price", "stop_price", "average_price")),
        pa.field("execution_type", pa.string(), nullable=False),
        pa.field("order_status", pa.string(), nullable=False),
        pa.field("fee_asset", pa.string()),
        pa.field("fee", AMOUNT),
        pa.field("trade_time", MS),
        pa.field("working_type", pa.string()),
        pa.field("position_side", pa.string()),
        *(
            pa.field(name, AMOUNT)
            for name in (
                "realized_pnl",
                "filled_quantity",
                "filled_quote",
                "last_filled_quantity",
                "last_filled_price",
            )
        ),
        pa.field("reduce_only", pa.bool_()),
    ),
    key=("event_id",),
    event_time="event_time",
    description="Account stream ORDER_TRADE_UPDATE: every order state change and fill.",
    event=Converter(_order_update_rows, _ORDER_FIELDS, find=_event_part("o")),
    partitions=(),
)

ACCOUNT_CONFIG_UPDATES = Dataset(
    name="account_config_updates",
    fields=(
        *_EVENT_FIELDS,
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("long_leverage", pa.int64()),
        pa.field("short_leverage", pa.int64()),
        pa.field("margin_mode", pa.string()),
    ),
    key=("event_id",),
    event_time="event_time",
    description="Account stream ACCOUNT_CONFIG_UPDATE: leverage and margin mode per symbol.",
    event=Converter(_config_update_rows, {"s": "text"}, find=_event_part("ac")),
    partitions=(),
)

# Event type ("e") -> its dataset. listenKeyExpired is handled by the recorder, not stored here.
ACCOUNT_EVENTS: dict[str, Dataset] = {
    "ACCOUNT_UPDATE": ACCOUNT_UPDATES,
    "ORDER_TRADE_UPDATE": ORDER_UPDATES,
    "ACCOUNT_CONFIG_UPDATE": ACCOUNT_CONFIG_UPDATES,
}


def is_account_event(message: Any) -> bool:
    """Say whether a parsed frame is an account stream event (top-level `e`, no dataType, §17 routing)."""
    return isinstance(message, Mapping) and isinstance(message.get("e"), str) and not message.get("dataType")


def from_account_event(message: Message) -> tuple[Dataset | None, list[Row]]:
    """Convert one account event; (None, []) for an event type no dataset stores (listenKeyExpired, ...)."""
    dataset = ACCOUNT_EVENTS.get(str(message.get("e")))
    if dataset is None:
        return None, []
    return dataset, dataset.convert_event(message)
