"""Coverage: per dataset × symbol × hour (or day), seconds covered, rows, expected rows, every gap classified.

Classes (DESIGN.md "Complete or classified"):
  healed          the window's REST history is in the lake (the backfill cursor covers it)
  unhealable      the channel has no REST history on BingX (depth, incrDepth, ticker, ...)
  beyond_history  trades older than historicalTrades still serves
  quiet           a silence on a live socket, and REST agrees nothing happened (0 rows in the window)
  not_listed      the contract was not tradable then (contracts rows: status != 1)
  open            healable, not healed yet
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from backfill import cursor as cursors
from backfill.heal import beyond_history, is_healable, plan
from schemas import dataset_for_channel
from storage.gaps import Outage, outages
from storage.state import State

CLASSES = ("healed", "unhealable", "beyond_history", "quiet", "not_listed", "open")
MISSING = ("unhealable", "beyond_history", "open")  # classes whose seconds count as not covered
BUCKETS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Gap:
    """One outage window of one topic, classified."""

    dataset: str
    symbol: str
    channel: str
    start: datetime
    end: datetime
    cls: str
    cause: str
    resync_at: datetime | None = None  # incrDepth: the first `all` snapshot after the window

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "dataset": self.dataset,
            "symbol": self.symbol,
            "channel": self.channel,
            "start": iso(self.start),
            "end": iso(self.end),
            "class": self.cls,
            "cause": self.cause,
            "seconds": round(self.seconds, 3),
        }
        if self.dataset == "book_updates":
            document["resync_at"] = iso(self.resync_at) if self.resync_at else None
        return document


@dataclass
class Cell:
    """One dataset × symbol × channel × bucket."""

    dataset: str
    symbol: str
    channel: str
    start: datetime
    seconds: float = 0.0  # recorded span inside the bucket
    covered_seconds: float = 0.0
    rows: int = 0
    expected_rows: int | None = None  # klines: one per bar; trades: the REST count of healed windows
    gap_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def share(self) -> float:
        return self.covered_seconds / self.seconds if self.seconds > 0 else 1.0

    def as_json(self, bucket: timedelta) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "symbol": self.symbol,
            "channel": self.channel,
            "start": iso(self.start),
            "end": iso(self.start + bucket),
            "seconds": round(self.seconds, 3),
            "covered_seconds": round(self.covered_seconds, 3),
            "coverage": round(self.share, 6),
            "rows": self.rows,
            "expected_rows": self.expected_rows,
            "gap_seconds": {name: round(value, 3) for name, value in sorted(self.gap_seconds.items())},
        }


@dataclass
class Report:
    since: datetime
    until: datetime
    by: str
    gaps: list[Gap]
    cells: list[Cell]

    def seconds_in(self, classes: Sequence[str]) -> float:
        return sum(gap.seconds for gap in self.gaps if gap.cls in classes)

    def totals(self) -> dict[str, Any]:
        spanned = sum(cell.seconds for cell in self.cells)
        covered = sum(cell.covered_seconds for cell in self.cells)
        return {
            "since": iso(self.since),
            "until": iso(self.until),
            "cells": len(self.cells),
            "gaps": {name: sum(1 for gap in self.gaps if gap.cls == name) for name in CLASSES},
            "gap_seconds": {name: round(self.seconds_in([name]), 3) for name in CLASSES},
            "coverage": round(covered / spanned, 6) if spanned else 1.0,
            "rows": sum(cell.rows for cell in self.cells),
        }

    def as_json(self) -> dict[str, Any]:
        bucket = BUCKETS[self.by]
        return {
            "gaps": [gap.as_json() for gap in self.gaps],
            "cells": [cell.as_json(bucket) for cell in self.cells],
            "totals": self.totals(),
        }


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build(
    con: duckdb.DuckDBPyConnection,
    state: State,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    symbols: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    by: str = "hour",
) -> Report:
    """Classify every outage of the recorded topics and fill the cells of [since, until)."""
    spans = _topic_spans(con, symbols, datasets)
    start = since or min((low for low, _ in spans.values()), default=EPOCH)
    end = until or max((high for _, high in spans.values()), default=EPOCH)
    listing = _listing(con)
    found = [
        classify(outage, con, state, listing)
        for outage in outages(con)
        if outage.topic in spans and outage.end > start and outage.start < end
    ]
    gaps = [_clip(gap, start, end) for gap in found]
    cells = _cells(con, spans, gaps, start, end, BUCKETS[by])
    return Report(start, end, by, gaps, cells)


def classify(
    outage: Outage,
    con: duckdb.DuckDBPyConnection,
    state: State,
    listing: dict[str, list[tuple[datetime, int]]],
) -> Gap:
    """Give one outage its class (see the module docstring)."""
    dataset = _dataset_name(outage.channel)
    resync = _resync_at(con, outage) if dataset == "book_updates" else None

    def gap(cls: str) -> Gap:
        return Gap(
            dataset, outage.symbol, outage.channel, outage.start, outage.end, cls, outage.cause, resync
        )

    if _is_unlisted(listing.get(outage.symbol, []), outage):
        return gap("not_listed")
    if not is_healable(outage.channel):
        return gap("unhealable")
    tasks = plan([outage], (dataset,))
    if not tasks:  # inside one bar: the stream's later cumulative pushes carry the bar's final state
        return gap("healed")
    task = tasks[0]
    for low, high in beyond_history(state, task.dataset, task.symbol, task.interval):
        if low <= task.start_ms and task.end_ms <= high:
            return gap("beyond_history")
    cursor = cursors.load(state, task.cursor_name)
    if cursor.gaps(task.start_ms, task.end_ms):
        return gap("open")
    if (
        outage.cause == "silence"
        and _rest_rows(con, task.dataset, task.symbol, task.start_ms, task.end_ms) == 0
    ):
        return gap("quiet")
    return gap("healed")


def _dataset_name(channel: str) -> str:
    found = dataset_for_channel(channel)
    return found.name if found is not None else channel


def _topic_spans(
    con: duckdb.DuckDBPyConnection, symbols: Sequence[str] | None, datasets: Sequence[str] | None
) -> dict[str, tuple[datetime, datetime]]:
    """First and last frame of every recorded topic (raw_messages), filtered by symbol and dataset."""
    rows = con.sql(
        "SELECT topic, min(received_at) AS low, max(received_at) AS high FROM raw_messages "
        "WHERE topic LIKE '%@%' GROUP BY topic"
    ).to_arrow_table()
    spans: dict[str, tuple[datetime, datetime]] = {}
    for row in rows.to_pylist():
        symbol, _, channel = row["topic"].partition("@")
        if symbols is not None and symbol not in symbols:
            continue
        known = dataset_for_channel(channel)
        if known is None or (datasets is not None and known.name not in datasets):
            continue
        spans[row["topic"]] = (row["low"], row["high"])
    return spans


def _listing(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[datetime, int]]]:
    """Contract status over time, per symbol, from every contracts refresh the lake holds."""
    table = con.sql(
        "SELECT symbol, received_at, status FROM contracts WHERE status IS NOT NULL ORDER BY received_at"
    ).to_arrow_table()
    found: dict[str, list[tuple[datetime, int]]] = {}
    for row in table.to_pylist():
        found.setdefault(row["symbol"], []).append((row["received_at"], int(row["status"])))
    return found


def _is_unlisted(statuses: list[tuple[datetime, int]], outage: Outage) -> bool:
    """Not tradable for the whole window: the last status seen before its end (or the first) is not 1."""
    before = [status for at, status in statuses if at <= outage.end]
    known = before[-1] if before else (statuses[0][1] if statuses else 1)
    return known != 1


def _resync_at(con: duckdb.DuckDBPyConnection, outage: Outage) -> datetime | None:
    table = _query(
        con,
        "SELECT min(received_at) AS at FROM book_updates WHERE symbol = ? AND action = 'all' "
        "AND received_at >= ?",
        [outage.symbol, outage.end],
    )
    value: datetime | None = table.to_pylist()[0]["at"]
    return value


def _rest_rows(con: duckdb.DuckDBPyConnection, dataset: str, symbol: str, low_ms: int, high_ms: int) -> int:
    from schemas import DATASETS

    column = DATASETS[dataset].event_time
    table = _query(
        con,
        f"SELECT count(*) AS n FROM {dataset} WHERE symbol = ? AND source = 'backfill' AND \"{column}\" "
        "BETWEEN make_timestamptz(?::BIGINT * 1000) AND make_timestamptz(?::BIGINT * 1000 - 1)",
        [symbol, low_ms, high_ms],
    )
    return int(table.to_pylist()[0]["n"])


def _clip(gap: Gap, start: datetime, end: datetime) -> Gap:
    low, high = max(gap.start, start), min(gap.end, end)
    if (low, high) == (gap.start, gap.end):
        return gap
    return Gap(gap.dataset, gap.symbol, gap.channel, low, high, gap.cls, gap.cause, gap.resync_at)


def _cells(
    con: duckdb.DuckDBPyConnection,
    spans: dict[str, tuple[datetime, datetime]],
    gaps: list[Gap],
    start: datetime,
    end: datetime,
    bucket: timedelta,
) -> list[Cell]:
    cells: list[Cell] = []
    for topic, (low, high) in sorted(spans.items()):
        symbol, _, channel = topic.partition("@")
        lo, hi = max(low, start), min(high, end)
        at = _floor(lo, bucket)
        mine = [gap for gap in gaps if gap.symbol == symbol and gap.channel == channel]
        counts = _row_counts(con, _dataset_name(channel), symbol, channel, lo, hi, bucket)
        while at < hi:
            cell = Cell(_dataset_name(channel), symbol, channel, at)
            cell.seconds = _overlap(at, at + bucket, lo, hi)
            for gap in mine:
                seconds = _overlap(at, at + bucket, gap.start, gap.end)
                if seconds > 0:
                    cell.gap_seconds[gap.cls] = cell.gap_seconds.get(gap.cls, 0.0) + seconds
            missing = sum(cell.gap_seconds.get(name, 0.0) for name in MISSING)
            cell.covered_seconds = max(0.0, cell.seconds - missing)
            cell.rows, rest_rows = counts.get(at, (0, 0))
            cell.expected_rows = _expected(channel, at, bucket, lo, hi, rest_rows)
            cells.append(cell)
            at += bucket
    return cells


def _expected(
    channel: str, at: datetime, bucket: timedelta, lo: datetime, hi: datetime, rest_rows: int
) -> int | None:
    """Rows the cell should hold: klines one per bar touched; trades the REST count of healed windows."""
    from backfill.series import INTERVAL_MS

    if channel.startswith("kline_") and channel.removeprefix("kline_") in INTERVAL_MS:
        step = INTERVAL_MS[channel.removeprefix("kline_")]
        first, last = _ms(max(at, lo)), _ms(min(at + bucket, hi))
        return (last // step) - (first // step) + 1 if last > first else 0
    if channel == "trade":
        return rest_rows or None
    return None


def _row_counts(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    symbol: str,
    channel: str,
    lo: datetime,
    hi: datetime,
    bucket: timedelta,
) -> dict[datetime, tuple[int, int]]:
    """(rows, REST rows) per bucket of one topic's dataset between lo and hi."""
    from schemas import DATASETS

    known = DATASETS.get(dataset)
    if known is None:
        return {}
    column = f'"{known.event_time}"'
    where = "symbol = ?"
    params: list[Any] = [symbol]
    if "interval" in known.partitions:
        where += ' AND "interval" = ?'
        params.append(channel.removeprefix("kline_"))
    seconds = int(bucket.total_seconds())
    table = _query(
        con,
        f"SELECT time_bucket(to_seconds({seconds}), {column}) AS at, count(*) AS n, "
        f"count(*) FILTER (WHERE source = 'backfill') AS rest FROM {dataset} "
        f"WHERE {where} AND {column} >= ? AND {column} <= ? GROUP BY ALL",
        [*params, _floor(lo, bucket), hi],
    )
    return {row["at"]: (int(row["n"]), int(row["rest"])) for row in table.to_pylist()}


def _query(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> Any:
    """Run a parameterised query; return its result as an Arrow table."""
    return con.sql(sql, params=params).to_arrow_table()


def _floor(moment: datetime, bucket: timedelta) -> datetime:
    return EPOCH + ((moment - EPOCH) // bucket) * bucket


def _overlap(a: datetime, b: datetime, c: datetime, d: datetime) -> float:
    return max(0.0, (min(b, d) - max(a, c)).total_seconds())


def _ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)
