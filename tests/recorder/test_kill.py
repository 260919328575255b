"""kill -9 of a real `bingx-recorder record` at a random moment, then a restart: nothing lost or doubled."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas import DATASETS
from simulator import Simulator
from tests.conftest import as_ms
from tests.recorder.conftest import query, wait_for

ROOT = Path(__file__).parents[2]
SYMBOLS = ["BTC-USDT", "ETH-USDT"]
CHANNELS = ["trade", "bookTicker", "depth5@500ms", "markPrice"]


def _record(sim: Simulator, data_dir: Path, *extra: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "cli", "--data-dir", str(data_dir), "--ws-url", sim.ws_url]
    argv += ["--rest-url", sim.rest_url or "http://127.0.0.1:9", "--log-level", "WARNING", "record"]
    argv += [
        "--symbols",
        ",".join(SYMBOLS),
        "--channels",
        ",".join(CHANNELS),
        "--silence-timeout",
        "10",
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(argv, env=env, cwd=ROOT)


@pytest.mark.slow
def test_kill_9_then_restart_keeps_every_frame_sent_before_the_kill_exactly_once(tmp_path: Path) -> None:
    topics = [f"{s}@{c}" for s in SYMBOLS for c in CHANNELS]
    with Simulator(symbols=SYMBOLS, seed=4, trades_per_second=10.0, ping_interval_s=0.5) as sim:
        child = _record(sim, tmp_path)
        try:
            wait_for(lambda: all(sim.ledger.counts.get(t, 0) >= 2 for t in topics), 30)
            time.sleep(random.uniform(0.5, 2.5))
            killed_ms = int(time.time() * 1000)
            child.send_signal(signal.SIGKILL)
        finally:
            child.wait(10)
        sent = {t: [f for f in sim.ledger.frames(t) if f.sent_ms < killed_ms - 1000] for t in topics}
        restarted = _record(sim, tmp_path, "--duration", "2")
        assert restarted.wait(30) == 0
        all_sent = {t: sim.ledger.frames(t) for t in topics}
    lake = tmp_path / "lake"
    landed = Counter(r["text"] for r in query(lake, "SELECT text FROM raw_messages"))
    for topic, frames in sent.items():
        assert frames, topic
        assert all(landed[f.text] == 1 for f in frames), topic
    trades = Counter(_trade_keys(query(lake, "SELECT * FROM trades")))
    before = Counter(_trade_keys(row for f in _frames(sent, "trade") for row in _trades(f.payload)))
    every = Counter(_trade_keys(row for f in _frames(all_sent, "trade") for row in _trades(f.payload)))
    assert before and all(before[key] <= trades[key] <= every[key] for key in every | trades)


def _frames(frames: dict[str, list[Any]], channel: str) -> list[Any]:
    return [f for s in SYMBOLS for f in frames[f"{s}@{channel}"]]


def _trades(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return DATASETS["trades"].from_stream(payload)  # type: ignore[misc]


def _trade_keys(rows: Iterable[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    for row in rows:
        yield row["symbol"], as_ms(row["trade_time"]), row["price"], row["qty"], row["is_buyer_maker"]
