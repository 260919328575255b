"""Walking one series: fetch and convert pages (Walk), then write them and move the cursor (BatchWriter)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backfill import cursor as cursors
from backfill.errors import PagingError
from backfill.pager import MAX_TIME_LIMIT, MAX_TRADES_LIMIT, Page, first_id_at, id_pages, time_pages
from backfill.series import Series, spacing_ms, step_ms
from exchange.rest import RestClient
from schemas.dataset import ConversionError, Dataset, Row
from storage.lake import Lake
from storage.state import State


@dataclass
class Walk:
    """Fetches and converts pages of one series; the pager decides which pages."""

    client: RestClient
    lake: Lake
    check_stop: Callable[[], None]
    series: Series
    dataset: Dataset
    symbol: str
    interval: str | None

    def times(self, low: int, high: int) -> Iterator[Page[Row]]:
        step, spacing = step_ms(self.series, self.interval), spacing_ms(self.series, self.interval)
        return time_pages(
            self.fetch,
            self.time_of,
            low,
            high,
            step_ms=step,
            spacing_ms=spacing,
            limit=MAX_TIME_LIMIT,
            path=self.series.path,
        )

    def trades(self, cursor: cursors.Cursor, low: int, high: int) -> Iterator[Page[Row]]:
        first = cursor.resume_id_at(low)
        if first is None:
            first = first_id_at(self.fetch, _trade_id, self.time_of, low, path=self.series.path)
        if first is None:  # every trade is older than the window: nothing in it, as of now
            return iter([Page([], covered_to_ms=high)])
        return id_pages(
            self.fetch, _trade_id, self.time_of, first, high, limit=MAX_TRADES_LIMIT, path=self.series.path
        )

    def fetch(self, params: dict[str, Any]) -> list[Row]:
        self.check_stop()
        query: dict[str, Any] = {"symbol": self.symbol, **params}
        if self.interval is not None:
            query["interval"] = self.interval
        envelope = self.client.get(self.series.path, query)
        received_at = datetime.now(UTC)
        assert self.dataset.from_rest is not None
        try:
            rows = self.dataset.from_rest(envelope, query)
        except ConversionError as error:
            raw = json.dumps(envelope, default=str)
            self.lake.reject(self.dataset.name, raw, str(error), "backfill", received_at)
            kept = f"kept in _rejects/{self.dataset.name}"
            raise PagingError(f"{self.series.path} {query}: {error} ({kept})") from None
        for row in rows:
            row["received_at"], row["source"] = received_at, "backfill"
        return rows

    def time_of(self, row: Row) -> int:
        return int(row[self.dataset.event_time])  # rows carry times as epoch ms


Flushed = Callable[[int, int, int, int], None]  # (window ms done, rows, pages, files) after each write
_Batch = tuple[list[Row], int, int, int | None, int]  # BatchWriter.flush's arguments


@dataclass
class BatchWriter:
    """Buffers pages, writes them, then extends and saves the cursor: data first, cursor second."""

    lake: Lake
    state: State
    dataset: Dataset
    name: str  # the cursor's State document
    cursor: cursors.Cursor
    flush_rows: int
    written: set[int]  # keys a killed run wrote beyond the cursor (backfill.orphans): not written again
    on_flush: Flushed

    def consume(self, low: int, pages: Iterator[Page[Row]]) -> None:
        """Write the pages in batches, in order, on one writer thread while the next batch is fetched.

        Why: a write (Parquet files, then the cursor) on the fetch path leaves the request budget idle for
        its duration. One writer thread and at most one batch in flight keep data-then-cursor order and the
        memory bounded; the fetch path waits only when the previous batch is still being written.
        """
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="backfill-write") as writer:
            pending: Future[None] | None = None
            for batch in self._batches(low, pages):
                if pending is not None:
                    pending.result()  # a failed write stops the walk here, before its cursor moved
                pending = writer.submit(self.flush, *batch)
            if pending is not None:
                pending.result()

    def _batches(self, low: int, pages: Iterator[Page[Row]]) -> Iterator[_Batch]:
        """Group pages into batches of >= flush_rows rows (the last one smaller)."""
        rows: list[Row] = []
        count, done, flushed_to = 0, low, low
        resume_id: int | None = None
        for page in pages:
            rows += page.items
            count += 1
            done = max(done, page.covered_to_ms)
            resume_id = page.next_id
            if len(rows) >= self.flush_rows:
                yield rows, flushed_to, done, resume_id, count
                rows, count, flushed_to = [], 0, done
        if count:
            yield rows, flushed_to, done, resume_id, count

    def flush(self, rows: list[Row], low: int, high: int, resume_id: int | None, pages: int) -> None:
        if self.written:
            rows = [row for row in rows if self.key(row) not in self.written]
        files = self.lake.write(self.dataset, rows) if rows else []
        self.cursor.add((low, high))
        if resume_id is not None:
            self.cursor.resume_ms, self.cursor.resume_id = high, resume_id
        cursors.save(self.state, self.name, self.cursor)
        self.on_flush(high - low, len(rows), pages, len(files))

    def key(self, row: Row) -> int:
        if self.dataset.name == "trades":
            return _trade_id(row)
        return int(row[self.dataset.event_time])


def _trade_id(row: Row) -> int:
    return int(row["trade_id"])
