"""Funding and positioning from REST: settled funding history, premium index polls, open interest polls.

BingX's field names stop here; tests/payloads/rest_funding_rate.json, rest_premium_index.json and
rest_open_interest.json pin them (BINGX_API.md §6, §7, §10).
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
    integer,
    ms_or_none,
    time_ms,
)

_FUNDING_FIELDS = {"fundingTime": "time", "fundingRate": "decimal", "markPrice": "decimal?"}
_PREMIUM_FIELDS = {
    "symbol": "text?",
    "markPrice": "decimal",
    "indexPrice": "decimal",
    "lastFundingRate": "decimal?",
    "nextFundingTime": "time?",
    "fundingIntervalHours": "integer?",
    "updateTime": "time?",
}
_OPEN_INTEREST_FIELDS = {"openInterest": "decimal", "time": "time"}


def _funding_rows(rates: list[Any], envelope: Message, query: Mapping[str, Any]) -> list[Row]:
    # /v2/quote/fundingRate; `data` null means an empty range (JK), order is not guaranteed
    fallback = query.get("symbol")
    return [
        {
            "symbol": rate.get("symbol") or _symbol(fallback),
            "funding_time": time_ms(rate["fundingTime"]),
            "funding_rate": float(rate["fundingRate"]),
            "mark_price": amount(rate.get("markPrice")),
        }
        for rate in rates
    ]


def _premium_rows(found: list[Any], envelope: Message, query: Mapping[str, Any]) -> list[Row]:
    # /v2/quote/premiumIndex: an object with `symbol`, or an array without it
    fallback = query.get("symbol")
    return [
        {
            "symbol": row.get("symbol") or _symbol(fallback),
            "mark_price": float(row["markPrice"]),
            "index_price": float(row["indexPrice"]),
            "last_funding_rate": amount(row.get("lastFundingRate")),
            # an absolute instant despite the doc's "remaining time" (§6, §27.1)
            "next_funding_time": ms_or_none(row.get("nextFundingTime")),
            "funding_interval_hours": integer(row.get("fundingIntervalHours")),  # 4 or "4"
            "update_time": ms_or_none(row.get("updateTime")),  # the last settlement, per PROBE
        }
        for row in found
    ]


def _open_interest_rows(found: list[Any], envelope: Message, query: Mapping[str, Any]) -> list[Row]:
    # /v2/quote/openInterest: one object per symbol; an array is accepted too
    fallback = query.get("symbol")
    return [
        {
            "symbol": row.get("symbol") or _symbol(fallback),
            "open_interest": float(row["openInterest"]),
            "event_time": time_ms(row["time"]),
        }
        for row in found
    ]


def _symbol(fallback: Any) -> str:
    if fallback is None or fallback == "":
        raise ConversionError("field 'symbol' is missing and the query has none")
    return str(fallback)


FUNDING_RATES = Dataset(
    name="funding_rates",
    fields=(
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("funding_time", MS, nullable=False),
        pa.field("funding_rate", AMOUNT, nullable=False),
        pa.field("mark_price", AMOUNT),  # newer field, JK model only
    ),
    key=("symbol", "funding_time"),
    event_time="funding_time",
    description="Settled funding rates, one row per settlement (intervals of 1, 2, 4 or 8 h per contract).",
    rest_path="/openApi/swap/v2/quote/fundingRate",
    paging="time",
    alias="funding",
    rest=Converter(_funding_rows, _FUNDING_FIELDS),
)

PREMIUM_INDEX = Dataset(
    name="premium_index",
    fields=(
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("mark_price", AMOUNT, nullable=False),
        pa.field("index_price", AMOUNT, nullable=False),
        pa.field("last_funding_rate", AMOUNT),  # the running estimate for the next settlement
        pa.field("next_funding_time", MS),
        pa.field("funding_interval_hours", pa.int32()),
        pa.field("update_time", MS),
    ),
    key=("symbol", "received_at"),
    event_time="received_at",  # the snapshot carries no time of its own
    description="Polled mark price, index price and running funding-rate estimate (keyed by poll time).",
    rest_path="/openApi/swap/v2/quote/premiumIndex",
    paging="all",
    alias="premium-index",
    rest=Converter(_premium_rows, _PREMIUM_FIELDS),
)

OPEN_INTEREST = Dataset(
    name="open_interest",
    fields=(
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("open_interest", AMOUNT, nullable=False),  # unit unconfirmed (quote value per CCXT)
        pa.field("event_time", MS, nullable=False),
    ),
    key=("symbol", "event_time"),
    event_time="event_time",
    description="Polled open interest with the matching engine's time (BingX keeps no history).",
    rest_path="/openApi/swap/v2/quote/openInterest",
    paging="per_symbol",
    alias="open-interest",
    rest=Converter(_open_interest_rows, _OPEN_INTEREST_FIELDS),
)

funding_from_rest = FUNDING_RATES.convert_rest
premium_from_rest = PREMIUM_INDEX.convert_rest
open_interest_from_rest = OPEN_INTEREST.convert_rest
