"""One connection against the simulator, seen through the journal: acks, Pong, drops, silence, garbage."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from recorder.connection import Connection, ConnectionOptions
from simulator import Simulator
from storage.journal import BINARY, CONTROL, DATA, DROPPED, EVENT, JournalReader, JournalWriter, Record
from storage.state import State


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(symbols=["BTC-USDT", "ETH-USDT"], seed=3, ping_interval_s=0.25, pong_timeout_s=5.0) as sim:
        yield sim


def _records(root: Path) -> list[Record]:
    return list(JournalReader(root / "journal", State(root / "state")))


def _events(records: list[Record]) -> list[tuple[str, str | None]]:
    return [
        (body["event"], body["topic"])
        for body in (orjson.loads(r.payload) for r in records if r.kind == EVENT)
    ]


def _wait(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _run(
    sim: Simulator, tmp_path: Path, topics: list[str], body: Callable[[Connection], None], **options: float
) -> list[Record]:
    settings = ConnectionOptions(
        url=sim.ws_url,
        silence_timeout_s=2.0,
        subscribes_per_second=50.0,
        ack_timeout_s=1.0,
        backoff_first_s=0.05,
        backoff_cap_s=0.2,
    )
    settings = ConnectionOptions(**{**settings.__dict__, **options})
    with JournalWriter(tmp_path / "journal") as journal:
        connection = Connection("t-00", topics, journal, settings)
        connection.start()
        try:
            body(connection)
        finally:
            connection.stop()
            connection.join(5)
    return _records(tmp_path)


def test_acked_topics_are_journaled_as_data_and_refused_ones_as_events(
    sim: Simulator, tmp_path: Path
) -> None:
    topics = ["BTC-USDT@trade", "ETH-USDT@markPrice", "NOPE-USDT@trade"]

    def body(connection: Connection) -> None:
        _wait(lambda: len(connection.acked) == 2 and "NOPE-USDT@trade" in connection.refused)
        _wait(lambda: sim.ledger.connections[0].pongs_received >= 3)  # the Pings were answered

    records = _run(sim, tmp_path, topics, body)
    events = _events(records)
    assert events[0] == ("connect", None)
    assert {t for e, t in events if e == "subscribed"} == {"BTC-USDT@trade", "ETH-USDT@markPrice"}
    assert ("refused", "NOPE-USDT@trade") in events
    assert events[-1] == ("disconnect", None)
    assert [r.seq for r in records] == list(range(len(records)))  # one connection: seq has no gaps
    data = [orjson.loads(r.payload) for r in records if r.kind == DATA]
    sent = sim.ledger.frames("BTC-USDT@trade") + sim.ledger.frames("ETH-USDT@markPrice")
    assert sorted(d["dataType"] for d in data) == sorted(f.topic for f in sent)
    assert sorted(r.payload.decode() for r in records if r.kind == DATA) == sorted(f.text for f in sent)
    acks = sum(1 for r in records if r.kind == CONTROL)
    assert acks == 3 * sum(1 for e, _ in events if e in ("connect", "reconnect"))  # one per request, no Pings
    _wait(lambda: sim.ledger.connections[0].closed_ms is not None)
    (record,) = sim.ledger.connections
    assert record.pongs_received >= 3 and record.pongs_received >= record.pings_sent - 1


def test_leaked_data_for_a_refused_topic_is_kept_raw_but_marked_dropped(tmp_path: Path) -> None:
    with Simulator(symbols=["BTC-USDT"], leak_refused=True) as sim:
        topics = [f"BTC-USDT@kline_{i}" for i in ("1m", "3m", "5m")]
        settings = ConnectionOptions(url=sim.ws_url, subscribes_per_second=100.0)
        sim.ws.options.max_topics = 2

        def body(connection: Connection) -> None:
            _wait(lambda: len(connection.refused) == 1)
            # a frame of the refused topic leaked through and was received
            _wait(lambda: "BTC-USDT@kline_5m" in connection.seen)

        records = _run(sim, tmp_path, topics, body, subscribes_per_second=settings.subscribes_per_second)
    refused = [t for e, t in _events(records) if e == "refused"]
    assert refused == ["BTC-USDT@kline_5m"]
    dropped = [orjson.loads(r.payload)["dataType"] for r in records if r.kind == DROPPED]
    assert dropped and set(dropped) == {"BTC-USDT@kline_5m"}
    assert all(orjson.loads(r.payload)["dataType"] != "BTC-USDT@kline_5m" for r in records if r.kind == DATA)


@pytest.mark.parametrize("fault", ["drop", "stall", "stop_ping"])
def test_an_outage_reconnects_resubscribes_and_is_in_the_events(
    sim: Simulator, tmp_path: Path, fault: str
) -> None:
    def body(connection: Connection) -> None:
        _wait(lambda: connection.acked == {"BTC-USDT@trade"})
        if fault == "drop":
            sim.faults.drop()
        elif fault == "stall":
            sim.faults.stall(True)
            _wait(lambda: connection.reconnects >= 1)
            sim.faults.stall(False)
        else:
            sim.faults.stop_ping(True)
            _wait(lambda: connection.reconnects >= 1)
            sim.faults.stop_ping(False)
        _wait(lambda: connection.reconnects >= 1 and connection.acked == {"BTC-USDT@trade"})

    records = _run(sim, tmp_path, ["BTC-USDT@trade"], body)
    names = [e for e, _ in _events(records)]
    assert names[:2] == ["connect", "subscribed"]
    assert "reconnect" in names and names.count("subscribed") >= 2
    assert names.count("disconnect") >= 2
    if fault != "drop":
        assert "silence" in names
    assert len(sim.ledger.connections) >= 2


def _send_bad_text(server: Any) -> int:
    """A text frame that is not UTF-8 (the simulator only sends binary garbage)."""
    frame = bytes([0x81, 4]) + b"\xff\xfe\xfd!"
    return sum(server.write(client, frame) for client in list(server.clients.values()))


def test_a_text_frame_that_is_not_utf8_is_journaled_raw_and_survived(sim: Simulator, tmp_path: Path) -> None:
    def body(connection: Connection) -> None:
        _wait(lambda: connection.acked == {"BTC-USDT@trade"})
        assert sim.ws.call(_send_bad_text, sim.ws) == 1
        frames = connection.frames
        _wait(lambda: connection.frames >= frames + 3)  # still receiving after it

    records = _run(sim, tmp_path, ["BTC-USDT@trade"], body)
    assert [r.payload for r in records if r.kind == BINARY] == [b"\xff\xfe\xfd!"]
    assert "reconnect" not in [e for e, _ in _events(records)]
    assert len(sim.ledger.connections) == 1


def test_garbage_frames_are_journaled_and_the_connection_survives(sim: Simulator, tmp_path: Path) -> None:
    def body(connection: Connection) -> None:
        _wait(lambda: connection.acked == {"BTC-USDT@trade"})
        for kind in ("bad_gzip", "bad_json", "unknown_datatype", "missing_fields"):
            assert sim.faults.garbage(kind, "BTC-USDT@trade") == 1
        _wait(lambda: connection.frames >= 8)
        frames = connection.frames
        _wait(lambda: connection.frames >= frames + 2)  # still receiving after the garbage

    records = _run(sim, tmp_path, ["BTC-USDT@trade"], body)
    assert sum(1 for r in records if r.kind == BINARY) == 1
    assert "reconnect" not in [e for e, _ in _events(records)]
    assert len(sim.ledger.connections) == 1
