"""Healing: fill the stream's outage windows from REST history, through the backfill's cursors and writer.

Healed rows are backfill rows (source='backfill'): the exchange's settled history, so they take the
backfill's precedence in every view (backfill > poll > stream). Trades are walked by id over the whole
milliseconds at both edges (window padded by EDGE_MS), so for every (time, price, qty, side) in the window
REST holds ALL the fills and the trades view's occurrence matching keeps max(stream, REST) = the REST
count: identical-looking fills at the edges come out exactly once without any change to the view.

A window is healed through the same cursor as `backfill` (state/backfill/<dataset>/<symbol>/<interval>),
under the same per-series lock: rows first, cursor second, orphans of a killed run skipped. So a re-run
writes nothing, a heal after a backfill writes nothing, and a kill at any moment loses nothing.
What could not be healed is written down (state/heal/...): trades older than historicalTrades serves are
`beyond_history`, never silently skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from backfill import cursor as cursors
from backfill.lock import SeriesLock
from backfill.orphans import orphan_keys
from backfill.series import INTERVAL_MS, Series, series_named, window_end
from backfill.walk import BatchWriter, Walk
from exchange.rest import RestClient
from storage.gaps import Outage
from storage.lake import Lake
from storage.state import State

log = logging.getLogger("heal")

HEALABLE = ("trades", "klines", "funding_rates", "mark_klines")
EDGE_MS = 5_000  # pad: stream frames batch fills, and our receive clock runs behind the exchange's
HEAL_FLUSH_ROWS = 1_000  # windows are short: several durable steps each, for a kill to land between


@dataclass(frozen=True)
class Task:
    """One REST window to cover: [start_ms, end_ms) of event time of one series."""

    dataset: str
    symbol: str
    interval: str | None
    start_ms: int
    end_ms: int

    @property
    def series(self) -> Series:
        return series_named(self.dataset)

    @property
    def cursor_name(self) -> str:
        return cursors.cursor_name(self.dataset, self.symbol, self.interval)


@dataclass
class HealSummary:
    """What a heal pass did, printed at the end."""

    tasks: int = 0
    rows: int = 0
    requests: int = 0
    waiting: int = 0  # windows not closed or not settled yet: healed by a later pass
    beyond_history: int = 0
    skipped: list[str] = field(default_factory=list)  # series another process was walking
    planned: list[Task] = field(default_factory=list)

    def line(self) -> str:
        text = (
            f"heal: {self.tasks} windows, {self.rows} rows written, {self.requests} requests, "
            f"{self.beyond_history} beyond history, {self.waiting} not settled yet"
        )
        if self.skipped:
            text += f"; skipped (locked by another job): {', '.join(self.skipped)}"
        return text


def is_healable(channel: str) -> bool:
    """Say whether an outage of this channel can be filled from REST (trades and klines)."""
    return channel == "trade" or channel.startswith("kline_")


def plan(outages: Iterable[Outage], datasets: Sequence[str] = HEALABLE) -> list[Task]:
    """Turn outage windows into REST windows per series, merged where they overlap.

    trade → trades; kline_<iv> → klines <iv> (every bar the window touches); an outage of either also asks
    for the funding settlements and mark bars (the symbol's recorded kline intervals, else 1m) in it.
    """
    spans: dict[tuple[str, str, str | None], list[tuple[int, int]]] = {}
    outages = [o for o in outages if is_healable(o.channel)]
    intervals: dict[str, set[str]] = {}
    for outage in outages:
        if outage.channel.startswith("kline_"):
            intervals.setdefault(outage.symbol, set()).add(outage.channel.removeprefix("kline_"))
    for outage in outages:
        start, end = _ms(outage.start) - EDGE_MS, _ms(outage.end) + EDGE_MS
        wanted: list[tuple[str, str | None]] = []
        if outage.channel == "trade":
            wanted.append(("trades", None))
        else:
            wanted.append(("klines", outage.channel.removeprefix("kline_")))
        wanted.append(("funding_rates", None))
        wanted += [("mark_klines", iv) for iv in sorted(intervals.get(outage.symbol) or {"1m"})]
        for dataset, interval in wanted:
            if dataset in datasets:
                low, high = _bars(interval, start, end - EDGE_MS) if interval else (start, end)
                if low < high:
                    spans.setdefault((dataset, outage.symbol, interval), []).append((low, high))
    return [
        Task(dataset, symbol, interval, low, high)
        for (dataset, symbol, interval), found in sorted(spans.items(), key=lambda item: str(item[0]))
        for low, high in cursors.merged(found)
    ]


def _bars(interval: str, start_ms: int, end_ms: int) -> tuple[int, int]:
    """The bars whose final state the stream may have missed: from the bar holding start to the bar holding
    end, exclusive (empty when both are one bar). That last bar's later pushes are cumulative from its open,
    so the stream, back by then, delivers its final state itself (BINGX_API.md §19)."""
    step = INTERVAL_MS[interval] if interval != "1M" else INTERVAL_MS["1d"]
    return start_ms - start_ms % step, end_ms - end_ms % step


def _ms(moment: object) -> int:
    from datetime import datetime

    assert isinstance(moment, datetime)
    return int(moment.timestamp() * 1000)


class Healer:
    """Runs heal tasks against one RestClient (its limiter shared with every job on the host)."""

    def __init__(
        self,
        client: RestClient,
        lake: Lake,
        state: State,
        *,
        clock: Callable[[], float] = time.time,
        flush_rows: int = HEAL_FLUSH_ROWS,
    ) -> None:
        self.client, self.lake, self.state = client, lake, state
        self.clock = clock
        self.flush_rows = flush_rows

    def run(self, tasks: Sequence[Task], dry_run: bool = False) -> HealSummary:
        """Heal every task whose window has settled; the rest wait for a later pass."""
        summary = HealSummary(planned=list(tasks))
        before = self.client.stats.requests
        for task in tasks:
            settled = _settled(task, int(self.clock() * 1000))
            if task.end_ms > settled:
                summary.waiting += 1  # healed as far as settled now; the rest by a later pass
            if settled <= task.start_ms:
                continue
            summary.tasks += 1
            if not dry_run:
                self._heal(replace(task, end_ms=min(task.end_ms, settled)), summary)
        summary.requests = self.client.stats.requests - before
        return summary

    def _heal(self, task: Task, summary: HealSummary) -> None:
        label = " ".join(part for part in (task.dataset, task.symbol, task.interval) if part)
        with SeriesLock(self.state.root / "locks" / f"{task.cursor_name.replace('/', '.')}.lock") as lock:
            if not lock.acquired:
                log.warning(
                    "%s: another job (pid %s) is walking it; healed by a later pass", label, lock.owner
                )
                summary.skipped.append(label)
                return
            cursor = cursors.load(self.state, task.cursor_name)
            gaps = cursor.gaps(task.start_ms, task.end_ms)
            if not gaps:
                return
            from schemas import DATASETS

            dataset = DATASETS[task.dataset]
            walk = Walk(self.client, self.lake, _never, task.series, dataset, task.symbol, task.interval)
            if task.series.by_id and self._is_beyond_history(walk, task, gaps[0][0]):
                summary.beyond_history += 1
                return
            key = "trade_id" if task.series.by_id else dataset.event_time
            written = orphan_keys(self.lake, dataset.name, task.symbol, task.interval, gaps, key)

            def flushed(done_ms: int, rows: int, pages: int, files: int) -> None:
                summary.rows += rows

            writer = BatchWriter(
                self.lake, self.state, dataset, task.cursor_name, cursor, self.flush_rows, written, flushed
            )
            for low, high in gaps:
                pages = walk.trades(cursor, low, high) if task.series.by_id else walk.times(low, high)
                writer.consume(low, pages)

    def _is_beyond_history(self, walk: Walk, task: Task, low: int) -> bool:
        """Say (and write down) whether historicalTrades no longer serves trades as old as `low`."""
        oldest = walk.fetch({"fromId": 1, "limit": 1})
        if oldest and walk.time_of(oldest[0]) <= low:
            return False
        reach = walk.time_of(oldest[0]) if oldest else None
        record_beyond_history(self.state, task, reach)
        log.warning(
            "%s %s: [%d, %d) is older than historicalTrades serves (oldest trade %s): beyond history",
            task.dataset,
            task.symbol,
            task.start_ms,
            task.end_ms,
            reach,
        )
        return True


def _settled(task: Task, now_ms: int) -> int:
    """The exclusive end of the event times REST can give for good now.

    For bars, up to the next bar boundary: no bar opens between the settled end and that boundary, so a
    window ending on a boundary counts as settled as soon as its last bar is final.
    """
    end = window_end(task.series, task.interval, now_ms, None)
    if task.interval is None or task.interval == "1M":
        return end
    step = INTERVAL_MS[task.interval]
    return -(-end // step) * step


def _never() -> None:
    """A heal pass is not stopped between pages: each task is short."""


def beyond_history_name(dataset: str, symbol: str, interval: str | None) -> str:
    return f"heal/{dataset}/{symbol}/{interval or '-'}"


def record_beyond_history(state: State, task: Task, reach_ms: int | None) -> None:
    """Add [start, end) to the series' beyond-history list (state/heal/...), merged."""
    name = beyond_history_name(task.dataset, task.symbol, task.interval)
    document = state.read(name) or {}
    spans = [(int(a), int(b)) for a, b in document.get("beyond_history", [])]
    spans = cursors.merged([*spans, (task.start_ms, task.end_ms)])
    state.write(name, {"beyond_history": [list(s) for s in spans], "oldest_served_ms": reach_ms})


def beyond_history(state: State, dataset: str, symbol: str, interval: str | None) -> list[tuple[int, int]]:
    """Return the windows of a series found older than REST history serves."""
    document = state.read(beyond_history_name(dataset, symbol, interval)) or {}
    return [(int(a), int(b)) for a, b in document.get("beyond_history", [])]
