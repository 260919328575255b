"""Account history over signed REST: income walked in 7-day windows and pages within BingX's limits, and the
balance / position / commission-rate snapshots that `poll` takes.

BingX's income rules (SEED, BINGX_API.md §16): without a range only the last 7 days; a range over 7 days is
refused; 3 months are kept. So a walk is always given explicit windows of at most 7 days, starting no earlier
than the retention allows. Re-running is safe: the cursor (state/income.json) moves only after a window's
rows are durable, and the view keeps one row per (tran_id, income_type, asset).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from backfill.errors import PagingError
from backfill.poll import snapshots
from exchange.rest import RestClient
from schemas.account import INCOME
from schemas.dataset import ConversionError, Row
from storage.lake import Lake
from storage.state import State

log = logging.getLogger("backfill.income")

DAY_MS: Final = 86_400_000
WINDOW_MS: Final = 7 * DAY_MS  # BingX refuses a longer range
RETENTION_MS: Final = 90 * DAY_MS  # "Only keep the last 3 months data"
RETENTION_MARGIN_MS: Final = 60_000  # start a little inside the retention: our clock and theirs differ
PAGE_LIMIT: Final = 1000  # BingX's maximum page
SETTLE_MS: Final = 60_000  # a first run stops this far before now: a row booked late is fetched next time
CURSOR: Final = "income"  # state/income.json: {"until_ms": end of the last window written}

ACCOUNT_SNAPSHOTS = snapshots("balances", "positions", "commission_rates")


@dataclass
class IncomeSummary:
    start_ms: int = 0
    until_ms: int = 0
    windows: int = 0
    pages: int = 0
    rows: int = 0
    files: int = 0

    def line(self) -> str:
        span = f"{_iso(self.start_ms)} .. {_iso(self.until_ms)}"
        return (
            f"backfill income: {self.rows} rows in {self.files} files "
            f"({self.pages} pages over {self.windows} windows, {span})"
        )


def windows(start_ms: int, until_ms: int) -> list[tuple[int, int]]:
    """Split [start, until) into consecutive windows of at most 7 days."""
    return [(at, min(at + WINDOW_MS, until_ms)) for at in range(start_ms, until_ms, WINDOW_MS)]


def backfill_income(
    client: RestClient,
    lake: Lake,
    state: State | None,
    since_ms: int | None,
    until_ms: int | None,
    now_ms: int,
    limit: int = PAGE_LIMIT,
    on_window: Callable[[int, int, int], None] | None = None,
    settle_ms: int = SETTLE_MS,
) -> IncomeSummary:
    """Fetch every income row in [since, until) into the lake (source='backfill'); return what was done.

    With a `state`, a run continues from the cursor when that is later than `since`, and moves it after each
    window is written. Without one (the account stream's gap reconciliation) nothing is remembered.
    """
    floor = now_ms - RETENTION_MS + RETENTION_MARGIN_MS
    cursor = (state.read(CURSOR) or {}).get("until_ms") if state is not None else None
    start = max(x for x in (since_ms, cursor, floor) if x is not None)
    if since_ms is not None and since_ms < floor and start == floor:
        log.warning("income before %s is past BingX's 3-month retention; starting there", _iso(floor))
    until = min(until_ms if until_ms is not None else now_ms, now_ms - settle_ms)
    summary = IncomeSummary(start, max(start, until))
    for window_start, window_end in windows(start, until):
        rows, pages = window_rows(client, window_start, window_end, limit, lake)
        summary.windows += 1
        summary.pages += pages
        summary.rows += len(rows)
        summary.files += len(lake.write(INCOME, rows))
        if state is not None:
            state.write(CURSOR, {"until_ms": window_end})
        if on_window is not None:
            on_window(window_start, window_end, len(rows))
    return summary


def window_rows(
    client: RestClient, start_ms: int, end_ms: int, limit: int, lake: Lake | None = None
) -> tuple[list[Row], int]:
    """Every income row with start <= time < end, paged; return (rows, pages fetched).

    Pages are newest first (the 2026 capture) or oldest first; either way the next page's bound is the
    page's far edge, inclusive, and rows already seen are dropped. A full page that brings nothing new
    (more than `limit` rows in one millisecond) is a PagingError rather than an endless loop.
    """
    low, high = start_ms, end_ms - 1  # BingX's endTime is inclusive
    seen: dict[tuple[Any, ...], Row] = {}
    pages = 0
    while low <= high:
        query = {"startTime": low, "endTime": high, "limit": limit}
        page = _convert(client.get(INCOME.rest_path or "", query), query, lake)
        pages += 1
        fresh = [row for row in page if _key(row) not in seen]
        seen.update((_key(row), row) for row in fresh)
        if len(page) < limit:
            break
        if not fresh:
            raise PagingError(
                f"{INCOME.rest_path}: {limit} income rows between {low} and {high} ms repeat the last page; "
                "more than a page in one millisecond"
            )
        times = [row["time"] for row in page]
        if times[0] < times[-1]:  # oldest first: move the lower bound up
            low = times[-1]
        else:  # newest first: move the upper bound down
            high = min(times)
    stamp = datetime.now(UTC)
    rows = sorted(seen.values(), key=lambda row: (row["time"], row["tran_id"]))
    for row in rows:
        row["received_at"], row["source"] = stamp, "backfill"
    return rows, pages


def _convert(envelope: dict[str, Any], query: dict[str, Any], lake: Lake | None) -> list[Row]:
    assert INCOME.from_rest is not None
    try:
        return INCOME.from_rest(envelope, query)
    except ConversionError as error:
        kept = ""
        if lake is not None:  # never dropped: the page is kept raw with the reason
            lake.reject(INCOME.name, str(envelope), str(error), "backfill", datetime.now(UTC))
            kept = f" (kept in _rejects/{INCOME.name})"
        raise PagingError(f"{INCOME.rest_path} {query}: {error}{kept}") from None


def _key(row: Row) -> tuple[Any, ...]:
    return tuple(row[column] for column in INCOME.key)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
