"""How a backfill shows progress: a rich bar per series on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.progress import TaskID

log = logging.getLogger("backfill")


class Reporter(Protocol):
    """Told about each series' window and each written batch. Must be safe to call from threads."""

    def start(self, label: str, total_ms: int) -> None: ...
    def advance(self, label: str, done_ms: int, rows: int, pages: int) -> None: ...
    def finish(self, label: str) -> None: ...


class LogReporter:
    """One log line per series finish (a start, and a finish with no rows, at debug: a scheduled run under
    `run` must not log two lines per symbol), and at most one per `every_s` seconds while running."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._totals: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def start(self, label: str, total_ms: int) -> None:
        log.debug("%s: backfilling %.1f hours", label, total_ms / 3_600_000)
        with self._lock:
            self._last[label] = time.monotonic()
            self._totals[label] = (0, 0)

    def advance(self, label: str, done_ms: int, rows: int, pages: int) -> None:
        with self._lock:
            rows_so_far, pages_so_far = self._totals.get(label, (0, 0))
            self._totals[label] = (rows_so_far + rows, pages_so_far + pages)
            if time.monotonic() - self._last.get(label, 0.0) < self.every_s:
                return
            self._last[label] = time.monotonic()
            total_rows, total_pages = self._totals[label]
        log.info("%s: %d rows, %d pages so far", label, total_rows, total_pages)

    def finish(self, label: str) -> None:
        with self._lock:
            total_rows, total_pages = self._totals.pop(label, (0, 0))
        level = logging.INFO if total_rows else logging.DEBUG
        log.log(level, "%s: done, %d rows, %d pages", label, total_rows, total_pages)


class RichReporter:
    """A rich progress bar per series (window time done, rows, pages, ETA). Use as a context manager."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[rows]} rows, {task.fields[pages]} pages"),
            TimeRemainingColumn(),
        )
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> RichReporter:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._progress.stop()

    def start(self, label: str, total_ms: int) -> None:
        with self._lock:
            task = self._progress.add_task(label, total=max(total_ms, 1), rows=0, pages=0)
            self._tasks[label] = task

    def advance(self, label: str, done_ms: int, rows: int, pages: int) -> None:
        with self._lock:
            task = self._tasks[label]
            fields = self._progress.tasks[task].fields
            self._progress.update(
                task, advance=done_ms, rows=fields["rows"] + rows, pages=fields["pages"] + pages
            )

    def finish(self, label: str) -> None:
        with self._lock:
            task = self._tasks[label]
            self._progress.update(task, completed=self._progress.tasks[task].total)
