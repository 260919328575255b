"""The lake read without this package: pyarrow.dataset over each area with typed hive partitions, as the
README's "Reading the lake elsewhere" shows; a compacted day's per-partition files hold exactly the view."""

from __future__ import annotations

import glob
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from storage.compact import compact
from storage.views import connect
from tests.storage.lakes import KLINES, TRADES, build

SEED = 7


def test_pyarrow_dataset_reads_both_areas_with_typed_partitions(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    lake = build(root, SEED)  # days 2024-06-01 and 2024-06-02
    compact(lake, [TRADES, KLINES], date(2024, 6, 2), grace_s=0)  # the first day only
    # The per-partition area (what the README points Trino and Spark's basePath at): symbol=*/date=*/
    partitions = ds.partitioning(pa.schema([("symbol", pa.string()), ("date", pa.date32())]), flavor="hive")
    per_partition = ds.dataset(
        sorted(glob.glob(f"{root}/trades/symbol=*/date=*/*.parquet")),
        format="parquet",
        partitioning=partitions,
        partition_base_dir=f"{root}/trades",
    )
    assert per_partition.schema.field("symbol").type == pa.string()
    assert per_partition.schema.field("date").type == pa.date32()
    day = ds.field("date") == pa.scalar(date(2024, 6, 1), pa.date32())
    compacted = per_partition.to_table(filter=day)
    with connect(root) as con:
        (shown,) = con.sql("SELECT count(*) FROM trades WHERE date = DATE '2024-06-01'").fetchall()[0]
        symbols = con.sql("SELECT DISTINCT symbol FROM trades WHERE date = '2024-06-01'").fetchall()
    assert compacted.num_rows == shown > 0
    assert sorted(set(compacted["symbol"].to_pylist())) == sorted(s for (s,) in symbols)
    # The area of the recorder's seals (every symbol per file, `symbol` stored): date=*/ only
    combined = ds.dataset(
        sorted(glob.glob(f"{root}/trades/date=*/*.parquet")),
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("date", pa.date32())]), flavor="hive"),
        partition_base_dir=f"{root}/trades",
    )
    table = combined.to_table()
    assert table.schema.field("date").type == pa.date32() and table.schema.field("symbol").type == pa.string()
    assert set(table["date"].to_pylist()) == {date(2024, 6, 2)}  # the first day's seals were compacted away
    assert table.num_rows > 0
