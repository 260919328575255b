"""What can be backfilled: the four history series, their intervals and where their windows end."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from backfill.endpoint import Endpoint
from schemas import cli_name, named
from schemas.dataset import INTERVALS

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

# Shortest length of each interval: the least distance between two bars' open times (a month >= 28 days).
INTERVAL_MS = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
    "1w": 7 * DAY_MS,
    "1M": 28 * DAY_MS,
}
assert tuple(INTERVAL_MS) == INTERVALS


@dataclass(frozen=True)
class Series(Endpoint):
    """One kind of history: its dataset (path, paging, intervals: the registry's) and when its windows end."""

    settle_ms: int  # how far behind the clock a window ends: publication delay, clock skew

    @property
    def has_interval(self) -> bool:
        return "interval" in self.spec.partitions

    @property
    def by_id(self) -> bool:  # trades: paged by fromId instead of by time
        return self.spec.paging == "id"


SERIES = {
    series.name: series
    for series in (
        # A bar is asked for only once closed; 5 s of slack for clock skew between us and BingX (§2: ±5 ms).
        Series("klines", 5_000),
        Series("mark_klines", 5_000),
        # Only completed settlements are listed (§7); allow a minute for one to be published.
        Series("funding_rates", MINUTE_MS),
        Series("trades", 5_000),
    )
}


def series_named(name: str) -> Series:
    """Find a series by its dataset's name or CLI alias ("funding_rates", "funding"); KeyError if neither."""
    return SERIES[cli_name(named(name))]


def window_end(series: Series, interval: str | None, now_ms: int, until_ms: int | None) -> int:
    """Return the exclusive end of a window's event times: nothing still open, nothing unpublished.

    For bars the event time is the open time: a bar is closed when open + length <= now, so open times
    below now - length + 1 are final. A monthly bar is final once the next month has begun (UTC).
    """
    settled = now_ms - series.settle_ms
    if interval is not None:
        settled = _first_open_bar(interval, settled)
    return settled if until_ms is None else min(settled, until_ms)


def _first_open_bar(interval: str, now_ms: int) -> int:
    if interval == "1M":
        now = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
        return int(datetime(now.year, now.month, 1, tzinfo=UTC).timestamp() * 1000)
    return now_ms - INTERVAL_MS[interval] + 1


def step_ms(series: Series, interval: str | None) -> int:
    """The least distance between two items' times (see pager.time_pages)."""
    return INTERVAL_MS[interval] if interval is not None else 1


def spacing_ms(series: Series, interval: str | None) -> int:
    """How close items usually are at the closest: bars by their interval, settlements 1 h (§7: 1/2/4/8 h)."""
    return INTERVAL_MS[interval] if interval is not None else HOUR_MS
