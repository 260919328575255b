"""Acceptance: what the simulator sent is what the views hold, per channel, exactly once."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from schemas import DATASETS, dataset_for_channel
from schemas.dataset import Dataset
from simulator import Simulator
from tests.conftest import as_ms
from tests.recorder.conftest import FAST, options, query, recording, wait_for

SYMBOLS = ["BTC-USDT", "ETH-USDT"]
CHANNELS = [
    "trade",
    "kline_1m",
    "depth20@500ms",
    "incrDepth",
    "ticker",
    "bookTicker",
    "markPrice",
    "lastPrice",
]
LINEAGE = {"received_at", "source", "date"}


def _row(row: dict[str, Any], columns: list[str]) -> tuple[Any, ...]:
    return tuple(tuple(row[c]) if isinstance(row[c], list) else as_ms(row[c]) for c in columns)


def _expected(dataset: Dataset, frames: list[Any]) -> Counter[tuple[Any, ...]]:
    """The view's rows as the ledger predicts them: converter output, one row per key (last sent wins)."""
    assert dataset.from_stream is not None
    columns = [c for c in dataset.columns if c not in LINEAGE]
    rows = [row for frame in frames for row in dataset.from_stream(frame.payload)]
    if dataset.occurrence or "received_at" in dataset.key:
        return Counter(_row(row, columns) for row in rows)  # every row is its own fact
    last = {tuple(row[c] for c in dataset.key): row for row in rows}
    return Counter(_row(row, columns) for row in last.values())


def _landed(lake: Path, dataset: Dataset) -> Counter[tuple[Any, ...]]:
    columns = [c for c in dataset.columns if c not in LINEAGE]
    rows = query(
        lake, f"SELECT {', '.join(repr(c).replace(chr(39), chr(34)) for c in columns)} FROM {dataset.name}"
    )
    return Counter(_row(row, columns) for row in rows)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Simulator]:
    data_dir = tmp_path_factory.mktemp("data")
    with Simulator(symbols=SYMBOLS, seed=11, trades_per_second=3.0, **FAST) as sim:
        topics = [f"{s}@{c}" for s in SYMBOLS for c in CHANNELS]
        with recording(data_dir, options(sim, SYMBOLS, CHANNELS, silence_timeout_s=30.0)) as recorder:
            wait_for(lambda: sum(len(c.acked) for c in recorder.connections) == len(topics))
            wait_for(lambda: all(sim.ledger.counts.get(t, 0) >= 2 for t in topics))
            time.sleep(1.0)
            sim.faults.stall(True)  # freeze what was sent before the recorder stops reading
            time.sleep(0.3)
        return data_dir / "lake", sim


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_channel_lands_exactly_what_was_sent(recorded: tuple[Path, Simulator], channel: str) -> None:
    lake, sim = recorded
    dataset = dataset_for_channel(channel)
    assert dataset is not None
    frames = [f for s in SYMBOLS for f in sim.ledger.frames(f"{s}@{channel}")]
    expected = _expected(dataset, frames)
    assert sum(expected.values()) > 0
    assert _landed(lake, dataset) == expected


def test_raw_messages_hold_every_sent_frame_once(recorded: tuple[Path, Simulator]) -> None:
    lake, sim = recorded
    sent = Counter(f.text for s in SYMBOLS for c in CHANNELS for f in sim.ledger.frames(f"{s}@{c}"))
    rows = query(lake, "SELECT text FROM raw_messages WHERE topic IS NOT NULL")
    assert Counter(row["text"] for row in rows) == sent
    keys = query(lake, "SELECT count(*) AS n, count(DISTINCT (connection, seq)) AS k FROM raw_messages")[0]
    assert keys["n"] == keys["k"]


def test_identical_looking_trades_are_all_kept(recorded: tuple[Path, Simulator]) -> None:
    lake, sim = recorded
    sent = [
        row
        for s in SYMBOLS
        for f in sim.ledger.frames(f"{s}@trade")
        for row in DATASETS["trades"].from_stream(f.payload)
    ]
    count = query(lake, "SELECT count(*) AS n FROM trades")[0]["n"]
    assert count == len(sent)


def test_stream_events_record_connect_and_every_ack(recorded: tuple[Path, Simulator]) -> None:
    lake, _ = recorded
    rows = query(lake, "SELECT event, topic FROM stream_events ORDER BY connection, seq")
    events = [r["event"] for r in rows]
    assert events[0] == "connect" and events[-1] == "disconnect"
    subscribed = sorted(r["topic"] for r in rows if r["event"] == "subscribed")
    assert subscribed == sorted(f"{s}@{c}" for s in SYMBOLS for c in CHANNELS)
