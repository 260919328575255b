"""LakeBatch: rows appended over a while appear together on close, one file per partition, with row groups
spilled to hidden files in between (bounded memory); an abandoned batch leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage.errors import SchemaMismatch
from storage.lake import Lake
from storage.validation import table_from_rows
from tests.storage.samples import BARS, EVENTS, bar


def _all_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def _chunks(symbols: tuple[str, ...], minutes: int) -> list[pa.Table]:
    """One table per minute, each holding that minute's bar of every symbol (both days of T0 are hit)."""
    return [
        table_from_rows(BARS, [bar(minute, 100.0 + minute, "stream", minute, symbol) for symbol in symbols])
        for minute in range(minutes)
    ]


def test_nothing_appears_until_close_then_one_file_per_partition_with_every_row(lake: Path) -> None:
    batch = Lake(lake).batch(spill_bytes=1)  # spill every append: row groups go to hidden files
    for chunk in _chunks(("BTC-USDT", "ETH-USDT"), 4):
        batch.append(BARS, chunk)
    hidden = _all_files(lake)
    assert hidden and all(path.name.startswith(".") and path.name.endswith(".partial") for path in hidden)
    paths = batch.close()
    assert sorted(Path(p) for p in paths) == _all_files(lake)  # the partials became these, nothing else
    folders = [Path(p).relative_to(lake).parent.as_posix() for p in paths]
    assert sorted(folders) == [
        f"bars/symbol={symbol}/interval=1m/date={day}"
        for symbol in ("BTC-USDT", "ETH-USDT")
        for day in ("2024-06-01", "2024-06-02")
    ]
    for path in paths:
        file = pq.ParquetFile(path)
        assert file.metadata.num_row_groups == 2  # minutes 0-1 before midnight, 2-3 after: one per append
    closes = sorted((row["open_time"], row["close"]) for p in paths for row in pq.read_table(p).to_pylist())
    assert [close for _, close in closes] == [100.0, 100.0, 101.0, 101.0, 102.0, 102.0, 103.0, 103.0]


def test_rows_below_the_spill_size_become_one_row_group_per_file(lake: Path) -> None:
    with Lake(lake).batch() as batch:
        for chunk in _chunks(("BTC-USDT",), 2):
            batch.append(BARS, chunk)
    (path,) = batch.paths  # minutes 0 and 1 are both before midnight
    assert pq.ParquetFile(path).metadata.num_row_groups == 1
    assert pq.read_table(path).num_rows == 2


def test_several_datasets_in_one_batch_appear_together(lake: Path) -> None:
    received = bar(0, 1.0, "stream", 0)["received_at"]
    event = {"connection": "c1", "seq": 1, "event": "connect", "received_at": received, "source": "stream"}
    with Lake(lake).batch() as batch:
        batch.append(BARS, _chunks(("BTC-USDT",), 1)[0])
        batch.append(EVENTS, table_from_rows(EVENTS, [event]))
    assert sorted(Path(p).relative_to(lake).parts[0] for p in batch.paths) == ["bars", EVENTS.name]


def test_an_exception_abandons_the_batch_and_deletes_its_hidden_files(lake: Path) -> None:
    with pytest.raises(RuntimeError), Lake(lake).batch(spill_bytes=1) as batch:
        batch.append(BARS, _chunks(("BTC-USDT",), 1)[0])
        assert _all_files(lake)  # a spilled row group sits in a hidden file
        raise RuntimeError("the converter failed")
    assert _all_files(lake) == []


def test_a_bad_table_is_refused_at_append_and_the_batch_still_closes(lake: Path) -> None:
    batch = Lake(lake).batch()
    batch.append(BARS, _chunks(("BTC-USDT",), 1)[0])
    with pytest.raises(SchemaMismatch, match="bars"):
        batch.append(BARS, pa.table({"symbol": ["BTC-USDT"], "bogus": [1]}))
    (path,) = batch.close()
    assert pq.read_table(path).num_rows == 1


def test_an_empty_batch_writes_nothing(lake: Path) -> None:
    with Lake(lake).batch() as batch:
        batch.append(BARS, _chunks(("BTC-USDT",), 1)[0].slice(0, 0))
    assert batch.paths == [] and _all_files(lake) == []


def test_on_open_names_each_hidden_file_and_discard_partials_deletes_only_those(lake: Path) -> None:
    opened: list[str] = []
    batch = Lake(lake).batch(spill_bytes=1, on_open=opened.append)
    for chunk in _chunks(("BTC-USDT", "ETH-USDT"), 1):
        batch.append(BARS, chunk)
    assert sorted(opened) == sorted(str(path) for path in _all_files(lake))  # every hidden file, named first
    finished = Lake(lake).write_table(BARS, _chunks(("SOL-USDT",), 1)[0])
    assert Lake(lake).discard_partials([*opened, *finished, f"{lake}/gone/.x.partial"]) == len(opened)
    assert [str(path) for path in _all_files(lake)] == finished  # a finished file is never deleted
    batch.abandon()  # closes what the test left open (a killed writer's files are closed by its death)
