"""BingX's public swap REST endpoints over a Market: params in, wire-shaped `data` out (BINGX_API §2–14).

Pure: no sockets. Errors are ApiError(code, msg); the server turns them into HTTP 200 envelopes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from simulator.intervals import INTERVALS, floor_open, next_open, opens, previous_open
from simulator.market import Bar, Market, Trade

DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
_SYMBOL = re.compile(r"[A-Z0-9]+-(USDT|USDC)")
_CENT = Decimal("0.01")


class ApiError(Exception):
    """A BingX business error: answered with HTTP 200 and this code and message."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code, self.msg = code, msg


@dataclass(frozen=True)
class Options:
    """Where BingX's behaviour is UNCONFIRMED (BINGX_API §7–9), the simulator lets tests choose."""

    order: str = "default"  # "asc" | "desc" | "default" (newest first without a range, ascending with one)
    start_exclusive: bool = (
        False  # klines: drop the bar whose open equals startTime (spot does; swap unknown)
    )
    funding_null_when_empty: bool = False  # fundingRate: "data": null instead of [] for an empty range
    funding_mark_price: bool = False  # fundingRate rows carry markPrice (JK model only)
    trade_history_ms: int | None = None  # historicalTrades serves only trades this young (None: all)


@dataclass(frozen=True)
class Request:
    market: Market
    params: dict[str, str]
    now_ms: int
    options: Options


Endpoint = Callable[[Request], Any]


def invalid(field: str, reason: str) -> ApiError:
    return ApiError(109400, f"Invalid parameters, err:{field}: {reason}")


def integer(
    request: Request, name: str, default: int | None = None, low: int = 0, high: int | None = None
) -> int:
    """Read an integer param; 109400 when it is missing (without default), not an integer or out of range."""
    raw = request.params.get(name)
    if raw is None or raw == "":
        if default is None:
            raise invalid(name, "This field is required.")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(name, f"{raw!r} is not an integer.") from None
    if value < low or (high is not None and value > high):
        raise invalid(
            name, f"must be between {low} and {high}." if high is not None else f"must be >= {low}."
        )
    return value


def symbol(request: Request, required: bool = True) -> str | None:
    """Read and check `symbol`: format (109400), listed (109425), not paused (109415)."""
    raw = request.params.get("symbol")
    if not raw:
        if required:
            raise invalid("symbol", "This field is required.")
        return None
    if not _SYMBOL.fullmatch(raw):
        raise invalid("symbol", "This field must end with -USDT or -USDC.")
    if raw not in request.market.symbols:
        raise ApiError(109425, f"{raw} not exist, please verify it in api: /openApi/swap/v2/quote/contracts")
    if request.market.is_paused(raw):
        raise ApiError(109415, f"{raw} is pause currently")
    return raw


def listed(request: Request) -> list[str]:
    """The symbols a no-symbol call covers: online contracts only (status 25 rows are absent, PROBE)."""
    return [s for s in request.market.symbols if not request.market.is_paused(s)]


def ordered(request: Request, rows: list[Any], ranged: bool) -> list[Any]:
    """Apply the ordering knob to ascending rows."""
    order = request.options.order
    descending = order == "desc" or (order == "default" and not ranged)
    return rows[::-1] if descending else rows


def quote_qty(trade: Trade) -> str:
    return str((Decimal(trade.price) * Decimal(trade.qty)).quantize(_CENT))


# ---- bar paging (klines and mark klines share it) ----


def bar_window(request: Request, interval: str, limit: int) -> tuple[int, int, bool]:
    """Return [first open, end) of the bars to answer and whether a time range was given (§8 paging)."""
    start, end = request.params.get("startTime"), request.params.get("endTime")
    last_open = floor_open(interval, request.now_ms - 1)  # the open bar at `now` is included
    if end:
        last_open = min(last_open, floor_open(interval, integer(request, "endTime")))
    if start:
        first = integer(request, "startTime") + (1 if request.options.start_exclusive else 0)
        last = first
        for count, last in enumerate(opens(interval, first, last_open + 1), start=1):  # noqa: B007
            if count == limit:
                break
        return first, min(next_open(interval, last), last_open + 1), True
    first = last_open
    for _ in range(limit - 1):
        first = previous_open(interval, first)
    return first, last_open + 1, bool(end)


def bars(request: Request, series: Callable[..., list[Bar]]) -> tuple[list[Bar], bool]:
    name = symbol(request)
    interval = request.params.get("interval", "")
    if interval not in INTERVALS:
        raise invalid("interval", f"must be one of {' '.join(INTERVALS)}.")
    limit = integer(request, "limit", 500, 1, 1440)
    first, end, ranged = bar_window(request, interval, limit)
    return series(name, interval, first, end, as_of_ms=request.now_ms), ranged


def klines(request: Request) -> list[dict[str, Any]]:
    found, ranged = bars(request, request.market.klines)
    rows = [
        {
            "open": b.open,
            "close": b.close,
            "high": b.high,
            "low": b.low,
            "volume": b.volume,
            "time": b.open_ms,
        }
        for b in found
    ]
    return ordered(request, rows, ranged)


def mark_klines(request: Request) -> list[dict[str, Any]]:
    found, ranged = bars(request, request.market.mark_klines)
    rows = [
        # closeTime equals openTime in the only example (BINGX_API §9); mirrored as seen.
        {"open": b.open, "close": b.close, "high": b.high, "low": b.low, "volume": b.volume}
        | {"openTime": b.open_ms, "closeTime": b.open_ms}
        for b in found
    ]
    return ordered(request, rows, ranged)
