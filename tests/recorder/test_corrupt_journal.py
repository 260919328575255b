"""A corrupt record in the middle of a real journal segment costs that record only: the converter resyncs to
the next intact record, keeps the bad bytes and says so in stream_events."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from simulator import Simulator
from storage.journal import DATA, JournalReader, segments
from storage.journal_resync import CORRUPT_DIR
from storage.state import State
from tests.recorder.conftest import query, wait_for
from tests.recorder.procs import landed, partials, record, sent_texts

SYMBOLS = ["BTC-USDT", "ETH-USDT"]
CHANNELS = ["trade", "bookTicker", "depth5@500ms"]


@pytest.mark.slow
def test_a_corrupt_record_mid_segment_loses_that_record_only(tmp_path: Path) -> None:
    topics = [f"{s}@{c}" for s in SYMBOLS for c in CHANNELS]
    with Simulator(symbols=SYMBOLS, seed=8, trades_per_second=10.0, ping_interval_s=0.5) as sim:
        # a lake interval of an hour: nothing is converted before the kill, the segment stays whole
        child = record(sim, tmp_path, SYMBOLS, CHANNELS, "--lake-interval", "3600", start_new_session=True)
        try:
            wait_for(lambda: all(sim.ledger.counts.get(t, 0) >= 5 for t in topics), 30)
            killed_ms = int(time.time() * 1000)
            os.killpg(child.pid, signal.SIGKILL)  # recorder and converter: nothing sealed
        finally:
            child.wait(10)
        journal = tmp_path / "journal"
        (name,) = segments(journal)
        records = list(JournalReader(journal, State(tmp_path / "scratch")))
        data = [
            (n, r)
            for n, r in enumerate(records)
            if r.kind == DATA and r.received_at_us // 1000 < killed_ms - 1000
        ]
        index, victim = data[len(data) // 2]
        start = records[index - 1].end.position
        segment = bytearray((journal / name).read_bytes())
        segment[victim.end.position - 10 : victim.end.position - 6] = b"\xde\xad\xbe\xef"  # in its payload
        (journal / name).write_bytes(bytes(segment))
        restarted = record(sim, tmp_path, SYMBOLS, CHANNELS, "--duration", "2", "--lake-interval", "1")
        assert restarted.wait(30) == 0
        before = sent_texts(sim, topics, killed_ms - 1000)
        every = set(sent_texts(sim, topics))
    counts = landed(tmp_path)
    lost = victim.payload.decode()
    assert lost in before and counts[lost] == 0
    assert all(counts[text] == 1 for text in before if text != lost)  # nothing else lost
    assert set(counts) <= every and max(counts.values()) == 1  # nothing doubled
    kept = journal / CORRUPT_DIR / f"{name.removesuffix('.wal')}-{start}.bin"
    assert kept.read_bytes() == bytes(segment[start : victim.end.position])
    (event,) = query(tmp_path / "lake", "SELECT * FROM stream_events WHERE event = 'corrupt'")
    assert event["connection"] == f"journal:{name}" and event["seq"] == start
    assert f"{victim.end.position - start} bytes at {start}..{victim.end.position}" in event["detail"]
    assert not partials(tmp_path)
    assert json.loads((tmp_path / "state" / "journal.json").read_text())["segment"] > name
