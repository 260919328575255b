"""Cursors (covered ranges), series locks and argument parsing: the bookkeeping around the pager."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backfill.arguments import parse_intervals, parse_symbols, parse_time, parse_window
from backfill.cursor import Cursor, load, merged, save
from backfill.lock import SeriesLock
from storage.state import State

spans = st.lists(st.tuples(st.integers(0, 200), st.integers(0, 200)), max_size=8)


@settings(max_examples=300, deadline=None)
@given(covered=spans, start=st.integers(0, 220), length=st.integers(0, 220))
def test_gaps_are_exactly_the_uncovered_part_of_the_window(
    covered: list[tuple[int, int]], start: int, length: int
) -> None:
    cursor = Cursor()
    for span in covered:
        cursor.add(span)
    end = start + length
    gaps = cursor.gaps(start, end)
    in_gaps = {t for low, high in gaps for t in range(low, high)}
    in_covered = {t for low, high in covered for t in range(low, high)}
    assert in_gaps == set(range(start, end)) - in_covered
    assert gaps == merged(gaps)  # sorted, disjoint, non-adjacent, non-empty
    cursor.add((start, end))
    assert cursor.gaps(start, end) == []


def test_a_cursor_survives_a_round_trip_through_state(tmp_path: Path) -> None:
    state = State(tmp_path)
    cursor = Cursor([(0, 10), (20, 30)], resume_ms=30, resume_id=77)
    save(state, "backfill/trades/BTC-USDT/-", cursor)
    again = load(state, "backfill/trades/BTC-USDT/-")
    assert again == cursor
    assert again.resume_id_at(30) == 77
    assert again.resume_id_at(29) is None
    assert load(state, "backfill/trades/ETH-USDT/-") == Cursor()


def test_a_held_lock_is_refused_and_released_on_exit(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "klines.BTC-USDT.1m.lock"
    with SeriesLock(path) as first:
        assert first.acquired
        with SeriesLock(path) as second:
            assert not second.acquired
            assert second.owner == os.getpid()
    assert not path.exists()
    with SeriesLock(path) as third:
        assert third.acquired


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    path = tmp_path / "series.lock"
    path.write_text(dead.stdout.decode().strip())
    with SeriesLock(path) as lock:
        assert lock.acquired
        assert path.read_text() == str(os.getpid())


def test_times_parse_as_utc_dates_or_epoch_milliseconds() -> None:
    assert parse_time("2024-06-01", "--since") == 1_717_200_000_000
    assert parse_time("1717200000000", "--since") == 1_717_200_000_000
    assert parse_time("2024-06-01T01:00", "--since") == 1_717_203_600_000
    with pytest.raises(ValueError, match=r"^--since 'yesterday': expected YYYY-MM-DD or epoch milliseconds$"):
        parse_time("yesterday", "--since")


def test_bad_arguments_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="--since 2024-06-02 is not before --until 2024-06-01"):
        parse_window("2024-06-02", "2024-06-01")
    with pytest.raises(ValueError, match="unknown interval 2m: choose from 1m, 3m"):
        parse_intervals("1m,2m", True, "klines")
    with pytest.raises(ValueError, match="--interval does not apply to funding"):
        parse_intervals("1h", False, "funding")
    with pytest.raises(ValueError, match="expected names like BTC-USDT"):
        parse_symbols("btcusdt")
    assert parse_symbols("all") is None
    assert parse_symbols("BTC-USDT,ETH-USDT,BTC-USDT") == ["BTC-USDT", "ETH-USDT"]
    assert parse_intervals(None, True, "klines") == ("1m",)
