"""Books rebuilt from the lake: book_updates (and depth frames) read in receive order, and any instant.

The lake is read through `Lake` and DuckDB over each dataset's files, never through the deduping views: the
view's one row per update id would hide the repeats and reorder the steps back that make a book resync.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from books.engine import Engine
from books.errors import BadTime, BookUnknown
from books.tracker import BookTracker, SnapshotOptions
from schemas import DATASETS
from storage.lake import Lake
from storage.objectstore import register_filesystems
from storage.stored import scan_sql, stored_files

_BATCH_ROWS = 65_536
_UPDATE_COLUMNS = (
    "symbol, epoch_ms(event_time) AS event_time, update_id, action, "
    "bid_prices, bid_qtys, ask_prices, ask_qtys, epoch_us(received_at) AS received_at"
)
_CHECKPOINT_COLUMNS = (
    "symbol, epoch_ms(snapshot_time) AS snapshot_time, epoch_ms(event_time) AS event_time, update_id, "
    "bid_prices, bid_qtys, ask_prices, ask_qtys, epoch_us(received_at) AS received_at"
)
_RECENT_MS = 3_600_000  # book_at looks for its starting book in this window before AT first
_DEPTH_COLUMNS = (
    "symbol, epoch_ms(event_time) AS event_time, levels, "
    "bid_prices, bid_qtys, ask_prices, ask_qtys, epoch_us(received_at) AS received_at"
)


@dataclass(frozen=True)
class BookAt:
    """A book at one instant: both sides best first as (price, qty); times in epoch ms."""

    symbol: str
    at: int
    update_id: int
    event_time: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]

    def as_json(self) -> dict[str, Any]:
        """The CLI's JSON shape: times as ISO-8601 UTC, levels as [price, qty] numbers."""
        return {
            "symbol": self.symbol,
            "at": iso(self.at),
            "update_id": self.update_id,
            "event_time": iso(self.event_time),
            "bids": [list(level) for level in self.bids],
            "asks": [list(level) for level in self.asks],
        }


def instant_ms(value: str | int | datetime) -> int:
    """Epoch ms from epoch ms (int or digits) or ISO-8601 (UTC unless it carries an offset)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int) or value.strip().lstrip("-").isdigit():
        return int(value)
    else:
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise BadTime(
                f"time {value!r}: expected ISO-8601 (2024-06-01T14:03:07.250Z) or epoch ms"
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def book_at(
    data_dir: str | Path | Lake, symbol: str, at: str | int | datetime, levels: int | None = None
) -> BookAt:
    """Rebuild SYMBOL's book at instant AT from the lake: `levels` per side (None: full depth).

    Starts from the last full-depth checkpoint (book_snapshots) or `all` snapshot (book_updates) at or
    before AT and applies every later update whose exchange time is <= AT, in receive order. Raises
    BookUnknown when no snapshot precedes AT or the book resynced between the snapshot and AT.

    Example (a notebook): `book_at("./data", "BTC-USDT", "2024-06-01T14:03:07.250Z", levels=20).bids[0]`
    """
    lake = data_dir if isinstance(data_dir, Lake) else Lake(Path(data_dir) / "lake")
    at_ms = instant_ms(at)
    with _connect() as con:
        engine, start_us = _base(con, lake, symbol, at_ms)
        where = "action = 'update' AND update_id > $id AND received_at >= make_timestamp($start)"
        where += " AND event_time BETWEEN make_timestamp($from * 1000) AND make_timestamp($at * 1000)"
        params = {"id": engine.book.update_id, "start": start_us, "at": at_ms, "from": engine.book.event_time}
        for row in _rows(con, lake, "book_updates", symbol, where, params, _UPDATE_COLUMNS):
            reason = engine.apply(
                "update",
                row["update_id"],
                row["event_time"],
                row["bid_prices"],
                row["bid_qtys"],
                row["ask_prices"],
                row["ask_qtys"],
            )
            if reason is not None:
                raise BookUnknown(
                    f"{symbol} at {iso(at_ms)}: the book resynced before that instant ({reason})"
                )
    bids, asks = engine.book.top(levels)
    return BookAt(symbol, at_ms, engine.book.update_id, engine.book.event_time, bids, asks)


def _base(con: duckdb.DuckDBPyConnection, lake: Lake, symbol: str, at_ms: int) -> tuple[Engine, int]:
    """An engine holding the latest full book at or before AT, and the receive time updates start from.

    Looks in the hour before AT first: file and row-group statistics on the time columns then skip the
    rest of the lake; only when that hour holds no snapshot or checkpoint is the whole lake searched.
    """
    for since in (at_ms - _RECENT_MS, None):
        params = {"at": at_ms, "since": since if since is not None else -(2**62) // 1000}
        window = "<= make_timestamp($at * 1000) AND {0} >= make_timestamp($since * 1000)"
        snapshot = _first(
            con,
            lake,
            "book_updates",
            symbol,
            "action = 'all' AND event_time " + window.format("event_time"),
            params,
            _UPDATE_COLUMNS,
            "event_time DESC, received_at DESC",
        )
        checkpoint = _first(
            con,
            lake,
            "book_snapshots",
            symbol,
            "trigger = 'checkpoint' AND snapshot_time " + window.format("snapshot_time"),
            params,
            _CHECKPOINT_COLUMNS,
            "snapshot_time DESC",
        )
        if snapshot is not None or checkpoint is not None:
            break
    else:
        raise BookUnknown(
            f"{symbol} at {iso(at_ms)}: no incrDepth snapshot or checkpoint in the lake before it"
        )
    use = snapshot
    if checkpoint is not None and (snapshot is None or checkpoint["snapshot_time"] >= snapshot["event_time"]):
        use = checkpoint
    assert use is not None
    engine = Engine(symbol)
    engine.apply(
        "all",
        use["update_id"],
        use["event_time"],
        use["bid_prices"],
        use["bid_qtys"],
        use["ask_prices"],
        use["ask_qtys"],
    )
    return engine, use["received_at"]


def derive(
    lake: Lake,
    symbols: Sequence[str] | None,
    since_ms: int | None,
    until_ms: int | None,
    options: SnapshotOptions | None,
    polls: bool = False,
) -> Iterator[tuple[str, BookTracker]]:
    """Replay each symbol's book_updates and depth frames in receive order through a BookTracker.

    Starts at the symbol's last `all` at or before `since` (so the book is whole); yields (symbol, tracker)
    once that symbol is done, its rows and resyncs still to `take`. `polls`: judge REST depth polls too.
    """
    with _connect() as con:
        for symbol in symbols or _symbols(con, lake):
            tracker = BookTracker(options)
            start = _start(con, lake, symbol, since_ms)
            if start is None:
                yield symbol, tracker
                continue
            end = until_ms if until_ms is not None else 2**62 // 1000
            where = "received_at >= make_timestamp($start) AND event_time < make_timestamp($end * 1000)"
            params = {"start": start, "end": end}
            depth_where = where + ("" if polls else " AND source = 'stream'")
            updates = _rows(con, lake, "book_updates", symbol, where, params, _UPDATE_COLUMNS)
            frames = _rows(con, lake, "depth_snapshots", symbol, depth_where, params, _DEPTH_COLUMNS)
            for kind, row in _merged(_subscriptions(con, lake, symbol, start), updates, frames):
                if kind == 0:
                    tracker.subscribed(symbol)
                elif kind == 1:
                    tracker.update(row)
                else:
                    tracker.depth(row)
            if since_ms is not None:
                tracker.rows = [r for r in tracker.rows if r["snapshot_time"] >= since_ms]
            yield symbol, tracker


def _merged(*streams: Iterator[dict[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of several streams by receive time, as (stream index, row); on a tie the lower index first."""

    def tagged(index: int, rows: Iterator[dict[str, Any]]) -> Iterator[tuple[int, int, dict[str, Any]]]:
        return ((row["received_at"], index, row) for row in rows)

    for _, index, row in heapq.merge(*(tagged(i, rows) for i, rows in enumerate(streams)), key=_head):
        yield index, row


def _head(item: tuple[int, int, dict[str, Any]]) -> tuple[int, int]:
    return item[0], item[1]


def _subscriptions(
    con: duckdb.DuckDBPyConnection, lake: Lake, symbol: str, start_us: int
) -> Iterator[dict[str, Any]]:
    """The recorder's `subscribed` events for SYMBOL's incrDepth (stream_events), from `start_us` on."""
    if not lake.files("stream_events"):
        return iter(())
    sql = (
        f"SELECT epoch_us(received_at) AS received_at FROM {_scan(lake, 'stream_events')} "
        "WHERE event = 'subscribed' AND topic = $topic AND received_at >= make_timestamp($start) "
        "ORDER BY received_at, filename, file_row_number"
    )
    return iter(_table(con, sql, {"topic": f"{symbol}@incrDepth", "start": start_us}).to_pylist())


def _start(con: duckdb.DuckDBPyConnection, lake: Lake, symbol: str, since_ms: int | None) -> int | None:
    """The receive time (µs) to replay from: the subscription that brought the last `all` at or before
    `since` (else the first `all`), so a replay sees what the live converter saw."""
    where, params = "action = 'all'", {}
    if since_ms is not None:
        where, params = "action = 'all' AND event_time <= make_timestamp($since * 1000)", {"since": since_ms}
    column = "epoch_us(received_at) AS received_at"
    order = "received_at" if since_ms is None else "received_at DESC"
    found = _first(con, lake, "book_updates", symbol, where, params, column, order)
    if found is None and since_ms is not None:
        found = _first(con, lake, "book_updates", symbol, "action = 'all'", {}, column, "received_at")
    if found is None:
        return None
    snapshot_us = int(found["received_at"])
    if lake.files("stream_events"):
        sql = (
            f"SELECT max(epoch_us(received_at)) FROM {_scan(lake, 'stream_events')}"
            " WHERE event = 'subscribed' AND topic = $topic AND received_at <= make_timestamp($at)"
        )
        latest = _table(con, sql, {"topic": f"{symbol}@incrDepth", "at": snapshot_us}).column(0)[0]
        if latest.is_valid:
            return int(latest.as_py())
    return snapshot_us


def _symbols(con: duckdb.DuckDBPyConnection, lake: Lake) -> list[str]:
    if not lake.files("book_updates"):
        return []
    scan = _scan(lake, "book_updates")
    found = _table(con, f"SELECT DISTINCT symbol FROM {scan} ORDER BY 1", {})
    return [str(symbol) for symbol in found.column(0).to_pylist()]


def _scan(lake: Lake, dataset: str, ordered: bool = True) -> str:
    """read_parquet over a dataset's files, one scan per area of storage.layout (their hive keys differ,
    and DuckDB refuses one glob over both).

    `ordered`: with file name and row number (receive order), union_by_name (files written before a column
    was added), and the rows compaction set aside in _superseded/ (repeats and steps back: what a replay must
    see to resync as the live recorder did). Without: ~20 ms less per query over a day of hourly files, for
    the point lookups of book_at, whose columns every version of the schema has.
    """
    declared = DATASETS[dataset]
    if ordered:
        options = "hive_partitioning = true, union_by_name = true, filename = true, file_row_number = true"
        return scan_sql(stored_files(lake, declared), options)
    scans = [
        f"SELECT * FROM read_parquet('{glob.replace(chr(39), chr(39) * 2)}', "
        "hive_partitioning = true, allow_empty = true)"
        for glob in lake.globs(declared)
    ]
    return "(" + "\n    UNION ALL BY NAME\n".join(scans) + ")"


def _first(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    dataset: str,
    symbol: str,
    where: str,
    params: dict[str, Any],
    columns: str,
    order: str,
) -> dict[str, Any] | None:
    if not lake.files(dataset):
        return None
    sql = f"SELECT {columns} FROM {_scan(lake, dataset, ordered=False)} WHERE symbol = $symbol AND {where}"
    sql += f" ORDER BY {order} LIMIT 1"
    rows = _table(con, sql, {**params, "symbol": symbol}).to_pylist()
    return rows[0] if rows else None


def _table(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> pa.Table:
    """Run one query on its own cursor: generators of other results may be open on the connection."""
    cursor = _cursor(con)
    try:
        table: pa.Table = cursor.sql(sql, params=params).to_arrow_table()
        return table
    finally:
        cursor.close()


def _cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    cursor = con.cursor()
    cursor.execute("SET TimeZone = 'UTC'")  # make_timestamp() is naive: compared with TIMESTAMPTZ in UTC
    return cursor


def _rows(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    dataset: str,
    symbol: str,
    where: str,
    params: dict[str, Any],
    columns: str,
) -> Iterator[dict[str, Any]]:
    """One symbol's rows in receive order: receive time, then file and row (a file holds journal order)."""
    if not lake.files(dataset):
        return
    sql = (
        f"SELECT {columns} FROM {_scan(lake, dataset)} WHERE symbol = $symbol AND {where} "
        "ORDER BY received_at, filename, file_row_number"
    )
    cursor = _cursor(con)  # one result per cursor: derive() reads several datasets at once
    try:
        reader: pa.RecordBatchReader = cursor.sql(sql, params={**params, "symbol": symbol}).to_arrow_reader(
            _BATCH_ROWS
        )
        for batch in reader:
            yield from pa.Table.from_batches([batch]).to_pylist()
    finally:
        cursor.close()


_SHARED: list[duckdb.DuckDBPyConnection] = []  # one in-memory DuckDB per process: ~40 ms to open
_SHARED_LOCK = threading.Lock()


@contextmanager
def _connect() -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor of this process's DuckDB: a notebook's second `book_at` does not open DuckDB again."""
    with _SHARED_LOCK:
        if not _SHARED:
            _SHARED.append(duckdb.connect(":memory:"))
        register_filesystems(_SHARED[0])  # a lake on an object store opened since
        cursor = _cursor(_SHARED[0])
    try:
        yield cursor
    finally:
        cursor.close()
