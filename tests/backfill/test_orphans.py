"""orphan_keys: the rows a killed run wrote past its cursor, found by the lake's backfill file names."""

from __future__ import annotations

from pathlib import Path

from backfill.orphans import orphan_keys
from schemas import DATASETS
from storage.lake import Lake
from tests.backfill.test_walk import bar

BASE_MS = 1_717_200_000_000  # 2024-06-01T00:00:00Z
MINUTE_MS = 60_000
KLINES = DATASETS["klines"]


def minutes(*offsets: int) -> list[int]:
    return [BASE_MS + offset * MINUTE_MS for offset in offsets]


def write_file(lake: Lake, opens: list[int], source: str = "backfill", symbol: str = "BTC-USDT") -> None:
    rows = [{**bar(ms), "source": source, "symbol": symbol} for ms in opens]
    assert len(lake.write(KLINES, rows)) == 1


def test_files_whose_first_bar_lies_in_a_gap_give_all_their_keys(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    write_file(lake, minutes(0, 1, 2))  # covered by the cursor: not an orphan
    write_file(lake, minutes(10, 11, 12))  # starts in the gap; 12 is past it but still in this file
    gaps = [(BASE_MS + 10 * MINUTE_MS, BASE_MS + 12 * MINUTE_MS)]
    assert orphan_keys(lake, "klines", "BTC-USDT", "1m", gaps, "open_time") == set(minutes(10, 11, 12))


def test_a_gap_is_half_open_a_file_starting_at_its_end_is_not_an_orphan(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    write_file(lake, minutes(5))
    write_file(lake, minutes(20))
    gaps = [(BASE_MS + 5 * MINUTE_MS, BASE_MS + 20 * MINUTE_MS)]
    assert orphan_keys(lake, "klines", "BTC-USDT", "1m", gaps, "open_time") == set(minutes(5))


def test_every_gap_is_searched(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    for start in (0, 30, 60):
        write_file(lake, minutes(start, start + 1))
    gaps = [(BASE_MS, BASE_MS + MINUTE_MS), (BASE_MS + 60 * MINUTE_MS, BASE_MS + 61 * MINUTE_MS)]
    assert orphan_keys(lake, "klines", "BTC-USDT", "1m", gaps, "open_time") == set(minutes(0, 1, 60, 61))


def test_other_sources_symbols_and_intervals_are_not_orphans(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    write_file(lake, minutes(3), source="stream")
    write_file(lake, minutes(4), symbol="ETH-USDT")
    write_file(lake, minutes(6))
    gaps = [(BASE_MS, BASE_MS + 10 * MINUTE_MS)]
    assert orphan_keys(lake, "klines", "BTC-USDT", "1m", gaps, "open_time") == set(minutes(6))
    assert orphan_keys(lake, "klines", "BTC-USDT", "5m", gaps, "open_time") == set()


def test_a_series_never_written_has_no_orphans(tmp_path: Path) -> None:
    gaps = [(BASE_MS, BASE_MS + MINUTE_MS)]
    assert orphan_keys(Lake(tmp_path / "lake"), "klines", "BTC-USDT", "1m", gaps, "open_time") == set()


def test_an_unfinished_file_is_not_read(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    write_file(lake, minutes(2))
    (written,) = (tmp_path / "lake").rglob("*.parquet")
    written.rename(written.with_name(f".{written.name}.partial"))
    gaps = [(BASE_MS, BASE_MS + 10 * MINUTE_MS)]
    assert orphan_keys(lake, "klines", "BTC-USDT", "1m", gaps, "open_time") == set()
