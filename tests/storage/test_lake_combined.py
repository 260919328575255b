"""The recorder's layout: one file per dataset, day and source per seal, every symbol in it, sorted by
symbol with row-group statistics to prune on; rejects of a seal in one file; readable as is."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from storage.lake import COMBINED_ROW_GROUP, Lake
from storage.validation import table_from_rows
from storage.views import connect
from tests.storage.lakes import DAY0, KLINES, TRADES, bars


def _trades(symbols: int, per_symbol: int) -> list[dict[str, object]]:
    start = int(DAY0.timestamp() * 1000) + 3_600_000
    return [
        {
            "symbol": f"S{s:03d}-USDT",
            "trade_time": start + i,
            "price": 1.0 + s,
            "qty": 1.0,
            "is_buyer_maker": False,
            "frame_index": 0,
            "received_at": (start + i) * 1000 + s,
            "source": "stream",
        }
        for i in range(per_symbol)
        for s in range(symbols)
    ]


def test_a_seal_writes_one_file_per_dataset_whatever_the_symbol_count(tmp_path: Path) -> None:
    rows = _trades(symbols=200, per_symbol=5)
    with Lake(tmp_path).batch(combined=True) as batch:
        batch.append(TRADES, table_from_rows(TRADES, rows))
        batch.append(KLINES, table_from_rows(KLINES, bars(random.Random(1), 0, "stream", 1)))
        for index in range(3):
            batch.reject(
                "raw_messages", f"garbage {index}", "bad JSON: x", "stream", datetime(2024, 6, 1, tzinfo=UTC)
            )
    assert sorted(Path(path).relative_to(tmp_path).parts[0] for path in batch.paths) == [
        "_rejects",
        "klines",
        "trades",
    ]
    with connect(tmp_path) as con:
        assert con.sql("SELECT count(*), count(DISTINCT symbol) FROM trades").fetchall() == [(1000, 200)]


def test_a_seal_file_is_sorted_by_symbol_in_row_groups_duckdb_can_prune(tmp_path: Path) -> None:
    per_symbol = COMBINED_ROW_GROUP // 4
    (path,) = Lake(tmp_path).write(TRADES, _trades(symbols=12, per_symbol=per_symbol), combined=True)
    meta = pq.ParquetFile(path).metadata
    column = meta.schema.to_arrow_schema().get_field_index("symbol")
    ranges = [
        (meta.row_group(g).column(column).statistics.min, meta.row_group(g).column(column).statistics.max)
        for g in range(meta.num_row_groups)
    ]
    assert meta.num_row_groups == 3 and ranges == sorted(ranges) and len({r[0] for r in ranges}) == 3
    assert all(high < low for (_, high), (low, _) in itertools.pairwise(ranges))
    times = pq.read_table(path, columns=["symbol", "received_at"]).to_pylist()
    first = [row["received_at"] for row in times if row["symbol"] == "S000-USDT"]
    assert first == sorted(first)  # each symbol's rows in receive order


def test_both_areas_read_as_is_with_duckdb_and_pyarrow(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.write(TRADES, _trades(symbols=3, per_symbol=2), combined=True)
    lake.write(
        TRADES, [{**row, "source": "backfill", "trade_id": "1"} for row in _trades(symbols=2, per_symbol=1)]
    )
    combined = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{tmp_path}/trades/date=*/*.parquet', hive_partitioning = true)"
    ).fetchall()
    glob = f"{tmp_path}/trades/symbol=*/date=*/*.parquet"
    per_symbol = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true)"
    ).fetchall()
    assert combined == [(6,)] and per_symbol == [(2,)]
    area = ds.dataset(tmp_path / "trades" / "date=2024-06-01", format="parquet")
    assert area.to_table().num_rows == 6 and "symbol" in area.schema.names
