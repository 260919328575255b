"""DuckDB views: one row per key with the documented precedence; trades keep equal-looking facts."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from storage.lake import Lake
from storage.views import connect, create_views, duckdb_type, view_sql
from tests.storage.samples import BARS, FILLS, SAMPLES, T0, bar, fill


def _query(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = con.sql(sql).to_arrow_table().to_pylist()  # fetchall() would need pytz
    return rows


def _closes(lake: Path) -> list[tuple[int, float, str]]:
    with connect(lake, datasets=SAMPLES) as con:
        rows = _query(con, "SELECT open_time, close, source FROM bars ORDER BY open_time")
    return [(int((row["open_time"] - T0).total_seconds() // 60), row["close"], row["source"]) for row in rows]


def test_backfill_beats_the_stream_for_the_same_bar_even_when_older(lake: Path) -> None:
    Lake(lake).write(
        BARS, [bar(0, 101.0, "backfill", received_s=10), bar(1, 102.0, "backfill", received_s=10)]
    )
    Lake(lake).write(BARS, [bar(1, 999.0, "stream", received_s=50), bar(2, 103.0, "stream", received_s=50)])
    assert _closes(lake) == [(0, 101.0, "backfill"), (1, 102.0, "backfill"), (2, 103.0, "stream")]


def test_the_last_stream_update_of_a_bar_beats_earlier_ones(lake: Path) -> None:
    for received_s, close in [(61, 100.5), (90, 101.5), (75, 99.0)]:  # written out of order on purpose
        Lake(lake).write(BARS, [bar(0, close, "stream", received_s)])
    assert _closes(lake) == [(0, 101.5, "stream")]


def test_poll_ranks_between_backfill_and_stream(lake: Path) -> None:
    Lake(lake).write(BARS, [bar(0, 1.0, "stream", 90), bar(0, 2.0, "poll", 30), bar(1, 3.0, "poll", 9)])
    Lake(lake).write(BARS, [bar(1, 4.0, "backfill", 5), bar(1, 5.0, "stream", 99)])
    assert _closes(lake) == [(0, 2.0, "poll"), (1, 4.0, "backfill")]


def test_view_columns_are_evaluated_over_the_kept_rows(lake: Path) -> None:
    Lake(lake).write(BARS, [bar(0, 1.0, "stream", 61), bar(1, 2.0, "stream", 62), bar(2, 3.0, "stream", 150)])
    Lake(lake).write(BARS, [bar(0, 1.5, "backfill", 70)])
    with connect(lake, datasets=SAMPLES) as con:
        rows = _query(con, "SELECT open_time, source, is_final FROM bars ORDER BY open_time")
    assert [(row["source"], row["is_final"]) for row in rows] == [
        ("backfill", True),
        ("stream", True),  # a later bar exists
        ("stream", False),  # the newest bar may still change
    ]


def _fills(lake: Path) -> list[tuple[float, str, str | None]]:
    with connect(lake, datasets=SAMPLES) as con:
        rows = _query(con, "SELECT price, source, trade_id FROM fills ORDER BY price, trade_id")
    return [(row["price"], row["source"], row["trade_id"]) for row in rows]


def test_two_equal_looking_stream_trades_in_one_frame_are_two_rows(lake: Path) -> None:
    Lake(lake).write(FILLS, [fill(7.0, "stream", 1, frame_index=0), fill(7.0, "stream", 1, frame_index=1)])
    assert _fills(lake) == [(7.0, "stream", None), (7.0, "stream", None)]


def test_a_replayed_frame_adds_nothing(lake: Path) -> None:
    frame = [
        fill(7.0, "stream", 1, frame_index=0),
        fill(7.0, "stream", 1, frame_index=1),
        fill(8.0, "stream", 1, frame_index=2),
    ]
    Lake(lake).write(FILLS, frame)
    Lake(lake).write(FILLS, frame)  # e.g. the journal tail converted again after a crash
    assert _fills(lake) == [(7.0, "stream", None), (7.0, "stream", None), (8.0, "stream", None)]


def test_the_same_trades_in_a_later_frame_are_new_facts(lake: Path) -> None:
    Lake(lake).write(FILLS, [fill(7.0, "stream", 1, frame_index=0)])
    Lake(lake).write(FILLS, [fill(7.0, "stream", 2, frame_index=0)])
    assert _fills(lake) == [(7.0, "stream", None), (7.0, "stream", None)]


def test_backfilled_trades_replace_the_stream_rows_of_the_same_trades(lake: Path) -> None:
    Lake(lake).write(FILLS, [fill(7.0, "stream", 1, frame_index=0), fill(7.0, "stream", 1, frame_index=1)])
    page = [fill(7.0, "backfill", 60, trade_id="101"), fill(7.0, "backfill", 60, trade_id="102")]
    Lake(lake).write(FILLS, page)
    Lake(lake).write(FILLS, [{**row, "received_at": T0 + timedelta(seconds=90)} for row in page])  # a re-run
    assert _fills(lake) == [(7.0, "backfill", "101"), (7.0, "backfill", "102")]


def test_a_stream_trade_the_backfill_has_not_reached_yet_stays(lake: Path) -> None:
    Lake(lake).write(FILLS, [fill(7.0, "stream", 1, frame_index=0), fill(7.0, "stream", 1, frame_index=1)])
    Lake(lake).write(FILLS, [fill(7.0, "backfill", 60, trade_id="101")])
    assert _fills(lake) == [(7.0, "backfill", "101"), (7.0, "stream", None)]


def test_an_empty_lake_has_every_view_with_the_declared_columns_and_types(lake: Path) -> None:
    with connect(lake, datasets=SAMPLES) as con:
        for dataset in SAMPLES:
            described = con.execute(f'DESCRIBE "{dataset.name}"').fetchall()
            expected = [(f.name, duckdb_type(f.type)) for f in dataset.schema] + [("date", "DATE")]
            expected += [("is_final", "BOOLEAN")] if dataset is BARS else []
            assert [
                (name, kind.replace("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"))
                for name, kind, *_ in described
            ] == expected
            assert con.execute(f'SELECT count(*) FROM "{dataset.name}"').fetchall() == [(0,)]


def test_files_written_after_the_views_were_created_appear_without_recreating_them(lake: Path) -> None:
    with connect(lake, datasets=SAMPLES) as con:
        assert con.execute("SELECT count(*) FROM bars").fetchall() == [(0,)]  # created over no files at all
        Lake(lake).write(BARS, [bar(0, 1.0, "stream", 61)])
        assert con.execute("SELECT count(*) FROM bars").fetchall() == [(1,)]
        Lake(lake).write(BARS, [bar(1, 2.0, "stream", 62), bar(2, 3.0, "stream", 150)])
        assert con.execute("SELECT count(*) FROM bars").fetchall() == [(3,)]


def test_partition_columns_come_back_from_the_path_with_their_types(lake: Path) -> None:
    Lake(lake).write(BARS, [bar(0, 1.0, "stream", 61, symbol="ETH-USDT"), bar(3, 1.0, "stream", 61)])
    with connect(lake, datasets=SAMPLES) as con:
        rows = _query(con, 'SELECT symbol, "interval", "date" FROM bars ORDER BY symbol')
    assert rows == [
        {"symbol": "BTC-USDT", "interval": "1m", "date": date(2024, 6, 2)},
        {"symbol": "ETH-USDT", "interval": "1m", "date": date(2024, 6, 1)},
    ]


def test_create_views_replaces_existing_views_and_returns_their_names(lake: Path) -> None:
    with duckdb.connect() as con:
        assert create_views(con, lake, SAMPLES) == ["bars", "fills", "events"]
        assert create_views(con, lake, SAMPLES) == ["bars", "fills", "events"]
        assert sorted(
            row[0]
            for row in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        ) == [
            "bars",
            "events",
            "fills",
        ]


def test_view_sql_reads_the_dataset_glob_by_absolute_path(lake: Path) -> None:
    sql = view_sql(BARS, Path("relative/lake"))
    assert f"'{Path('relative/lake').absolute().as_posix()}/bars/**/*.parquet'" in sql
    assert sql.startswith('CREATE OR REPLACE VIEW "bars" AS')


@pytest.mark.parametrize(
    ("arrow", "duck"),
    [
        (pa.timestamp("ms", tz="UTC"), "TIMESTAMPTZ"),
        (pa.timestamp("us"), "TIMESTAMP"),
        (pa.list_(pa.float64()), "DOUBLE[]"),
        (pa.int16(), "SMALLINT"),
        (pa.int32(), "INTEGER"),
        (pa.int64(), "BIGINT"),
        (pa.string(), "VARCHAR"),
        (pa.bool_(), "BOOLEAN"),
        (pa.decimal128(20, 8), "DECIMAL(20, 8)"),
    ],
)
def test_arrow_types_map_to_duckdb_types(arrow: pa.DataType, duck: str) -> None:
    assert duckdb_type(arrow) == duck


def test_an_unknown_arrow_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="no DuckDB type for Arrow"):
        duckdb_type(pa.dictionary(pa.int8(), pa.string()))


def test_backfilled_trades_without_ids_are_kept_apart_and_exact_copies_collapse(lake: Path) -> None:
    page = [fill(7.0, "backfill", 60), fill(8.0, "backfill", 60), fill(9.0, "backfill", 60, trade_id="9")]
    Lake(lake).write(FILLS, page)
    Lake(lake).write(FILLS, page)  # the same rows written again (a retried write)
    assert _fills(lake) == [(7.0, "backfill", None), (8.0, "backfill", None), (9.0, "backfill", "9")]


def test_stream_trades_without_a_frame_index_are_not_merged(lake: Path) -> None:
    Lake(lake).write(FILLS, [fill(7.0, "stream", 1), fill(8.0, "stream", 1)])
    assert _fills(lake) == [(7.0, "stream", None), (8.0, "stream", None)]
