"""Bar boundaries for BingX's 15 kline intervals, in UTC epoch milliseconds. Pure arithmetic."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

MINUTE_MS = 60_000
DAY_MS = 86_400_000
INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M")

FIXED_MS = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "2h": 120 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "6h": 360 * MINUTE_MS,
    "8h": 480 * MINUTE_MS,
    "12h": 720 * MINUTE_MS,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,  # aligned to multiples of 3 days since the Unix epoch (UNCONFIRMED for BingX)
    "1w": 7 * DAY_MS,  # aligned to Monday 00:00 UTC as BingX and Binance do (see _WEEK_OFFSET_MS)
}
_WEEK_OFFSET_MS = 4 * DAY_MS  # 1970-01-01 was a Thursday; the first Monday is 1970-01-05


def floor_open(interval: str, t_ms: int) -> int:
    """Return the open time of the bar of `interval` that contains `t_ms`."""
    if interval == "1M":  # calendar months, 1st of the month 00:00 UTC
        moment = datetime.fromtimestamp(t_ms // 1000, tz=UTC)
        return _month_ms(moment.year, moment.month)
    width = FIXED_MS[interval]
    offset = _WEEK_OFFSET_MS if interval == "1w" else 0
    return (t_ms - offset) // width * width + offset


def next_open(interval: str, open_ms: int) -> int:
    """Return the open time of the bar after the one opening at `open_ms`."""
    if interval == "1M":
        moment = datetime.fromtimestamp(open_ms // 1000, tz=UTC)
        year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        return _month_ms(year, month)
    return open_ms + FIXED_MS[interval]


def opens(interval: str, start_ms: int, end_ms: int) -> Iterator[int]:
    """Yield the open times in [start_ms, end_ms), ascending."""
    open_ms = floor_open(interval, start_ms)
    if open_ms < start_ms:
        open_ms = next_open(interval, open_ms)
    while open_ms < end_ms:
        yield open_ms
        open_ms = next_open(interval, open_ms)


def previous_open(interval: str, open_ms: int) -> int:
    """Return the open time of the bar before the one opening at `open_ms`."""
    return floor_open(interval, open_ms - 1)


def _month_ms(year: int, month: int) -> int:
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp()) * 1000
