"""Seeded random lakes in the recorder's own layout: stream seals holding every symbol, backfill per symbol,
with the overlaps, replays and equal-looking trades the views must resolve."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from schemas import DATASETS
from storage.lake import Lake
from storage.views import connect

TRADES, KLINES = DATASETS["trades"], DATASETS["klines"]
DAY0 = datetime(2024, 6, 1, tzinfo=UTC)
SYMBOLS = ("BTC-USDT", "ETH-USDT", "SOL-USDT")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def trades(rng: random.Random, day: int, count: int, seal: int) -> list[dict[str, Any]]:
    """Stream trades of one seal: frames of 1-3 trades, some equal-looking, around day `day`."""
    rows: list[dict[str, Any]] = []
    received = _ms(DAY0 + timedelta(days=day, hours=rng.uniform(0, 23.9))) * 1000 + seal
    for index in range(count):
        trade_ms = received // 1000 - rng.randint(0, 50) if index % 4 else (received // 1000)
        price = 100.0 + rng.randint(0, 5) / 2
        rows.append(
            {
                "symbol": rng.choice(SYMBOLS),
                "trade_time": trade_ms,
                "price": price,
                "qty": float(rng.choice((1, 2))),
                "is_buyer_maker": rng.random() < 0.5,
                "frame_index": index % 3,
                "received_at": received + index // 3,
                "source": "stream",
            }
        )
    return rows


def settled(stream_rows: list[dict[str, Any]], share: float, rng: random.Random) -> list[dict[str, Any]]:
    """Backfill copies of some stream trades (with ids), as REST history would return them later."""
    rows = []
    for row in stream_rows:
        if rng.random() < share:
            copy = {k: v for k, v in row.items() if k not in ("frame_index",)}
            copy.update(
                source="backfill", trade_id=str(rng.getrandbits(40)), received_at=row["received_at"] + 10**9
            )
            copy["quote_qty"] = copy["price"] * copy["qty"]
            rows.append(copy)
    return rows


def bars(rng: random.Random, day: int, source: str, updates: int) -> list[dict[str, Any]]:
    rows = []
    for symbol in SYMBOLS:
        for minute in range(0, 1440, 97):
            for update in range(updates):
                close = 100 + rng.random()
                rows.append(
                    {
                        "symbol": symbol,
                        "interval": "1m",
                        "open_time": _ms(DAY0 + timedelta(days=day, minutes=minute)),
                        "open": 100.0,
                        "high": max(100.0, close),
                        "low": min(100.0, close),
                        "close": close,
                        "volume": float(update),
                        "received_at": _ms(DAY0 + timedelta(days=day, minutes=minute, seconds=update)) * 1000,
                        "source": source,
                    }
                )
    return rows


def build(root: Path | Lake, seed: int, days: int = 2, seals: int = 4) -> Lake:
    """A lake of `days` days: stream seals (combined files, with a replayed seal), backfill per symbol."""
    rng = random.Random(seed)
    lake = root if isinstance(root, Lake) else Lake(root)
    for day in range(days):
        for seal in range(seals):
            rows = trades(rng, day, 60, seal)
            lake.write(TRADES, rows, combined=True)
            if seal == 0:
                lake.write(TRADES, rows, combined=True)  # a replay: the journal converted twice
            lake.write(TRADES, settled(rows, 0.3, rng))
        lake.write(KLINES, bars(rng, day, "stream", 3), combined=True)
        lake.write(KLINES, bars(rng, day, "backfill", 1)[::2])
    return lake


def snapshot(root: Path | str, dataset: str = "trades") -> list[tuple[Any, ...]]:
    """Every row of a view, sorted: what a comparison before/after must find unchanged."""
    with connect(root) as con:
        table: pa.Table = con.sql(f"SELECT * FROM {dataset}").to_arrow_table()
    rows = [tuple(row.values()) for row in table.to_pylist()]
    return sorted(rows, key=repr)
