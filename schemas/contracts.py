"""The contract list (/v2/quote/contracts), polled: one row per contract per poll.

BingX's field names stop here; tests/payloads/rest_contracts.json pins them (BINGX_API.md §3).
"""

from __future__ import annotations

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
    flag,
    integer,
    time_ms,
)

# column -> (wire name, parser); `displayName` differs from `symbol` on ~660 rows: never a key.
_TEXTS = {
    "contract_id": "contractId",
    "display_name": "displayName",
    "currency": "currency",
    "asset": "asset",
}
_INTEGERS = {
    "status": "status",  # 1 online, 25 paused, 5 pre-online, 0 offline
    "quantity_precision": "quantityPrecision",
    "price_precision": "pricePrecision",
    "max_long_leverage": "maxLongLeverage",
    "max_short_leverage": "maxShortLeverage",
}
_AMOUNTS = {
    "maker_fee_rate": "makerFeeRate",
    "taker_fee_rate": "takerFeeRate",
    "trade_min_quantity": "tradeMinQuantity",
    "trade_min_usdt": "tradeMinUSDT",
}
_FLAGS = {"api_state_open": "apiStateOpen", "api_state_close": "apiStateClose", "broker_state": "brokerState"}
_TIMES = {"launch_time": "launchTime", "maintain_time": "maintainTime", "off_time": "offTime"}
_FIELDS = {
    "symbol": "text",
    **{name: "text?" for name in _TEXTS.values()},
    **{name: "integer?" for name in _INTEGERS.values()},
    **{name: "decimal?" for name in _AMOUNTS.values()},
    **{name: "flag?" for name in _FLAGS.values()},
    **{name: "time?" for name in _TIMES.values()},
}


def _rows(contracts: list[Any], envelope: Message, query: Mapping[str, Any]) -> list[Row]:
    # /v2/quote/contracts: "true"/"false" strings become booleans, a time of 0 means none
    return [_row(contract) for contract in contracts]


def _row(contract: Mapping[str, Any]) -> Row:
    symbol = contract["symbol"]
    if not isinstance(symbol, str) or not symbol:
        raise ValueError("bad symbol")
    row: Row = {"symbol": symbol}
    for column, name in _TEXTS.items():
        value = contract.get(name)
        row[column] = None if value is None or value == "" else str(value)
    for column, name in _INTEGERS.items():
        row[column] = integer(contract.get(name))
    for column, name in _AMOUNTS.items():
        row[column] = amount(contract.get(name))
    for column, name in _FLAGS.items():
        row[column] = flag(contract.get(name))
    for column, name in _TIMES.items():
        value = integer(contract.get(name))
        row[column] = time_ms(value) if value else None  # 0 = no such instant
    return row


CONTRACTS = Dataset(
    name="contracts",
    fields=(
        pa.field("symbol", pa.string(), nullable=False),
        *(pa.field(column, pa.string()) for column in _TEXTS),
        *(pa.field(column, pa.int32()) for column in _INTEGERS),
        *(pa.field(column, AMOUNT) for column in _AMOUNTS),
        *(pa.field(column, pa.bool_()) for column in _FLAGS),
        *(pa.field(column, MS) for column in _TIMES),
    ),
    key=("symbol", "received_at"),
    event_time="received_at",  # the list has no time of its own
    description="Contract specs and trading status per poll (precisions, fees, leverage, listing times).",
    rest_path="/openApi/swap/v2/quote/contracts",
    paging="all",
    rest=Converter(_rows, _FIELDS),
)

from_rest = CONTRACTS.convert_rest
