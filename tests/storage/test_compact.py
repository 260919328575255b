"""Compaction: one file per partition holding exactly the view's rows, the rest moved aside, and the views
unchanged before, during and after, also with late rows and a second compactor."""

from __future__ import annotations

import random
import time
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from storage import compact as compact_module
from storage import layout
from storage.compact import compact
from storage.errors import LeaseHeld
from storage.lease import Lease
from tests.storage.lakes import KLINES, TRADES, bars, build, settled, snapshot, trades

LATER = date(2030, 1, 1)


def _rows(paths: list[str]) -> int:
    return sum(pq.ParquetFile(path).metadata.num_rows for path in paths)


def _stored(root: Path, folder: str) -> list[str]:
    return sorted(str(path) for path in (root / folder).rglob("*.parquet"))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_compaction_keeps_exactly_the_view_rows_and_moves_the_others_aside(tmp_path: Path, seed: int) -> None:
    lake = build(tmp_path, seed)
    before = {name: snapshot(tmp_path, name) for name in ("trades", "klines")}
    written = {name: _rows(_stored(tmp_path, name)) for name in ("trades", "klines")}
    compact(lake, [TRADES, KLINES], LATER, grace_s=0)
    assert {name: snapshot(tmp_path, name) for name in before} == before, f"seed {seed}"
    for name in before:
        files = _stored(tmp_path, name)
        assert all(layout.is_compacted(path) for path in files)
        folders = [path.rsplit("/", 1)[0] for path in files]
        assert len(folders) == len(set(folders)) == 3 * 2  # one file per symbol x day
        assert _rows(files) == len(before[name])  # the raw row count is the view's
        aside = _stored(tmp_path / layout.SUPERSEDED, name)
        assert _rows(files) + _rows(aside) == written[name]  # nothing recorded is lost


def test_a_compacted_file_holds_row_groups_of_the_file_size_not_of_the_read_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One dictionary per column per row group: small groups (one per batch read) cost bytes on busy days.
    monkeypatch.setattr(compact_module, "ROW_GROUP", 8)  # rows per batch read from DuckDB
    monkeypatch.setattr(compact_module, "FILE_ROW_GROUP", 30)
    lake = build(tmp_path, 5)
    before = snapshot(tmp_path)
    compact(lake, [TRADES], LATER, grace_s=0)
    assert snapshot(tmp_path) == before
    checked = 0
    for path in _stored(tmp_path, "trades"):
        meta = pq.ParquetFile(path).metadata
        groups = [meta.row_group(index).num_rows for index in range(meta.num_row_groups)]
        assert all(rows >= 30 for rows in groups[:-1]) and sum(groups) == meta.num_rows, (path, groups)
        checked += len(groups) > 1
    assert checked  # some partition was large enough to need several groups


def test_old_files_stay_for_the_grace_period_while_the_views_show_the_same_rows(tmp_path: Path) -> None:
    lake = build(tmp_path, 4)
    before = snapshot(tmp_path)
    now = [1_000.0]
    first = compact(lake, [TRADES], LATER, grace_s=60, clock=lambda: now[0])
    assert first.pending == ["trades 2024-06-01", "trades 2024-06-02"] and first.files_removed == 0
    old = [path for path in _stored(tmp_path, "trades") if not layout.is_compacted(path)]
    assert old and snapshot(tmp_path) == before  # compacted and old files side by side: no double count
    now[0] += 59
    assert compact(lake, [TRADES], LATER, grace_s=60, clock=lambda: now[0]).files_removed == 0
    now[0] += 2
    assert compact(lake, [TRADES], LATER, grace_s=60, clock=lambda: now[0]).files_removed == len(old)
    assert all(layout.is_compacted(path) for path in _stored(tmp_path, "trades"))
    assert snapshot(tmp_path) == before
    assert compact(lake, [TRADES], LATER, grace_s=0).days == []  # idempotent: nothing left to do


def test_rows_arriving_after_compaction_land_as_new_files_and_the_next_run_merges_them(
    tmp_path: Path,
) -> None:
    compacted, control = build(tmp_path / "a", 5), build(tmp_path / "b", 5)
    compact(compacted, [TRADES, KLINES], LATER, grace_s=0)
    rng = random.Random(55)
    late = trades(rng, 0, 40, seal=9)
    late_bars = [{**row, "received_at": row["received_at"] + 10**9} for row in bars(rng, 1, "backfill", 1)]
    for lake in (compacted, control):
        lake.write(TRADES, late, combined=True)  # a late seal
        lake.write(TRADES, settled(late, 0.5, random.Random(56)))  # a late backfill of it
        lake.write(TRADES, late[:5], combined=True)  # and a replay
        lake.write(KLINES, late_bars)  # a late kline backfill, received after the first
    for name in ("trades", "klines"):
        assert snapshot(tmp_path / "a", name) == snapshot(tmp_path / "b", name)
    compact(compacted, [TRADES, KLINES], LATER, grace_s=0)
    for name in ("trades", "klines"):
        assert snapshot(tmp_path / "a", name) == snapshot(tmp_path / "b", name)
        files = _stored(tmp_path / "a", name)
        assert all(layout.is_compacted(path) for path in files)
        assert _rows(files) == len(snapshot(tmp_path / "b", name))


def test_only_days_before_the_cut_are_compacted(tmp_path: Path) -> None:
    lake = build(tmp_path, 6)
    summary = compact(lake, [TRADES], date(2024, 6, 2), grace_s=0)
    assert [line.split(":")[0] for line in summary.days] == ["trades 2024-06-01"]
    assert any(
        "date=2024-06-02" in path and not layout.is_compacted(path) for path in _stored(tmp_path, "trades")
    )


def test_a_dry_run_lists_the_days_and_writes_nothing(tmp_path: Path) -> None:
    lake = build(tmp_path, 7)
    files = _stored(tmp_path, "trades")
    summary = compact(lake, [TRADES], LATER, dry_run=True)
    assert [line.split(":")[0] for line in summary.days] == ["trades 2024-06-01", "trades 2024-06-02"]
    assert _stored(tmp_path, "trades") == files and not (tmp_path / layout.CONTROL).exists()


def test_a_second_compactor_is_refused_while_the_lease_is_held_and_takes_it_once_expired(
    tmp_path: Path,
) -> None:
    lake = build(tmp_path, 8, days=1, seals=1)
    now = [0.0]
    holder = Lease(lake, ttl_s=30, clock=lambda: now[0])
    holder.acquire()
    with pytest.raises(LeaseHeld, match="holds the maintenance lease for 30s more"):
        compact(lake, [TRADES], LATER, grace_s=0, clock=lambda: now[0])
    now[0] = 31.0  # the holder died without releasing
    assert compact(lake, [TRADES], LATER, grace_s=0, clock=lambda: now[0]).days
    with pytest.raises(LeaseHeld, match="taken over"):
        holder.renew()


def test_the_background_compactor_compacts_closed_days_and_stops_when_asked(tmp_path: Path) -> None:
    from storage.compact import Compactor

    lake = build(tmp_path, 10)
    before = snapshot(tmp_path)
    compactor = Compactor(lake, every_s=0.01, older_than_s=3600, grace_s=0)
    compactor.start()
    deadline = time.monotonic() + 60
    while compactor.rounds < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    compactor.stop()
    assert compactor.rounds >= 1
    assert all(
        layout.is_compacted(path) for path in _stored(tmp_path, "trades") + _stored(tmp_path, "klines")
    )
    assert snapshot(tmp_path) == before
