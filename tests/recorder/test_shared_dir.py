"""Two recorders on one --data-dir: the second refuses to start (one line naming the first one's pid), and
the first one's frames all land exactly once."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from simulator import Simulator
from tests.recorder.conftest import wait_for
from tests.recorder.procs import landed, partials, record, sent_texts

CHANNELS = ["trade", "bookTicker"]


@pytest.mark.slow
def test_a_second_recorder_on_the_same_data_dir_refuses_and_the_first_loses_nothing(tmp_path: Path) -> None:
    first_topics = [f"BTC-USDT@{c}" for c in CHANNELS]
    with Simulator(
        symbols=["BTC-USDT", "ETH-USDT"], seed=5, trades_per_second=10.0, ping_interval_s=0.5
    ) as sim:
        first = record(sim, tmp_path, ["BTC-USDT"], CHANNELS, "--lake-interval", "1")
        try:
            wait_for(lambda: all(sim.ledger.counts.get(t, 0) >= 3 for t in first_topics), 30)
            second = record(sim, tmp_path, ["ETH-USDT"], CHANNELS, "--duration", "15", stderr=subprocess.PIPE)
            _, err = second.communicate(timeout=30)
            assert second.returncode == 1
            lines = [line for line in err.decode().splitlines() if line.strip()]
            assert len(lines) == 1 and f"pid {first.pid}" in lines[0], lines
            assert not any(sim.ledger.frames(f"ETH-USDT@{c}") for c in CHANNELS)  # it never subscribed
            wait_for(lambda: sim.ledger.counts.get(first_topics[0], 0) >= 10, 30)
            stopped_ms = int(time.time() * 1000)
            first.send_signal(signal.SIGTERM)
            assert first.wait(15) == 0
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        before = sent_texts(sim, first_topics, stopped_ms - 1000)
        every = set(sent_texts(sim, first_topics))
    counts = landed(tmp_path)
    assert before and all(counts[text] == 1 for text in before)  # nothing lost
    assert set(counts) <= every and max(counts.values()) == 1  # nothing invented or doubled
    assert not partials(tmp_path)
