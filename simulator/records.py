"""The simulator's records: trades, bars, 24 h tickers, and the wire-shaped contract row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator.prices import Spec


@dataclass(frozen=True)
class Trade:
    id: int
    time_ms: int
    price: str
    qty: str
    is_buyer_maker: bool


@dataclass(frozen=True)
class Bar:
    open_ms: int
    open: str
    high: str
    low: str
    close: str
    volume: str


@dataclass(frozen=True)
class Ticker:
    """24 h statistics over trades in [time_ms - 24 h, time_ms)."""

    symbol: str
    time_ms: int
    open: str
    high: str
    low: str
    last: str
    last_qty: str
    volume: str
    quote_volume: str
    change: str
    change_percent: str
    first_ms: int
    last_ms: int


def contract_row(spec: Spec, listed_ms: int, paused: bool) -> dict[str, Any]:
    """Build the /openApi/swap/v2/quote/contracts row: JSON numbers for fees and minimums (BINGX_API §3)."""
    asset, currency = spec.symbol.split("-", 1)
    leverage = 125 if asset in ("BTC", "ETH") else 50
    return {
        "contractId": str(100 + spec.index),
        "symbol": spec.symbol,
        "displayName": spec.symbol,
        "size": "0",
        "quantityPrecision": spec.quantity_precision,
        "pricePrecision": spec.price_precision,
        "feeRate": 0.0005,
        "makerFeeRate": 0.0002,
        "takerFeeRate": 0.0005,
        "tradeMinLimit": 0,
        "tradeMinQuantity": 10**-spec.quantity_precision if spec.quantity_precision else 1,
        "tradeMinUSDT": 2,
        "maxLongLeverage": leverage,
        "maxShortLeverage": leverage,
        "currency": currency,
        "asset": asset,
        "status": 25 if paused else 1,  # 25: opening forbidden / paused
        "apiStateOpen": "true",
        "apiStateClose": "true",
        "brokerState": "true",
        "launchTime": listed_ms,
        "maintainTime": 0,
        "offTime": 0,
    }
