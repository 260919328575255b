"""A backfill job: every (symbol, interval) series of one history kind, walked concurrently, resumable.

Order of effects for every batch of pages: rows are written to the lake (source='backfill'), THEN the cursor
in state/ is extended. A kill between the two leaves "orphan" files beyond the cursor; the next run reads
their keys and does not write those rows again (backfill.orphans). The cursor is never ahead of the data.
A series is walked by one process at a time (SeriesLock).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from backfill import cursor as cursors
from backfill.contracts import listings, resolve
from backfill.errors import PagingError
from backfill.lock import SeriesLock
from backfill.orphans import orphan_keys
from backfill.progress import LogReporter, Reporter
from backfill.series import Series, window_end
from backfill.walk import BatchWriter, Flushed, Walk
from exchange.rest import RestClient
from schemas.dataset import Dataset
from storage.lake import Lake
from storage.state import State

log = logging.getLogger("backfill")
FLUSH_ROWS = 5_000  # rows buffered per write: fewer, larger files (DESIGN.md: file count drives query time)


@dataclass(frozen=True)
class Request:
    """What to backfill; symbols None means every listed contract; since/until are epoch ms."""

    series: Series
    symbols: list[str] | None
    intervals: tuple[str, ...] = ()
    since_ms: int | None = None
    until_ms: int | None = None


@dataclass
class Summary:
    """What a job did, printed at the end."""

    series: str
    rows: int = 0
    pages: int = 0
    files: int = 0
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    seconds_throttled: float = 0.0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)  # series another process was walking

    def line(self) -> str:
        text = (
            f"{self.series}: {self.rows} rows written in {self.files} files, {self.pages} pages, "
            f"{self.requests} requests, {self.retries} retries, {self.throttled} throttled "
            f"({self.seconds_throttled:.1f} s), {self.seconds:.1f} s"
        )
        if self.skipped:
            text += f"; skipped (locked by another job): {', '.join(self.skipped)}"
        return text


class _Stopped(Exception):
    """Another series of the job failed; this one stops at a page boundary."""


class Job:
    """Runs a Request against one RestClient (shared limiter, thread-safe), one lake, one state folder."""

    def __init__(
        self,
        client: RestClient,
        lake: Lake,
        state: State,
        *,
        workers: int = 4,
        reporter: Reporter | None = None,
        clock: Callable[[], float] = time.time,
        flush_rows: int = FLUSH_ROWS,
    ) -> None:
        self.client, self.lake, self.state = client, lake, state
        self.workers = workers
        self.reporter: Reporter = reporter or LogReporter()
        self.clock = clock
        self.flush_rows = flush_rows
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def run(self, request: Request) -> Summary:
        """Backfill every series of the request; raise the first error (Banned, PagingError, ...)."""
        from schemas import DATASETS

        started, before = time.monotonic(), replace(self.client.stats)
        self._stop.clear()
        dataset = DATASETS[request.series.dataset]
        listed = listings(self.client)
        symbols = resolve(request.symbols, listed)
        summary = Summary(request.series.name)
        now_ms = int(self.clock() * 1000)
        series = [(s, i) for s in symbols for i in (request.intervals or (None,))]
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(series)))) as pool:
            futures = [
                pool.submit(
                    self._guarded, request, dataset, symbol, interval, listed[symbol], now_ms, summary
                )
                for symbol, interval in series
            ]
            try:
                errors = [f.exception() for f in futures]
            except BaseException:  # Ctrl-C: let every series stop at its next page, then leave
                self._stop.set()
                raise
        stats = self.client.stats  # counted since this run began: a client may serve several jobs
        summary.requests, summary.retries = stats.requests - before.requests, stats.retries - before.retries
        summary.throttled = stats.throttled - before.throttled
        summary.seconds_throttled = stats.seconds_throttled - before.seconds_throttled
        summary.seconds = time.monotonic() - started
        first = next((e for e in errors if e is not None and not isinstance(e, _Stopped)), None)
        if first is not None:
            raise first
        return summary

    def _guarded(self, *args: Any) -> None:
        try:
            self._series(*args)
        except BaseException:
            self._stop.set()  # one failure (a ban above all) stops every series at its next page
            raise

    def _series(
        self,
        request: Request,
        dataset: Dataset,
        symbol: str,
        interval: str | None,
        listed_ms: int | None,
        now_ms: int,
        summary: Summary,
    ) -> None:
        label = " ".join(part for part in (request.series.name, symbol, interval) if part)
        name = cursors.cursor_name(dataset.name, symbol, interval)
        with SeriesLock(self.state.root / "locks" / f"{name.replace('/', '.')}.lock") as lock:
            if not lock.acquired:
                log.warning("%s: another job (pid %s) is backfilling it; skipped", label, lock.owner)
                with self._lock:
                    summary.skipped.append(label)
                return
            cursor = cursors.load(self.state, name)
            end = window_end(request.series, interval, now_ms, request.until_ms)
            start = _start(request.since_ms, cursor, listed_ms)
            gaps = cursor.gaps(start, end)
            self.reporter.start(label, sum(high - low for low, high in gaps))
            key = "trade_id" if request.series.by_id else dataset.event_time
            written = orphan_keys(self.lake, dataset.name, symbol, interval, gaps, key)
            tally = self._tally(label, summary)
            writer = BatchWriter(
                self.lake, self.state, dataset, name, cursor, self.flush_rows, written, tally
            )
            walk = Walk(self.client, self.lake, self.check_stop, request.series, dataset, symbol, interval)
            for low, high in gaps:
                pages = walk.trades(cursor, low, high) if request.series.by_id else walk.times(low, high)
                writer.consume(low, pages)
            self.reporter.finish(label)

    def check_stop(self) -> None:
        if self._stop.is_set():
            raise _Stopped

    def _tally(self, label: str, summary: Summary) -> Flushed:
        def flushed(done_ms: int, rows: int, pages: int, files: int) -> None:
            with self._lock:
                summary.rows, summary.pages, summary.files = (
                    summary.rows + rows,
                    summary.pages + pages,
                    summary.files + files,
                )
            self.reporter.advance(label, done_ms, rows, pages)

        return flushed


def _start(since_ms: int | None, cursor: cursors.Cursor, listed_ms: int | None) -> int:
    """Explicit --since; else where the covered ranges begin; else the listing time."""
    if since_ms is not None:
        return since_ms
    if cursor.covered:
        return cursor.covered[0][0]
    if listed_ms is not None:
        return listed_ms
    raise PagingError("no --since given and /quote/contracts has no listing time: pass --since")


def default_state(data_dir: Path) -> State:
    """The state folder next to the lake (DESIGN.md layout)."""
    return State(data_dir / "state")
