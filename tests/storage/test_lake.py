"""The lake writer: exact round-trip, the hive layout, atomic files, schema checks, rejects."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from storage.errors import SchemaMismatch
from storage.lake import REJECT_SCHEMA, Lake
from tests.storage.samples import BARS, EVENTS, FILLS, T0, bar, fill

FILE_NAME = re.compile(r"(stream|backfill|poll)-(-?\d+)-[0-9a-f]{32}\.parquet")


def _read_back(lake: Lake, name: str) -> list[dict[str, object]]:
    dataset = ds.dataset(f"{lake.root}/{name}", format="parquet", partitioning="hive")
    rows: list[dict[str, object]] = dataset.to_table().to_pylist()
    return rows


def _name_part(path: Path, group: int) -> str:
    match = FILE_NAME.fullmatch(path.name)
    assert match, f"{path.name} is not <source>-<first-event-ms>-<uuid hex>.parquet"
    return match[group]


def test_rows_round_trip_with_exact_values(lake: Path) -> None:
    awkward = [0.1, 12345.678901234, 1e-8, 98765432.1234567, 0.30000000000000004]
    rows = [
        fill(price, "backfill", 5.000123, trade_id=str(10**15 + i), quote_qty=price * 0.25)
        for i, price in enumerate(awkward)
    ]
    Lake(lake).write(FILLS, rows)
    (path,) = Lake(lake).files("fills")
    stored = pq.read_table(path).to_pylist()
    assert sorted(stored, key=lambda row: row["price"]) == sorted(
        ({k: v for k, v in row.items() if k != "symbol"} for row in rows), key=lambda row: row["price"]
    )


def test_files_are_laid_out_by_partition_day_and_source(lake: Path) -> None:
    rows = [bar(minute, 101.0, source, 1) for minute in range(4) for source in ("stream", "backfill")]
    paths = Lake(lake).write(BARS, rows)
    relative = sorted(Path(path).relative_to(lake).parent.as_posix() for path in paths)
    assert relative == [
        "bars/symbol=BTC-USDT/interval=1m/date=2024-06-01",  # 23:58 and 23:59
        "bars/symbol=BTC-USDT/interval=1m/date=2024-06-01",
        "bars/symbol=BTC-USDT/interval=1m/date=2024-06-02",  # 00:00 and 00:01
        "bars/symbol=BTC-USDT/interval=1m/date=2024-06-02",
    ]
    names = {Path(path).parent.name + "/" + _name_part(Path(path), 1): Path(path) for path in paths}
    assert set(names) == {
        f"date=2024-06-0{day}/{source}" for day in (1, 2) for source in ("stream", "backfill")
    }
    first_ms = {key: int(_name_part(path, 2)) for key, path in names.items()}
    assert first_ms["date=2024-06-01/stream"] == int(T0.timestamp() * 1000)
    assert first_ms["date=2024-06-02/backfill"] == int((T0 + timedelta(minutes=2)).timestamp() * 1000)
    for path in paths:  # partition values live in the path only
        assert pq.read_schema(path).names == [
            "open_time",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "received_at",
            "source",
        ]


def test_a_dataset_without_partitions_gets_only_the_day_of_its_event_time(lake: Path) -> None:
    rows = [
        {"connection": "c1", "seq": 1, "event": "connect", "received_at": T0, "source": "stream"},
        {
            "connection": "c1",
            "seq": 2,
            "event": "gap",
            "received_at": T0 + timedelta(hours=1),
            "source": "stream",
        },
    ]
    paths = Lake(lake).write(EVENTS, rows)
    assert sorted(Path(path).relative_to(lake).parent.as_posix() for path in paths) == [
        "events/date=2024-06-01",
        "events/date=2024-06-02",
    ]


def test_the_day_is_the_utc_day_even_when_the_table_is_labelled_with_another_zone(lake: Path) -> None:
    table = pa.Table.from_pylist([bar(0, 101.0, "stream", 1)], schema=BARS.schema)
    tokyo = table.set_column(2, "open_time", table["open_time"].cast(pa.timestamp("ms", tz="Asia/Tokyo")))
    (path,) = Lake(lake).write_table(BARS, tokyo)
    assert "/date=2024-06-01/" in path


def test_write_table_accepts_any_column_order_and_missing_nullable_columns(lake: Path) -> None:
    rows = [fill(7.5, "stream", 1, frame_index=0)]
    table = pa.Table.from_pylist(rows).drop_columns(["quote_qty", "trade_id"])
    table = table.select(list(reversed(table.column_names)))
    Lake(lake).write_table(FILLS, table)
    assert _read_back(Lake(lake), "fills") == [
        {**rows[0], "symbol": "BTC-USDT", "date": "2024-06-01"}  # partition values back from the path
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "fills: rows have columns not in the schema: colour"),
        ({"price": "cheap"}, "fills: columns with the wrong type: price (expected double"),
        ({"qty": None}, "fills: required columns are missing or null: qty"),
        (
            {"source": "gossip"},
            "fills: column source must be one of ('backfill', 'poll', 'stream'), got ['gossip']",
        ),
    ],
)
def test_schema_mismatch_names_the_dataset_and_the_columns(
    lake: Path, change: dict[str, object], message: str
) -> None:
    good = fill(1.0, "stream", 1, frame_index=0)
    with pytest.raises(SchemaMismatch) as raised:
        Lake(lake).write(FILLS, [good, {**good, **change}])
    assert str(raised.value).startswith(message)
    assert Lake(lake).files("fills") == []  # nothing half-written


def test_schema_mismatch_for_a_table_with_a_wrong_type(lake: Path) -> None:
    table = pa.Table.from_pylist([fill(1.0, "stream", 1, frame_index=0)]).set_column(
        7, "frame_index", pa.array(["x"])
    )
    with pytest.raises(
        SchemaMismatch, match=r"fills: columns with the wrong type: frame_index \(string, expected int32\)"
    ):
        Lake(lake).write_table(FILLS, table)


def test_a_partition_value_that_is_not_a_folder_name_is_refused(lake: Path) -> None:
    with pytest.raises(
        SchemaMismatch, match=re.escape("bars: symbol='../x' cannot be a partition folder name")
    ):
        Lake(lake).write(BARS, [bar(0, 1.0, "stream", 1, symbol="../x")])


def test_files_lists_only_finished_parquet_files(lake: Path) -> None:
    paths = Lake(lake).write(BARS, [bar(0, 1.0, "stream", 1)])
    folder = Path(paths[0]).parent
    (folder / ".stream-1-abc.parquet.partial").write_bytes(b"PAR1 half")
    assert Lake(lake).files("bars") == paths
    assert Lake(lake).files("nothing_yet") == []


def test_reject_keeps_the_raw_text_and_the_reason_verbatim(lake: Path) -> None:
    raw = '{"dataType": "BTC-USDT@trade", "data": [{"p": "1.0"'
    reason = "ConversionError: missing field 'q'\n(second line kept)"
    at = datetime(2024, 6, 2, 0, 0, 0, 123456, tzinfo=UTC)
    path = Lake(lake).reject("trades", raw, reason, "stream", at)
    assert re.fullmatch(
        r"_rejects/trades/date=2024-06-02/[0-9a-f]{32}\.parquet", Path(path).relative_to(lake).as_posix()
    )
    table = pq.read_table(path)
    assert table.schema == REJECT_SCHEMA
    assert table.to_pylist() == [{"received_at": at, "source": "stream", "reason": reason, "raw": raw}]


def test_the_lake_works_through_a_non_local_filesystem() -> None:
    memory = pafs.PyFileSystem(pafs.FSSpecHandler(fsspec.filesystem("memory")))
    lake = Lake("/lake-test", memory)
    paths = lake.write(BARS, [bar(0, 101.25, "backfill", 1), bar(1, 99.5, "backfill", 1)])
    assert (
        lake.files("bars")
        == paths
        == ["/lake-test/bars/symbol=BTC-USDT/interval=1m/date=2024-06-01/" + Path(paths[0]).name]
    )
    selector = pafs.FileSelector("/lake-test", recursive=True)
    assert [
        info.path for info in memory.get_file_info(selector) if info.is_file
    ] == paths  # no leftover temp file
    with memory.open_input_file(paths[0]) as handle:
        assert pq.read_table(handle)["close"].to_pylist() == [101.25, 99.5]
    memory.delete_dir("/lake-test")


def test_from_uri_opens_local_paths_and_file_uris(lake: Path) -> None:
    assert Lake.from_uri(str(lake)).root == str(lake)
    by_uri = Lake.from_uri(lake.as_uri())
    assert by_uri.root == str(lake)
    assert by_uri.write(BARS, [bar(0, 1.0, "stream", 1)]) == Lake(lake).files("bars")
