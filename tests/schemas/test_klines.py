"""Kline converters, pinned to tests/payloads/ws_kline_1m.json, rest_klines.json and rest_mark_klines.json."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.dataset import ConversionError, Dataset
from schemas.klines import KLINES, MARK_KLINES, from_rest, from_stream, mark_from_rest
from tests.conftest import load_payload, utc_ms

BAR_2023 = {
    "open": 0.7034,
    "high": 0.7081,
    "low": 0.7033,
    "close": 0.7065,
    "volume": 635494.0,
}


def test_stream_kline_gives_the_bar_with_its_open_time() -> None:
    assert from_stream(load_payload("ws_kline_1m.json")) == [
        {
            "symbol": "BTC-USDT",
            "interval": "1m",
            "open_time": utc_ms(2025, 10, 9, 8, 11),
            "open": 121684.1,
            "high": 121697.7,
            "low": 121638.7,
            "close": 121697.7,
            "volume": 5.8244,
        }
    ]


def test_rest_kline_takes_symbol_and_interval_from_the_query() -> None:
    rows = from_rest(
        load_payload("rest_klines.json"), {"symbol": "ONE-USDT", "interval": "1h", "limit": 1000}
    )
    assert rows == [
        {
            "symbol": "ONE-USDT",
            "interval": "1h",
            "open_time": utc_ms(2023, 12, 16, 9, 0),
            **BAR_2023,
        }
    ]


def test_mark_kline_uses_open_time() -> None:
    rows = mark_from_rest(load_payload("rest_mark_klines.json"), {"symbol": "ONE-USDT", "interval": "1m"})
    assert rows == [
        {
            "symbol": "ONE-USDT",
            "interval": "1m",
            "open_time": utc_ms(2024, 1, 21, 7, 2),
            **BAR_2023,
        }
    ]


def test_mark_kline_accepts_time_instead_of_open_time() -> None:
    page = load_payload("rest_mark_klines.json")
    bar = page["data"][0]
    bar["time"] = str(bar.pop("openTime"))
    del bar["closeTime"]
    rows = mark_from_rest(page, {"symbol": "ONE-USDT", "interval": "1m"})
    assert rows[0]["open_time"] == utc_ms(2024, 1, 21, 7, 2)


def test_stream_kline_without_top_level_symbol_uses_the_topic() -> None:
    frame = load_payload("ws_kline_1m.json")
    del frame["s"]
    frame["dataType"] = "ETH-USDT@kline_1m"
    assert from_stream(frame)[0]["symbol"] == "ETH-USDT"


def test_stream_kline_data_may_be_an_object_with_json_numbers() -> None:
    frame = load_payload("ws_kline_1m.json")
    frame["data"] = {
        "c": 121697.7,
        "o": 121684.1,
        "h": 121697.7,
        "l": 121638.7,
        "v": 5.8244,
        "T": "1759997460000",
    }
    assert from_stream(frame) == from_stream(load_payload("ws_kline_1m.json"))


def test_legacy_single_object_rest_kline_is_one_row() -> None:
    page = load_payload("rest_klines.json")
    page["data"] = page["data"][0]
    assert len(from_rest(page, {"symbol": "ONE-USDT", "interval": "1h"})) == 1


def test_kline_data_null_means_no_rows() -> None:
    assert from_rest({"code": 0, "msg": "", "data": None}, {"symbol": "X-USDT", "interval": "1m"}) == []


def test_a_rest_bar_without_a_time_names_the_field() -> None:
    page = load_payload("rest_mark_klines.json")
    del page["data"][0]["openTime"]
    with pytest.raises(ConversionError) as raised:
        mark_from_rest(page, {"symbol": "ONE-USDT", "interval": "1m"})
    assert str(raised.value) == "mark_klines rest: field 'openTime' (or 'time') is missing"


def test_a_stream_bar_with_an_empty_close_names_the_field() -> None:
    frame = load_payload("ws_kline_1m.json")
    frame["data"][0]["c"] = ""
    with pytest.raises(ConversionError) as raised:
        from_stream(frame)
    assert str(raised.value) == "klines stream: field 'c' is ''"


def test_interval_missing_from_the_query_is_a_conversion_error() -> None:
    with pytest.raises(ConversionError, match="klines rest: the query has no 'interval'"):
        from_rest(load_payload("rest_klines.json"), {"symbol": "ONE-USDT"})


@pytest.mark.parametrize("dataset", [KLINES, MARK_KLINES], ids=lambda d: d.name)
def test_kline_datasets_partition_by_interval_and_expose_is_final(dataset: Dataset) -> None:
    assert dataset.partitions == ("symbol", "interval")
    (expression,) = dataset.view_columns
    assert expression.endswith(" AS is_final")


def test_is_final_marks_backfill_bars_and_all_but_the_latest_stream_bar() -> None:
    import duckdb
    import pyarrow as pa

    received_at = datetime(2025, 10, 9, 9, 0, tzinfo=UTC)
    frames = [("kline_1m", 1759997460000), ("kline_1m", 1759997520000), ("kline_3m", 1759997460000)]
    rows = []
    for channel, open_ms in frames:
        frame = load_payload("ws_kline_1m.json")
        frame["dataType"] = f"BTC-USDT@{channel}"
        frame["data"][0]["T"] = open_ms
        rows += [{**row, "received_at": received_at, "source": "stream"} for row in from_stream(frame)]
    rest = from_rest(load_payload("rest_klines.json"), {"symbol": "BTC-USDT", "interval": "1m"})
    rows += [{**row, "received_at": received_at, "source": "backfill"} for row in rest]
    table = pa.Table.from_pylist(rows, schema=KLINES.schema).append_column(
        "date", pa.array(["2025-10-09"] * len(rows))
    )
    (expression,) = KLINES.view_columns
    with duckdb.connect() as con:
        con.register("deduped", table)
        result = con.sql(
            f'SELECT "interval", epoch_ms(open_time) AS ms, source, {expression} FROM deduped ORDER BY ALL'
        ).to_arrow_table()
    assert result.to_pylist() == [
        {"interval": "1m", "ms": 1702717200000, "source": "backfill", "is_final": True},
        {"interval": "1m", "ms": 1759997460000, "source": "stream", "is_final": True},
        {"interval": "1m", "ms": 1759997520000, "source": "stream", "is_final": False},
        {"interval": "3m", "ms": 1759997460000, "source": "stream", "is_final": False},
    ]
