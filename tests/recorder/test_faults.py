"""Dropped connections, stalls, missing Pings and garbage: the recorder survives and says so in the lake."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.parquet as pq

from simulator import Simulator
from tests.recorder.conftest import FAST, options, query, recording, wait_for


def _rejects(lake: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted((lake / "_rejects").rglob("*.parquet")):
        dataset = path.relative_to(lake / "_rejects").parts[0]
        found.setdefault(dataset, []).extend(pq.read_table(path)["reason"].to_pylist())
    return found


def test_outages_and_garbage_are_survived_quarantined_and_visible(tmp_path: Path) -> None:
    topics = ["BTC-USDT@trade", "BTC-USDT@bookTicker"]
    with Simulator(symbols=["BTC-USDT"], seed=5, **FAST) as sim:
        opts = options(sim, ["BTC-USDT"], ["trade", "bookTicker"], silence_timeout_s=2.0)
        with recording(tmp_path, opts) as recorder:
            wait_for(lambda: len(recorder.connections) == 1)
            (connection,) = recorder.connections
            wait_for(lambda: len(connection.acked) == 2)
            for kind in ("bad_gzip", "bad_json", "unknown_datatype", "missing_fields"):
                assert sim.faults.garbage(kind, "BTC-USDT@trade") == 1
            time.sleep(0.3)
            for outage in range(3):
                if outage == 0:
                    sim.faults.drop()
                else:
                    knob = sim.faults.stall if outage == 1 else sim.faults.stop_ping
                    knob(True)
                    wait_for(lambda n=outage: connection.reconnects >= n + 1)
                    knob(False)
                wait_for(lambda n=outage: connection.reconnects >= n + 1 and len(connection.acked) == 2)
            wait_for(lambda: sim.ledger.counts.get("BTC-USDT@bookTicker", 0) >= 2)
    lake = tmp_path / "lake"
    rows = query(lake, "SELECT event, topic, detail FROM stream_events ORDER BY seq")
    events = [r["event"] for r in rows]
    # Exactly three outages were injected; a loaded machine may add a spurious silence, never remove one.
    sessions = events.count("connect") + events.count("reconnect")
    assert events.count("connect") == 1 and sessions >= 4
    assert events.count("silence") >= 2  # the stall and the missing Pings; the drop is a socket error
    assert events.count("disconnect") == sessions  # every session's end is a row, the shutdown included
    assert sorted(r["topic"] for r in rows if r["event"] == "subscribed") == sorted(topics * sessions)
    rejects = _rejects(lake)
    assert sorted(reason.split(":")[0] for reason in rejects["raw_messages"]) == [
        "bad JSON",
        "bad gzip",
        "unknown topic",
    ]
    assert [reason.split(":")[0] for reason in rejects["trades"]] == ["conversion failed"]
    assert "'p'" in rejects["trades"][0]
    trades = query(lake, "SELECT count(*) AS n FROM trades")[0]["n"]
    assert trades > 0  # data kept flowing after every outage


def test_repeated_incr_depth_ids_are_a_resync_event_and_not_a_duplicate_row(tmp_path: Path) -> None:
    with Simulator(symbols=["BTC-USDT"], seed=8, incr_id_skip_max=1, **FAST) as sim:
        opts = options(sim, ["BTC-USDT"], ["incrDepth"], silence_timeout_s=30.0)
        with recording(tmp_path, opts) as recorder:
            wait_for(lambda: len(recorder.connections) == 1 and len(recorder.connections[0].acked) == 1)
            wait_for(lambda: sim.ledger.counts.get("BTC-USDT@incrDepth", 0) >= 2)
            sim.faults.incr_repeat(2, "BTC-USDT")
            wait_for(lambda: sim.ledger.counts.get("BTC-USDT@incrDepth", 0) >= 7)
            sim.faults.stall(True)
            time.sleep(0.3)
    lake = tmp_path / "lake"
    sent = [f.payload["data"]["lastUpdateId"] for f in sim.ledger.frames("BTC-USDT@incrDepth")]
    assert len(sent) - len(set(sent)) == 2
    # The first repeat breaks the book; the second comes while it waits for a new snapshot (or never, if
    # the resubscribe was quicker): one resync, and the topic was subscribed a second time for it.
    resyncs = query(lake, "SELECT detail FROM stream_events WHERE event = 'resync'")
    assert [r["detail"].split(":")[0] for r in resyncs] == ["repeated id"]
    assert recorder.resubscribes == 1
    ids = [r["update_id"] for r in query(lake, "SELECT update_id FROM book_updates ORDER BY update_id")]
    assert ids == sorted(set(sent))
