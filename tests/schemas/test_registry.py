"""Every dataset in the registry is consistent, has payload files, and converts into its own Arrow schema."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from schemas import DATASETS, dataset_for_channel
from schemas.dataset import INTERVALS, LINEAGE, MS, Dataset, Row
from tests.conftest import PAYLOADS, load_payload

NAMES = [
    "trades",
    "klines",
    "mark_klines",
    "funding_rates",
    "premium_index",
    "open_interest",
    "depth_snapshots",
    "book_updates",
    "book_snapshots",
    "tickers",
    "book_tickers",
    "mark_prices",
    "last_prices",
    "contracts",
    "stream_events",
    "raw_messages",
    "income",
    "balances",
    "positions",
    "commission_rates",
    "account_updates",
    "order_updates",
    "account_config_updates",
]
# REST payload file -> (dataset, the query that would have produced it)
REST_PAYLOADS: dict[str, tuple[str, dict[str, Any]]] = {
    "rest_trades.json": ("trades", {"symbol": "BTC-USDT", "limit": 100}),
    "rest_trades_fill_id.json": ("trades", {"symbol": "BTC-USDT"}),
    "rest_historical_trades.json": ("trades", {"symbol": "ETH-USDT", "fromId": 8179911}),
    "rest_klines.json": ("klines", {"symbol": "ONE-USDT", "interval": "1h", "startTime": 1702717199998}),
    "rest_mark_klines.json": ("mark_klines", {"symbol": "ONE-USDT", "interval": "1m"}),
    "rest_funding_rate.json": ("funding_rates", {"symbol": "QNT-USDT"}),
    "rest_premium_index.json": ("premium_index", {"symbol": "BTC-USDT"}),
    "rest_open_interest.json": ("open_interest", {"symbol": "EOS-USDT"}),
    "rest_depth.json": ("depth_snapshots", {"symbol": "SHIB-USDT", "limit": 5}),
    "rest_ticker.json": ("tickers", {"symbol": "SFP-USDT"}),
    "rest_book_ticker.json": ("book_tickers", {"symbol": "BTC-USDT"}),
    "rest_price.json": ("last_prices", {"symbol": "TIA-USDT"}),
    "rest_contracts.json": ("contracts", {}),
    "rest_income.json": ("income", {"startTime": 1768900000000, "endTime": 1769300000000}),
    "rest_balance.json": ("balances", {}),
    "rest_positions.json": ("positions", {}),
    "rest_commission_rate.json": ("commission_rates", {}),
}


def _is_data_frame(message: Any) -> bool:
    # BINGX_API.md §17 routing: a server frame with a non-empty dataType is data (a subscribe request is not)
    return isinstance(message, Mapping) and bool(message.get("dataType")) and "reqType" not in message


STREAM_PAYLOADS = sorted(
    path.name for path in PAYLOADS.glob("ws_*.json") if _is_data_frame(load_payload(path.name))
)
RECEIVED_AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _channel(name: str) -> str:
    return str(load_payload(name)["dataType"]).partition("@")[2]


def test_the_registry_holds_every_dataset_once_under_its_own_name() -> None:
    assert list(DATASETS) == NAMES
    assert all(name == dataset.name for name, dataset in DATASETS.items())


@pytest.mark.parametrize("dataset", DATASETS.values(), ids=lambda d: d.name)
def test_declaration_is_consistent(dataset: Dataset) -> None:
    columns = dataset.columns
    assert len(set(columns)) == len(columns), "duplicate column"
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", column) for column in columns)
    assert set(dataset.key) <= set(columns)
    assert set(dataset.partitions) <= set(columns)
    assert pa.types.is_timestamp(dataset.schema.field(dataset.event_time).type)
    assert dataset.schema.field(dataset.event_time).type.tz == "UTC"
    assert all(field.name not in {f.name for f in dataset.fields} for field in LINEAGE)
    for columns_of_copy in (dataset.replay_key or {}).values():
        assert set(columns_of_copy) <= set(columns)
    assert dataset.occurrence == (dataset.replay_key is not None)
    assert all(re.search(r" AS [a-z_]+$", expression) for expression in dataset.view_columns)
    assert (dataset.channel is None) == (dataset.from_stream is None)
    assert (dataset.rest_path is None) == (dataset.from_rest is None)
    assert dataset.description and "\n" not in dataset.description and "|" not in dataset.description


def test_every_stream_dataset_matches_a_recorded_topic() -> None:
    assert len(STREAM_PAYLOADS) == 9  # trade, kline, depth, incrDepth x2, ticker, bookTicker, mark, last
    channels = [_channel(name) for name in STREAM_PAYLOADS]
    for dataset in DATASETS.values():
        if dataset.channel is not None:
            assert any(dataset.matches(channel) for channel in channels), dataset.name


@pytest.mark.parametrize("name", STREAM_PAYLOADS)
def test_every_recorded_topic_lands_in_exactly_one_dataset(name: str) -> None:
    channel = _channel(name)
    assert [d.name for d in DATASETS.values() if d.matches(channel)] == [dataset_for_channel(channel).name]  # type: ignore[union-attr]


def test_every_rest_dataset_has_a_payload_file() -> None:
    covered = {dataset for dataset, _ in REST_PAYLOADS.values()}
    assert covered == {d.name for d in DATASETS.values() if d.from_rest is not None}
    assert all((PAYLOADS / name).exists() for name in REST_PAYLOADS)


@pytest.mark.parametrize(
    ("channel", "name"),
    [
        *((f"kline_{interval}", "klines") for interval in INTERVALS),
        *(
            (f"depth{n}{suffix}", "depth_snapshots")
            for n in (5, 10, 20, 50, 100)
            for suffix in ("", "@200ms", "@500ms")
        ),
        ("trade", "trades"),
        ("incrDepth", "book_updates"),
        ("ticker", "tickers"),
        ("bookTicker", "book_tickers"),
        ("markPrice", "mark_prices"),
        ("lastPrice", "last_prices"),
    ],
)
def test_channels_route_to_their_dataset(channel: str, name: str) -> None:
    assert dataset_for_channel(channel) is DATASETS[name]


@pytest.mark.parametrize(
    "channel", ["kline_2m", "kline_", "depth30@200ms", "depth5@fast", "trades", "Ticker", "", "nope"]
)
def test_unknown_channels_route_nowhere(channel: str) -> None:
    assert dataset_for_channel(channel) is None


def _rows(name: str) -> tuple[Dataset, list[Row]]:
    """Convert one payload file with the dataset it belongs to."""
    if name in REST_PAYLOADS:
        dataset_name, query = REST_PAYLOADS[name]
        dataset = DATASETS[dataset_name]
        assert dataset.from_rest is not None
        return dataset, dataset.from_rest(load_payload(name), query)
    found = dataset_for_channel(_channel(name))
    assert found is not None and found.from_stream is not None
    return found, found.from_stream(load_payload(name))


@pytest.mark.parametrize("name", [*STREAM_PAYLOADS, *REST_PAYLOADS])
def test_converter_output_builds_an_arrow_table_of_the_dataset_schema(name: str) -> None:
    dataset, rows = _rows(name)
    assert rows, f"{name} gave no rows"
    for row in rows:
        row["received_at"] = RECEIVED_AT
        row["source"] = "stream" if name.startswith("ws_") else "backfill"
        assert set(row) == set(dataset.columns), f"{name}: columns differ from the schema"
        for field in dataset.schema:
            assert field.nullable or row[field.name] is not None, f"{name}: {field.name} is null"
    table = pa.Table.from_pylist(rows, schema=dataset.schema)
    table.validate(full=True)
    assert table.num_rows == len(rows)
    assert table.to_pylist() == [_landed(dataset, row) for row in rows]


def _landed(dataset: Dataset, row: Row) -> Row:
    """A row as the lake gives it back: times converters carry as epoch ms come back as UTC datetimes."""
    times = {field.name for field in dataset.fields if field.type == MS}
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return {
        name: epoch + timedelta(milliseconds=value) if name in times and value is not None else value
        for name, value in row.items()
    }


def test_every_payload_file_is_described_in_the_readme() -> None:
    readme = (PAYLOADS / "README.md").read_text()
    files = sorted(path.name for path in PAYLOADS.iterdir() if path.suffix in {".json", ".txt"})
    assert [name for name in files if f"`{name}`" not in readme] == []


def test_every_stream_payload_is_json_with_a_dict_shape() -> None:
    for name in STREAM_PAYLOADS:
        assert isinstance(load_payload(name), Mapping)


def test_payload_directory_is_the_one_conftest_serves() -> None:
    assert Path(PAYLOADS).is_dir() and (PAYLOADS / "README.md").exists()


@pytest.mark.parametrize("name", REST_PAYLOADS)
def test_every_rest_converter_accepts_code_as_a_string_and_null_data(name: str) -> None:
    dataset_name, query = REST_PAYLOADS[name]
    convert = DATASETS[dataset_name].from_rest
    assert convert is not None
    page = load_payload(name)
    expected = convert(page, query)
    page["code"] = "0"
    assert convert(page, query) == expected
    assert convert({"code": 0, "msg": "", "data": None}, query) == []


@pytest.mark.parametrize("name", STREAM_PAYLOADS)
def test_every_stream_converter_gives_no_rows_for_null_data(name: str) -> None:
    frame = load_payload(name)
    frame["data"] = None
    dataset = dataset_for_channel(_channel(name))
    assert dataset is not None and dataset.from_stream is not None
    assert dataset.from_stream(frame) == []


@pytest.mark.parametrize("name", [*STREAM_PAYLOADS, *REST_PAYLOADS])
def test_a_string_where_the_data_object_belongs_is_a_one_line_conversion_error(name: str) -> None:
    from schemas.dataset import ConversionError

    message = load_payload(name)
    message["data"] = "garbage"
    dataset, _ = _rows(name)
    with pytest.raises(ConversionError) as raised:
        if name.startswith("ws_"):
            assert dataset.from_stream is not None
            dataset.from_stream(message)
        else:
            assert dataset.from_rest is not None
            dataset.from_rest(message, REST_PAYLOADS[name][1])
    assert str(raised.value).startswith(dataset.name) and "\n" not in str(raised.value)
