"""Rebuild from raw_messages after a wrong converter: every value right, counts those of a right recording,
and a reader never sees a partition's old and new rows together."""

from __future__ import annotations

import random
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas import DATASETS
from schemas.dataset import Row
from storage.compact import compact
from storage.errors import RebuildError
from storage.lake import Lake
from storage.rebuild import rebuild
from storage.views import connect
from tests.storage.lakes import DAY0, SYMBOLS, TRADES, snapshot

RAW = DATASETS["raw_messages"]
SEED = 41
DAY = date(2024, 6, 1)


def _frames(rng: random.Random) -> list[tuple[int, dict[str, Any]]]:
    """(received µs, trade frame) pairs over day 0, the last one received after midnight."""
    frames = []
    start_ms = int(DAY0.timestamp() * 1000)
    for index in range(120):
        trade_ms = start_ms + rng.randint(0, 86_399_000) if index < 119 else start_ms + 86_399_990
        symbol = rng.choice(SYMBOLS)
        data = [
            {
                "q": str(rng.choice((1, 2))),
                "p": f"{100 + rng.randint(0, 9)}.5",
                "T": trade_ms,
                "m": rng.random() < 0.5,
            }
            for _ in range(rng.randint(1, 3))
        ]
        frames.append(((trade_ms + 20) * 1000, {"code": 0, "dataType": f"{symbol}@trade", "data": data}))
    return frames


def _wrong(message: dict[str, Any]) -> list[Row]:
    assert TRADES.from_stream is not None
    return [{**row, "price": row["price"] * 10} for row in TRADES.from_stream(message)]


def _record(root: Path | Lake, frames: list[tuple[int, dict[str, Any]]], convert: Any) -> Lake:
    """What the recorder writes: raw frames, the converter's rows (as seals), and a REST backfill of some."""
    lake = root if isinstance(root, Lake) else Lake(root)
    raw, rows = [], []
    for seq, (received, frame) in enumerate(frames):
        text = orjson.dumps(frame).decode()
        raw.append(
            {
                "connection": "c1",
                "seq": seq,
                "topic": frame["dataType"],
                "text": text,
                "received_at": received,
                "source": "stream",
            }
        )
        for row in convert(frame):
            rows.append({**row, "received_at": received, "source": "stream"})
    lake.write(RAW, raw)
    lake.write(TRADES, rows, combined=True)
    return lake


def _counts(root: Path) -> dict[str, int]:
    with connect(root) as con:
        return dict(con.sql("SELECT symbol, count(*) FROM trades GROUP BY symbol").fetchall())


@pytest.mark.slow
def test_rebuild_after_a_wrong_converter_gives_every_value_right_and_never_shows_both(tmp_path: Path) -> None:
    frames = _frames(random.Random(SEED))
    assert TRADES.from_stream is not None
    right = _record(tmp_path / "right", frames, TRADES.from_stream)
    lake = _record(tmp_path / "lake", frames, _wrong)
    compact(right, [TRADES], date(2030, 1, 1), grace_s=0)
    compact(lake, [TRADES], date(2030, 1, 1), grace_s=0)  # before the reader starts: deletes at once
    expected, wrong = snapshot(tmp_path / "right"), snapshot(tmp_path / "lake")
    assert expected != wrong and len(expected) == len(wrong)
    old, new = _counts(tmp_path / "lake"), _counts(tmp_path / "right")
    stop, seen, errors = threading.Event(), [], []

    def read() -> None:
        try:
            with connect(tmp_path / "lake") as con:
                while not stop.is_set():
                    counts = dict(con.sql("SELECT symbol, count(*) FROM trades GROUP BY symbol").fetchall())
                    seen.append(counts)
        except BaseException as error:
            errors.append(error)

    def until(count: int) -> None:
        deadline = time.monotonic() + 60
        while len(seen) < count and not errors and time.monotonic() < deadline:
            time.sleep(0.01)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    until(2)
    try:
        # The old compacted files stay for the grace (a fake clock): the reader may have listed them.
        done = rebuild(lake, TRADES, DAY, date(2024, 6, 2), grace_s=600, clock=lambda: 0.0)
        until(len(seen) + 2)
    finally:
        stop.set()
        reader.join(30)
    assert not errors, f"seed {SEED}: {errors[0]!r}"
    assert done.derived == len(expected) and done.partitions == len(SYMBOLS)
    assert snapshot(tmp_path / "lake") == expected, f"seed {SEED}"
    for counts in seen:  # each partition shows its old rows or its new ones: never both, never neither
        assert counts.keys() == old.keys(), f"seed {SEED}: {counts}"
        assert all(counts[symbol] in (old[symbol], new[symbol]) for symbol in counts), (
            f"seed {SEED}: {counts}"
        )
    assert seen and seen[-1] == new
    again = rebuild(lake, TRADES, DAY, date(2024, 6, 2), grace_s=0)  # once the grace is over
    assert snapshot(tmp_path / "lake") == expected and again.derived == done.derived  # idempotent
    assert len(list((tmp_path / "lake" / "trades").rglob("*.parquet"))) == len(SYMBOLS)


def test_rebuild_keeps_the_backfill_rows_and_the_precedence(tmp_path: Path) -> None:
    frames = _frames(random.Random(SEED + 1))[:30]
    lake = _record(tmp_path, frames, _wrong)
    assert TRADES.from_stream is not None
    settled = [
        {
            **row,
            "trade_id": str(index),
            "quote_qty": row["price"] * row["qty"],
            "frame_index": None,
            "received_at": received + 10**9,
            "source": "backfill",
        }
        for index, (received, frame) in enumerate(frames[:10])
        for row in TRADES.from_stream(frame)[:1]
    ]
    lake.write(TRADES, settled)
    rebuild(lake, TRADES, DAY, date(2024, 6, 2), grace_s=0)
    with connect(tmp_path) as con:
        sources = dict(con.sql("SELECT source, count(*) FROM trades GROUP BY source").fetchall())
    stream_rows = sum(len(TRADES.from_stream(frame)) for _, frame in frames)
    assert sources == {"backfill": len(settled), "stream": stream_rows - len(settled)}


def test_rebuild_waits_for_a_compaction_within_its_grace(tmp_path: Path) -> None:
    lake = _record(tmp_path, _frames(random.Random(SEED))[:5], _wrong)
    with pytest.raises(RebuildError, match="run rebuild again after it"):
        rebuild(lake, TRADES, DAY, date(2024, 6, 2), grace_s=600)
    with pytest.raises(RebuildError, match="raw_messages has no stream converter"):
        rebuild(lake, RAW, DAY, date(2024, 6, 2))
