"""Rebuild: re-derive a stream dataset's rows of closed days from raw_messages (after a converter fix).

A day is compacted first (one file per partition); then each partition gets a new compacted file (the
view's rows over its other sources' rows plus the re-derived stream rows) whose greater name makes the
views switch to it in one rename, so a view shows either the old or the new rows of a partition, never
both; the old file goes after the grace period. Stream rows whose raw frames
are gone (pruned, or received outside the day and its neighbours) are kept as they are.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from schemas import DATASETS
from schemas.dataset import ConversionError, Dataset, Row
from storage import layout
from storage.compact import (
    GRACE_S,
    ROW_GROUP,
    Summary,
    compact_held,
    connection,
    generation,
    retire,
    superseded_files,
    write_runs,
)
from storage.errors import RebuildError
from storage.lake import Lake
from storage.lease import Lease
from storage.validation import table_from_rows
from storage.views import connect, ranked_body, rows_sql

Derive = Callable[[dict[str, Any]], list[Row]]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Rebuilt:
    days: int = 0
    partitions: int = 0
    derived: int = 0  # stream rows re-derived from raw frames
    unconvertible: int = 0  # raw frames the converter rejects (they were rejected the first time too)


def rebuild(
    lake: Lake,
    dataset: Dataset,
    since: date,
    until: date,
    derive: Derive | None = None,
    grace_s: float = GRACE_S,
    clock: Callable[[], float] = time.time,
) -> Rebuilt:
    """Re-derive `dataset`'s stream rows of event days [since, until) from raw_messages; idempotent."""
    convert = derive or dataset.from_stream
    if convert is None or dataset.partitions == ():
        raise RebuildError(f"{dataset.name} has no stream converter to rebuild with")
    done = Rebuilt()
    with Lease(lake, clock=clock) as lease:
        summary = Summary()
        compact_held(lake, lease, [dataset], until, grace_s, clock, summary, since=since)
        if summary.pending:
            raise RebuildError(
                f"{', '.join(summary.pending)}: compaction's old files wait for their grace "
                f"({grace_s:.0f}s); run rebuild again after it (or compact with --grace 0 first)"
            )
        day = since
        while day < until:
            _rebuild_day(lake, dataset, day, convert, done, grace_s, clock)
            lease.renew()
            day += timedelta(days=1)
    return done


def _rebuild_day(
    lake: Lake,
    dataset: Dataset,
    day: date,
    convert: Derive,
    done: Rebuilt,
    grace_s: float,
    clock: Callable[[], float],
) -> None:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    window = (start - timedelta(days=1), start + timedelta(days=2))  # frames received around the day
    derived = _derive(lake, dataset, day, window, convert, done)
    text = day.isoformat()
    compacted = [path for path in lake.files(dataset.name) if f"/date={text}/" in path]
    superseded = superseded_files(lake, dataset, text)
    if not compacted and derived.num_rows == 0:
        return
    done.days += 1
    micros = [int((moment - _EPOCH).total_seconds() * 1_000_000) for moment in window]
    sql = _sql(dataset, compacted + superseded, micros)
    fresh_id = generation()

    def target(values: tuple[Any, ...], kept: bool) -> str:
        *partition_values, part_day = values
        if kept:  # a greater name than the old file's: the views switch to it in one rename
            folder = layout.partition_folder(lake.root, dataset, partition_values, part_day)
            return f"{folder}/{layout.COMPACTED}-{fresh_id}.parquet"
        aside = layout.superseded_folder(lake.root, dataset, partition_values, part_day)
        return f"{aside}/superseded-{fresh_id}.parquet"

    with connection() as con:
        con.register("derived", derived)
        counts = write_runs(lake, dataset, con.sql(sql).to_arrow_reader(ROW_GROUP), target)
    done.partitions += sum(1 for _, kept in counts if kept)
    for path in superseded:  # outside the views of a compacted partition; replaced by the new ones
        lake.filesystem.delete_file(path)
    retire(lake, dataset, text, compacted, grace_s, clock)


def _sql(dataset: Dataset, files: list[str], micros: list[int]) -> str:
    """The view's choice over the old rows (minus re-derived stream rows) and the derived ones."""
    columns = ", ".join(f'"{name}"' for name in (*dataset.columns, "date"))
    old = rows_sql(dataset, files) if files else f"SELECT {columns} FROM derived WHERE false"
    places = [*dataset.partitions, "date"]
    order = ", ".join(
        f'"{name}"' for name in dict.fromkeys([*places, "__kept", dataset.event_time, *dataset.key])
    )
    return (
        f"WITH old AS (\n{old}\n),\nlake_rows AS (\n"
        "    SELECT * FROM old WHERE NOT (source = 'stream' "
        f"AND epoch_us(received_at) >= {micros[0]} AND epoch_us(received_at) < {micros[1]})\n"
        f"    UNION ALL SELECT {columns} FROM derived\n),\n{ranked_body(dataset)}\n"
        f"SELECT {columns}, __rank = 1 AS __kept FROM ranked ORDER BY {order}, received_at, source"
    )


def _derive(
    lake: Lake, dataset: Dataset, day: date, window: tuple[datetime, datetime], convert: Derive, done: Rebuilt
) -> pa.Table:
    """Stream rows of event day `day` from the raw frames received in `window`, as a table with `date`."""
    with connect(lake.root, datasets=[DATASETS["raw_messages"]]) as con:
        frames = con.sql(
            "SELECT topic, text, epoch_us(received_at) AS received FROM raw_messages "
            "WHERE date BETWEEN ? AND ? AND received_at >= ? AND received_at < ? AND topic LIKE '%@%'",
            params=[window[0].date(), window[1].date(), window[0], window[1]],
        ).to_arrow_table()
    rows: list[Row] = []
    for topic, text, received in zip(
        *(frames[name].to_pylist() for name in frames.column_names), strict=True
    ):
        if not dataset.matches(topic.partition("@")[2]):
            continue
        try:
            derived = convert(orjson.loads(text))
        except (ConversionError, KeyError, TypeError, ValueError):
            done.unconvertible += 1
            continue
        for row in derived:
            row["received_at"], row["source"] = received, "stream"
        rows += derived
    table = table_from_rows(dataset, rows) if rows else dataset.schema.empty_table()
    days = table[dataset.event_time].cast(pa.timestamp("ms", tz="UTC")).cast(pa.date32())
    table = table.append_column("date", days)
    table = table.filter(pa.compute.equal(table["date"], pa.scalar(day, pa.date32())))
    done.derived += table.num_rows
    return table
