"""A trader's own account over signed REST: income (fees, realized PnL, funding, transfers), balance,
position and commission-rate snapshots.

BingX's field names stop here; tests/payloads/rest_income.json, rest_balance.json, rest_positions.json and
rest_commission_rate.json pin them (BINGX_API.md §16). Ids stay strings: they exceed 2^53.
"""

from __future__ import annotations

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
    flag,
    integer,
    ms_or_none,
    time_ms,
)

_INCOME_FIELDS = {
    "incomeType": "text",
    "income": "decimal",
    "asset": "text",
    "time": "time",
    "tranId": "text",
}
_BALANCE_FIELDS = {"asset": "text", "balance": "decimal?", "equity": "decimal?"}
_POSITION_FIELDS = {
    "symbol": "text",
    "positionAmt": "decimal",
    "positionSide": "text",
    "avgPrice": "decimal?",
}
_COMMISSION_FIELDS = {"takerCommissionRate": "decimal", "makerCommissionRate": "decimal"}


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _income_rows(records: list[Any], envelope: Message, query: Mapping[str, Any]) -> list[Row]:
    # /v2/user/income: every income type; `time` is an int or a numeric string (§1)
    return [
        {
            "tran_id": str(r["tranId"]),
            "income_type": str(r["incomeType"]),
            "asset": str(r["asset"]),
            "symbol": _text(r.get("symbol")),  # "" for a transfer
            "income": float(r["income"]),
            "time": time_ms(r["time"]),
            "info": _text(r.get("info")),
            "trade_id": _text(r.get("tradeId")),
        }
        for r in records
    ]


def _balance_rows(assets: list[Any], envelope: Message, query: Mapping[str, Any]) -> list[Row]:
    # /v3/user/balance: one row per margin asset; "" is null (JK GetBalances2)
    return [
        {
            "asset": str(a["asset"]),
            "balance": amount(a.get("balance")),
            "equity": amount(a.get("equity")),
            "unrealized_profit": amount(a.get("unrealizedProfit")),
            "realised_profit": amount(a.get("realisedProfit")),
            "available_margin": amount(a.get("availableMargin")),
            "used_margin": amount(a.get("usedMargin")),
            "freezed_margin": amount(a.get("freezedMargin")),
        }
        for a in assets
    ]


def _position_rows(held: list[Any], envelope: Message, query: Mapping[str, Any]) -> list[Row]:
    # /v2/user/positions: leverage is an int or a string, liquidationPrice a number or a string
    return [
        {
            "position_id": str(p.get("positionId") or f"{p['symbol']}:{p['positionSide']}"),
            "symbol": str(p["symbol"]),
            "position_side": str(p["positionSide"]),
            "isolated": flag(p.get("isolated")),
            "position_amount": float(p["positionAmt"]),
            "available_amount": amount(p.get("availableAmt")),
            "average_price": amount(p.get("avgPrice")),
            "initial_margin": amount(p.get("initialMargin")),
            "leverage": integer(p.get("leverage")),
            "unrealized_profit": amount(p.get("unrealizedProfit")),
            "realised_profit": amount(p.get("realisedProfit")),
            "liquidation_price": amount(p.get("liquidationPrice")),
            "mark_price": amount(p.get("markPrice")),
            "position_value": amount(p.get("positionValue")),
            "update_time": ms_or_none(p.get("updateTime")),
        }
        for p in held
    ]


def _commission(data: Any, where: str) -> list[Any]:
    # /v2/user/commissionRate: the rates sit in `data.commission`
    if data is None:
        return []
    if not isinstance(data, Mapping) or not isinstance(data.get("commission"), Mapping):
        raise ConversionError(f"{where}: expected data.commission to be an object, got {data!r:.80}")
    return [data["commission"]]


def _commission_rows(found: list[Any], envelope: Message, query: Mapping[str, Any]) -> list[Row]:
    # JSON numbers
    return [
        {
            "taker_commission_rate": float(rates["takerCommissionRate"]),
            "maker_commission_rate": float(rates["makerCommissionRate"]),
        }
        for rates in found
    ]


INCOME = Dataset(
    name="income",
    fields=(
        pa.field("tran_id", pa.string(), nullable=False),
        pa.field("income_type", pa.string(), nullable=False),
        pa.field("asset", pa.string(), nullable=False),
        pa.field("symbol", pa.string()),
        pa.field("income", AMOUNT, nullable=False),  # signed: negative is paid
        pa.field("time", MS, nullable=False),
        pa.field("info", pa.string()),
        pa.field("trade_id", pa.string()),
    ),
    key=("tran_id", "income_type", "asset"),
    event_time="time",
    description="The account's money movements: funding fees, realized PnL, trading fees, transfers.",
    rest_path="/openApi/swap/v2/user/income",
    paging="time",
    rest=Converter(_income_rows, _INCOME_FIELDS),
    partitions=(),
)

BALANCES = Dataset(
    name="balances",
    fields=(
        pa.field("asset", pa.string(), nullable=False),
        *(
            pa.field(name, AMOUNT)
            for name in (
                "balance",
                "equity",
                "unrealized_profit",
                "realised_profit",
                "available_margin",
                "used_margin",
                "freezed_margin",
            )
        ),
    ),
    key=("asset", "received_at"),
    event_time="received_at",
    description="Polled snapshots of the account's balance per margin asset.",
    rest_path="/openApi/swap/v3/user/balance",
    paging="all",
    rest=Converter(_balance_rows, _BALANCE_FIELDS),
    partitions=(),
)

POSITIONS = Dataset(
    name="positions",
    fields=(
        pa.field("position_id", pa.string(), nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("position_side", pa.string(), nullable=False),
        pa.field("isolated", pa.bool_()),
        pa.field("position_amount", AMOUNT, nullable=False),
        *(pa.field(name, AMOUNT) for name in ("available_amount", "average_price", "initial_margin")),
        pa.field("leverage", pa.int64()),
        *(
            pa.field(name, AMOUNT)
            for name in (
                "unrealized_profit",
                "realised_profit",
                "liquidation_price",
                "mark_price",
                "position_value",
            )
        ),
        pa.field("update_time", MS),
    ),
    key=("position_id", "position_side", "received_at"),
    event_time="received_at",
    description="Polled snapshots of the account's open positions.",
    rest_path="/openApi/swap/v2/user/positions",
    paging="all",
    rest=Converter(_position_rows, _POSITION_FIELDS),
    partitions=(),
)

COMMISSION_RATES = Dataset(
    name="commission_rates",
    fields=(
        pa.field("taker_commission_rate", AMOUNT, nullable=False),
        pa.field("maker_commission_rate", AMOUNT, nullable=False),
    ),
    key=("received_at",),
    event_time="received_at",
    description="Polled snapshots of the account's taker and maker commission rates.",
    rest_path="/openApi/swap/v2/user/commissionRate",
    paging="all",
    alias="commission-rates",
    rest=Converter(_commission_rows, _COMMISSION_FIELDS, find=_commission),
    partitions=(),
)

income_from_rest = INCOME.convert_rest
positions_from_rest = POSITIONS.convert_rest
commission_from_rest = COMMISSION_RATES.convert_rest
