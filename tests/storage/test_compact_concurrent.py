"""A reader loops over every view while a recorder, a backfill and compaction write to the same partitions:
it never errors, a finished partition's count never changes, and a growing one's never goes down.

Old files are deleted only at the end of their grace period; the reader runs within it (a fake clock), since
plain files have no snapshot isolation: a query that listed a file but had not opened it when the grace
ended would fail (README, "Compaction")."""

from __future__ import annotations

import random
import threading
from datetime import date
from pathlib import Path

import pytest

from schemas import DATASETS
from storage import layout
from storage.compact import compact
from storage.errors import LeaseHeld
from storage.lake import Lake
from storage.views import connect
from tests.storage.lakes import TRADES, settled, trades

SEED = 31
GRACE_S = 600.0
STEPS = 20  # writes per writer: enough to overlap the compactions, few enough to keep queries quick


@pytest.mark.slow
def test_a_reader_sees_stable_counts_while_recorder_backfill_and_compaction_write(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    lake = Lake(tmp_path)
    seals = [trades(rng, 0, 50, seal) for seal in range(4)]  # day 0: finished facts
    backfill = [settled(rows, 0.4, rng) for rows in seals]
    for rows, history in zip(seals, backfill, strict=True):
        lake.write(TRADES, rows, combined=True)
        lake.write(TRADES, history)
    with connect(tmp_path) as con:
        (finished,) = con.sql("SELECT count(*) FROM trades WHERE date = '2024-06-01'").fetchall()[0]
    stop = threading.Event()
    errors: list[BaseException] = []
    swaps = [0]  # compactions whose outputs appeared while the reader ran
    now = [0.0]

    def keep(target: object) -> threading.Thread:
        def run() -> None:
            try:
                step = 0
                while not stop.is_set() and step < STEPS:
                    target(step)  # type: ignore[operator]
                    step += 1
            except BaseException as error:  # reported by the main thread
                errors.append(error)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def record(step: int) -> None:  # replays of day 0 and new facts for day 1, as seals
        lake.write(TRADES, seals[step % 4], combined=True)
        lake.write(TRADES, trades(random.Random(step), 1, 10, 1000 + step), combined=True)

    def rerun_backfill(step: int) -> None:  # a backfill re-run writes the same history again
        lake.write(TRADES, backfill[step % 4])

    def compactor(step: int) -> None:
        try:
            done = compact(lake, [TRADES], date(2030, 1, 1), grace_s=GRACE_S, clock=lambda: now[0])
            swaps[0] += len(done.days)
        except LeaseHeld:
            pass
        stop.wait(0.05)

    threads = [keep(record), keep(rerun_backfill), keep(compactor)]
    growing = 0
    try:
        with connect(tmp_path) as con:
            loop = 0
            while loop < 10 or swaps[0] < 2:  # until both days were swapped under the reader
                loop += 1
                assert loop < 2000, f"seed {SEED}: compaction did nothing"
                for name in DATASETS:
                    con.sql(f"SELECT count(*) FROM {name}").fetchall()
                (day0,) = con.sql("SELECT count(*) FROM trades WHERE date = '2024-06-01'").fetchall()[0]
                (day1,) = con.sql("SELECT count(*) FROM trades WHERE date = '2024-06-02'").fetchall()[0]
                assert day0 == finished, f"seed {SEED}, loop {loop}"
                assert day1 >= growing, f"seed {SEED}, loop {loop}"
                growing = day1
                assert not errors, f"seed {SEED}: {errors[0]!r}"
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not errors, f"seed {SEED}: {errors[0]!r}"
    now[0] += 2 * GRACE_S  # the grace is over: the next two runs delete the old files and merge the rest
    compact(lake, [TRADES], date(2030, 1, 1), grace_s=GRACE_S, clock=lambda: now[0])
    compact(lake, [TRADES], date(2030, 1, 1), grace_s=0)
    with connect(tmp_path) as con:
        assert con.sql("SELECT count(*) FROM trades WHERE date = '2024-06-01'").fetchall() == [(finished,)]
    assert all(layout.is_compacted(str(path)) for path in (tmp_path / "trades").rglob("*.parquet"))
