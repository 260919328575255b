"""Outage windows, derived once: per topic, the intervals the stream did not cover. SQL over views; no writes.

A topic's frames (raw_messages) fall into socket sessions: a session starts at a connection's `connect` or
`reconnect` event (stream_events, same connection, lower seq). Between two sessions of a topic nothing was
received, so the time from the last frame of one session to the first frame of the next is an outage:
`disconnect` when both are in one recorder run (connection ids are "<run>-<nn>"), `restart` when the
recorder was down in between (stopped, or killed with -9: no event needed, the frames say it). Inside a
session, frames further apart than the channel's tolerance are a `silence` (a stalled socket); a topic whose
frames stop while its run goes on is `stopped` up to the run's last frame (refused, paused, delisted), and a
`refused` event with no frame after it opens a `refused` window. Window bounds are our receive clock.

The rule is one SQL text (GAPS) over two relations named like the views, so unit tests run it on
constructed rows and the lake exposes it as the `stream_gaps` view.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

VIEW = "stream_gaps"
CAUSES = ("disconnect", "restart", "silence", "stopped", "refused")

# Seconds without a frame on a live socket before a topic counts as silent. Book and ticker channels push
# on a clock (depth<N>@<ms>, incrDepth every 100-500 ms, klines about once a second), trades only on fills:
# a minute without one on a live socket is usually a quiet market, which healing tells apart (REST agrees).
TOLERANCE_S = {"trade": 60.0, "incrDepth": 10.0, "kline": 10.0, "depth": 10.0}
DEFAULT_TOLERANCE_S = 30.0


def tolerance_s(channel: str) -> float:
    """The silence tolerance of a channel ("trade", "depth20@500ms", ...): gaps_sql()'s rule, in Python."""
    return next((s for prefix, s in TOLERANCE_S.items() if channel.startswith(prefix)), DEFAULT_TOLERANCE_S)


GAPS = """
WITH sessions AS (
    SELECT connection, seq AS session FROM stream_events WHERE event IN ('connect', 'reconnect')
),
frames AS (
    SELECT f.topic, f.connection, s.session, f.received_at
    FROM (SELECT topic, connection, seq, received_at FROM raw_messages WHERE topic LIKE '%@%') f
    ASOF LEFT JOIN sessions s ON f.connection = s.connection AND f.seq > s.session
),
tolerances AS (
    SELECT *, {tolerance} AS tolerance_s
    FROM (SELECT DISTINCT topic FROM frames)
),
segments AS (
    SELECT topic, connection, session, min(received_at) AS first_at, max(received_at) AS last_at
    FROM frames GROUP BY ALL
),
between_sessions AS (
    SELECT topic, last_before AS start_at, first_at AS end_at,
           CASE WHEN split_part(run_before, '-', 1) = split_part(connection, '-', 1)
                THEN 'disconnect' ELSE 'restart' END AS cause
    FROM (
        SELECT *,
            max(last_at) OVER w AS last_before,
            arg_max(connection, last_at) OVER w AS run_before
        FROM segments
        WINDOW w AS (PARTITION BY topic ORDER BY first_at ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    )
    WHERE last_before < first_at
),
silences AS (
    SELECT topic, previous_at AS start_at, received_at AS end_at, 'silence' AS cause
    FROM (
        SELECT f.*, t.tolerance_s,
            lag(f.received_at) OVER (PARTITION BY f.topic, f.connection, f.session ORDER BY f.received_at)
                AS previous_at
        FROM frames f JOIN tolerances t USING (topic)
    )
    WHERE received_at - previous_at > to_microseconds(CAST(tolerance_s * 1e6 AS BIGINT))
),
runs AS (
    SELECT split_part(connection, '-', 1) AS run, max(received_at) AS run_end FROM frames GROUP BY ALL
),
stops AS (
    SELECT s.topic, s.last_at AS start_at, r.run_end AS end_at, 'stopped' AS cause
    FROM (
        SELECT topic, split_part(connection, '-', 1) AS run, max(last_at) AS last_at
        FROM segments GROUP BY ALL
    ) s
    JOIN runs r USING (run) JOIN tolerances t USING (topic)
    WHERE r.run_end - s.last_at > to_microseconds(CAST(t.tolerance_s * 1e6 AS BIGINT))
),
refusals AS (
    SELECT e.topic, e.received_at AS start_at, coalesce(
        (SELECT min(f.received_at) FROM frames f WHERE f.topic = e.topic AND f.received_at > e.received_at),
        (SELECT max(r.run_end) FROM runs r WHERE r.run = split_part(e.connection, '-', 1))
    ) AS end_at, 'refused' AS cause
    FROM stream_events e
    WHERE e.event = 'refused' AND e.topic IS NOT NULL
),
found AS (
    SELECT * FROM between_sessions UNION ALL SELECT * FROM silences
    UNION ALL SELECT * FROM stops UNION ALL SELECT * FROM refusals
)
SELECT split_part(topic, '@', 1) AS symbol, substr(topic, strpos(topic, '@') + 1) AS channel, topic,
       start_at, end_at, cause,
       CAST(epoch_ms(end_at) - epoch_ms(start_at) AS DOUBLE) / 1000 AS seconds
FROM found
WHERE end_at > start_at
ORDER BY topic, start_at
"""


@dataclass(frozen=True)
class Outage:
    """One interval [start, end] (our receive clock, UTC) in which a topic's stream was not covered."""

    symbol: str
    channel: str
    start: datetime
    end: datetime
    cause: str  # one of CAUSES

    @property
    def topic(self) -> str:
        return f"{self.symbol}@{self.channel}"


def gaps_sql() -> str:
    """Return the outage query over relations `stream_events` and `raw_messages` (the views' columns)."""
    cases = " ".join(
        f"WHEN channel_of(topic) LIKE '{prefix}%' THEN {seconds}" for prefix, seconds in TOLERANCE_S.items()
    )
    tolerance = f"CASE {cases} ELSE {DEFAULT_TOLERANCE_S} END".replace(
        "channel_of(topic)", "substr(topic, strpos(topic, '@') + 1)"
    )
    return GAPS.format(tolerance=tolerance)


def create_gap_view(con: duckdb.DuckDBPyConnection, names: Iterable[str]) -> list[str]:
    """Create the `stream_gaps` view when the views it reads exist; return the names created."""
    if not {"stream_events", "raw_messages"} <= set(names):
        return []
    con.execute(f"CREATE OR REPLACE VIEW {VIEW} AS {gaps_sql()}")
    return [VIEW]


def recent_sql(since: datetime) -> str:
    """The outage query over only the frames and events received since `since` (as a relation).

    A long-running recorder asks every minute; scanning weeks of raw_messages each time would not do. The
    date filter prunes partitions. A window that began before `since` is not seen: a full pass finds it.
    """
    moment = since.astimezone(UTC).isoformat()
    where = f"WHERE date >= DATE '{since.astimezone(UTC).date()}' AND received_at >= TIMESTAMPTZ '{moment}'"
    return (
        f"(WITH raw_messages AS (SELECT * FROM main.raw_messages {where}), "
        f"stream_events AS (SELECT * FROM main.stream_events {where}) SELECT * FROM ({gaps_sql()}))"
    )


def outages(con: duckdb.DuckDBPyConnection, relation: str = VIEW) -> list[Outage]:
    """Read every outage window (from the view, or any relation with its columns), ordered by topic, start."""
    table = con.sql(f"SELECT symbol, channel, start_at, end_at, cause FROM {relation}").to_arrow_table()
    return [
        Outage(row["symbol"], row["channel"], row["start_at"], row["end_at"], row["cause"])
        for row in table.to_pylist()
    ]
