"""Outage windows from constructed stream_events and raw_messages rows, and the stream_gaps view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from schemas import DATASETS
from storage.gaps import Outage, gaps_sql, outages
from storage.lake import Lake
from storage.views import connect

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


class Tape:
    """Builds one connection's journal-ordered records: events and frames share the seq counter."""

    def __init__(self, connection: str) -> None:
        self.connection = connection
        self.seq = 0
        self.events: list[dict[str, Any]] = []
        self.frames: list[dict[str, Any]] = []

    def event(self, at_s: float, event: str, topic: str | None = None) -> Tape:
        self.events.append(self._row(at_s) | {"event": event, "topic": topic, "code": None, "detail": None})
        return self

    def frames_every(self, topic: str, start_s: float, end_s: float, step_s: float) -> Tape:
        at = start_s
        while at <= end_s + 1e-9:
            self.frames.append(self._row(at) | {"topic": topic, "text": "{}"})
            at += step_s
        return self

    def _row(self, at_s: float) -> dict[str, Any]:
        self.seq += 1
        stamp = T0 + timedelta(seconds=at_s)
        return {"connection": self.connection, "seq": self.seq, "received_at": stamp, "source": "stream"}


def windows(*tapes: Tape) -> list[tuple[str, float, float, str]]:
    events = [row for tape in tapes for row in tape.events]
    frames = [row for tape in tapes for row in tape.frames]
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("stream_events", _table("stream_events", events))
        con.register("raw_messages", _table("raw_messages", frames))
        found = outages(con, f"({gaps_sql()})")
    return [_seconds(outage) for outage in found]


def _table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=DATASETS[name].schema)


def _seconds(outage: Outage) -> tuple[str, float, float, str]:
    start, end = ((t - T0).total_seconds() for t in (outage.start, outage.end))
    return outage.topic, round(start, 3), round(end, 3), outage.cause


def test_a_steady_stream_has_no_outage() -> None:
    tape = Tape("r1-00").event(0, "connect").event(0.1, "subscribed", "BTC-USDT@trade")
    tape.frames_every("BTC-USDT@trade", 1, 100, 1)
    assert windows(tape) == []


def test_a_disconnect_is_an_outage_from_the_last_frame_to_the_first_after_the_reconnect() -> None:
    tape = Tape("r1-00").event(0, "connect").frames_every("BTC-USDT@depth20@500ms", 1, 10, 0.5)
    tape.event(10.2, "disconnect").event(30, "reconnect")
    tape.frames_every("BTC-USDT@depth20@500ms", 30.4, 40, 0.5)
    assert windows(tape) == [("BTC-USDT@depth20@500ms", 10.0, 30.4, "disconnect")]


def test_a_quick_reconnect_is_still_an_outage_even_within_the_tolerance() -> None:
    tape = Tape("r1-00").event(0, "connect").frames_every("ETH-USDT@incrDepth", 1, 10, 0.2)
    tape.event(10.1, "disconnect").event(10.3, "reconnect").frames_every("ETH-USDT@incrDepth", 10.5, 20, 0.2)
    assert windows(tape) == [("ETH-USDT@incrDepth", 10.0, 10.5, "disconnect")]


def test_a_killed_recorder_leaves_a_restart_window_without_any_event() -> None:
    before = Tape("aa-00").event(0, "connect").frames_every("BTC-USDT@kline_1m", 1, 20, 1)
    after = Tape("bb-00").event(50, "connect").frames_every("BTC-USDT@kline_1m", 51, 60, 1)
    assert windows(before, after) == [("BTC-USDT@kline_1m", 20.0, 51.0, "restart")]


def test_silence_past_the_channel_tolerance_on_a_live_socket_is_an_outage() -> None:
    tape = Tape("r1-00").event(0, "connect")
    tape.frames_every("BTC-USDT@depth20@500ms", 1, 10, 1).frames_every("BTC-USDT@depth20@500ms", 25, 30, 1)
    tape.frames_every("BTC-USDT@trade", 1, 30, 5)  # 5 s between trades: well within a minute
    assert windows(tape) == [("BTC-USDT@depth20@500ms", 10.0, 25.0, "silence")]


def test_a_topic_that_stops_while_the_run_goes_on_is_stopped_until_the_run_ends() -> None:
    tape = Tape("r1-00").event(0, "connect").frames_every("BTC-USDT@trade", 1, 200, 1)
    tape.frames_every("ETH-USDT@depth5@500ms", 1, 50, 1)
    assert windows(tape) == [("ETH-USDT@depth5@500ms", 50.0, 200.0, "stopped")]


def test_a_refused_topic_is_an_outage_until_its_first_frame() -> None:
    tape = Tape("r1-00").event(0, "connect").frames_every("BTC-USDT@trade", 1, 100, 1)
    tape.event(1, "refused", "DOGE-USDT@trade").event(60, "subscribed", "DOGE-USDT@trade")
    tape.frames_every("DOGE-USDT@trade", 61, 100, 1)
    assert windows(tape) == [("DOGE-USDT@trade", 1.0, 61.0, "refused")]


def test_topics_moving_between_connections_with_overlap_are_not_an_outage() -> None:
    first = Tape("r1-00").event(0, "connect").frames_every("BTC-USDT@trade", 1, 30, 1)
    second = Tape("r1-01").event(20, "connect").frames_every("BTC-USDT@trade", 25, 60, 1)
    assert windows(first, second) == []


def test_the_stream_gaps_view_reads_the_lake(tmp_path: Path) -> None:
    tape = Tape("r1-00").event(0, "connect").frames_every("BTC-USDT@trade", 1, 10, 1)
    tape.event(10.5, "disconnect").event(20, "reconnect").frames_every("BTC-USDT@trade", 21, 30, 1)
    lake = Lake(tmp_path / "lake")
    lake.write(DATASETS["stream_events"], tape.events)
    lake.write(DATASETS["raw_messages"], tape.frames)
    with connect(tmp_path / "lake") as con:
        rows = con.sql("SELECT topic, cause, seconds FROM stream_gaps").fetchall()
    assert rows == [("BTC-USDT@trade", "disconnect", 11.0)]


def test_a_recent_pass_sees_only_windows_inside_its_horizon(tmp_path: Path) -> None:
    from storage.gaps import recent_sql

    tape = Tape("r1-00").event(0, "connect").frames_every("BTC-USDT@trade", 1, 10, 1)
    tape.event(10.5, "disconnect").event(20, "reconnect").frames_every("BTC-USDT@trade", 21, 3000, 1)
    tape.event(3000.5, "disconnect").event(3010, "reconnect").frames_every("BTC-USDT@trade", 3011, 3020, 1)
    lake = Lake(tmp_path / "lake")
    lake.write(DATASETS["stream_events"], tape.events)
    lake.write(DATASETS["raw_messages"], tape.frames)
    with connect(tmp_path / "lake") as con:
        every = [_seconds(o) for o in outages(con)]
        recent = [_seconds(o) for o in outages(con, recent_sql(T0 + timedelta(seconds=1000)))]
    assert [start for _, start, _, _ in every] == [10.0, 3000.0]
    assert recent == [("BTC-USDT@trade", 3000.0, 3011.0, "disconnect")]
