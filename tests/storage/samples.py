"""Small datasets declared here so lake and view tests do not depend on the registry's details."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from schemas.dataset import MS, Dataset, Row

T0 = datetime(2024, 6, 1, 23, 58, tzinfo=UTC)  # two minutes before midnight: rows cross a day boundary

BARS = Dataset(
    name="bars",
    fields=(
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("interval", pa.string(), nullable=False),
        pa.field("open_time", MS, nullable=False),
        *(pa.field(name, pa.float64()) for name in ("open", "high", "low", "close", "volume")),
    ),
    key=("symbol", "interval", "open_time"),
    event_time="open_time",
    description="kline-like: partitioned by symbol and interval",
    partitions=("symbol", "interval"),
    view_columns=(
        "source = 'backfill' OR open_time < max(open_time) OVER (PARTITION BY symbol, \"interval\")"
        " AS is_final",
    ),
)

FILLS = Dataset(
    name="fills",
    fields=(
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("trade_time", MS, nullable=False),
        pa.field("price", pa.float64(), nullable=False),
        pa.field("qty", pa.float64(), nullable=False),
        pa.field("is_buyer_maker", pa.bool_(), nullable=False),
        pa.field("trade_id", pa.string()),
        pa.field("quote_qty", pa.float64()),
        pa.field("frame_index", pa.int32()),
    ),
    key=("symbol", "trade_time", "price", "qty", "is_buyer_maker"),
    event_time="trade_time",
    description="trades-like: equal-looking rows are separate facts",
    occurrence=True,
    replay_key={
        "stream": ("symbol", "received_at", "frame_index"),
        "backfill": ("symbol", "trade_id"),
        "poll": ("symbol", "trade_id"),
    },
)

EVENTS = Dataset(
    name="events",
    fields=(
        pa.field("connection", pa.string(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("event", pa.string(), nullable=False),
        pa.field("levels", pa.int16()),
        pa.field("bid_prices", pa.list_(pa.float64())),
    ),
    key=("connection", "seq"),
    event_time="received_at",
    description="no partitions: date= only",
    partitions=(),
)

SAMPLES = (BARS, FILLS, EVENTS)


def bar(minute: int, close: float, source: str, received_s: float, symbol: str = "BTC-USDT") -> Row:
    """A 1m bar `minute` minutes after T0, received `received_s` seconds after T0."""
    return {
        "symbol": symbol,
        "interval": "1m",
        "open_time": T0 + timedelta(minutes=minute),
        "open": 100.0,
        "high": max(100.0, close),
        "low": min(100.0, close),
        "close": close,
        "volume": 1.5,
        "received_at": T0 + timedelta(seconds=received_s),
        "source": source,
    }


def fill(price: float, source: str, received_s: float, **extra: Any) -> Row:
    """A trade at T0 + 1 s, received `received_s` seconds after T0 (frame_index/trade_id via extra)."""
    row: Row = {
        "symbol": "BTC-USDT",
        "trade_time": T0 + timedelta(seconds=1),
        "price": price,
        "qty": 0.25,
        "is_buyer_maker": False,
        "trade_id": None,
        "quote_qty": None,
        "frame_index": None,
        "received_at": T0 + timedelta(seconds=received_s),
        "source": source,
    }
    row.update(extra)
    return row
