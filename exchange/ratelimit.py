"""Client-side request budgets for BingX REST (BINGX_API.md §15.2), corrected by the server's headers.

Why a sliding-window log and not a plain token bucket: BingX counts requests in FIXED 10 s windows. A bucket
with capacity N refilling at N per window can spend N just before a window boundary and N more just after it,
so 2N requests land in one server window and the server throttles us (then bans us after repeated 429s).
A log of reservation times that admits a request only while fewer than N reservations lie in the last
(window + margin) seconds bounds EVERY interval of that length, hence every fixed window, whatever its phase.
The margin absorbs differences in network delay between requests. It still spends the full budget: N requests
per window + margin, i.e. 100 / 10.1 s ≈ 99% of the published rate, bursts included.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Final

# Public market data endpoints: the "market group" of the 2024 docs (BINGX_API.md §15.2).
MARKET_PREFIXES: Final = (
    "/openApi/swap/v1/market/",
    "/openApi/swap/v1/ticker/",
    "/openApi/swap/v2/quote/",
    "/openApi/swap/v2/server/",
    "/openApi/swap/v3/quote/",
)
KLINE_PATHS: Final = ("/openApi/swap/v3/quote/klines", "/openApi/swap/v2/quote/klines")
_MIN_WAIT_S = 1e-6  # a float wait below the clock's resolution would not move it: never sleep less
_SAME_WINDOW_S = 1.0  # two header readings whose windows end this close together describe the same window


def group_of(path: str) -> str:
    """The rate-limit group a REST path counts against: "klines", "market" or "account" (metrics' label)."""
    if path.startswith(KLINE_PATHS):
        return "klines"
    return "market" if path.startswith(MARKET_PREFIXES) else "account"


@dataclass(frozen=True)
class Budget:
    """At most `limit` requests per `window_s` seconds, for paths starting with one of `prefixes`.

    per_endpoint=False: one shared count for all matching paths (a group); True: one count per path.
    """

    name: str
    limit: int
    window_s: float
    prefixes: tuple[str, ...] = ("",)
    per_endpoint: bool = False

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_s <= 0:
            raise ValueError(f"budget {self.name!r} needs limit >= 1 and window_s > 0")

    def applies_to(self, path: str) -> bool:
        return path.startswith(self.prefixes)


# The strict published set: 2024 market-group budgets plus the per-endpoint ones (BINGX_API.md §15.2).
BINGX_BUDGETS: Final = (
    Budget("market group", 100, 10.0, MARKET_PREFIXES),
    Budget("market group per minute", 500, 60.0, MARKET_PREFIXES),
    Budget("endpoint", 500, 10.0, per_endpoint=True),
    Budget("klines", 5, 1.0, KLINE_PATHS, per_endpoint=True),
)


# Every limiter alive in this process: the metrics report the budget each has used (service/metrics.py).
LIMITERS: weakref.WeakSet[Limiter] = weakref.WeakSet()


@dataclass
class _ServerWindow:
    """What the x-ratelimit-requests-* headers last said about one endpoint's current window."""

    left: int
    until: float


@dataclass
class _Log:
    times: deque[float] = field(default_factory=deque)


class Limiter:
    """Blocks callers so that no budget is exceeded in any window; safe to share between threads."""

    def __init__(
        self,
        budgets: Sequence[Budget],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        margin_s: float = 0.1,
    ) -> None:
        if margin_s < 0:
            raise ValueError("margin_s must be >= 0")
        self.budgets = tuple(budgets)
        self.clock = clock
        self.sleep = sleep
        self.margin_s = margin_s
        self.seconds_waited = 0.0
        self._lock = threading.Lock()
        self._logs: dict[tuple[int, str], _Log] = {}
        self._server: dict[str, _ServerWindow] = {}
        self._sent: dict[str, deque[float]] = {}
        LIMITERS.add(self)

    def used(self) -> dict[str, float]:
        """The share (0..1) of each group budget taken in its current window; per-endpoint budgets report
        their fullest endpoint. A SharedLimiter knows every process's reservations as of its last acquire."""
        shares: dict[str, float] = {}
        with self._lock:
            now = self.clock()
            for (index, _), entry in list(self._logs.items()):
                budget = self.budgets[index]
                span = budget.window_s + self.margin_s
                recent = sum(1 for t in entry.times if t + span > now)
                shares[budget.name] = max(shares.get(budget.name, 0.0), recent / budget.limit)
        return shares

    @classmethod
    def bingx_default(
        cls,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        margin_s: float = 0.1,
    ) -> Limiter:
        """A limiter for BingX's strict published budgets (market group 100/10 s and 500/min, klines 5/s)."""
        return cls(BINGX_BUDGETS, clock=clock, sleep=sleep, margin_s=margin_s)

    def acquire(self, path: str) -> float:
        """Block until a request to path fits every budget, reserve it, and return the reservation time."""
        while True:
            with self._lock:
                now = self.clock()
                wait = self._wait_s(path, now)
                if wait <= 0:
                    self._reserve(path, now)
                    return now
                wait = max(wait, _MIN_WAIT_S)
                self.seconds_waited += wait
            self.sleep(wait)

    def observe(
        self, path: str, remain: int | None, expire_ms: int | None, sent_at: float | None = None
    ) -> None:
        """Learn from x-ratelimit-requests-remain / -expire that path has `remain` requests left in a window
        ending `expire_ms` from now. Only ever tightens: the budgets above still apply.

        sent_at (from acquire) lets us subtract the requests this client reserved after that one was sent,
        which the server had not counted yet when it answered.
        """
        if remain is None or expire_ms is None:
            return
        with self._lock:
            now = self.clock()
            later = sum(1 for t in self._sent.get(path, ()) if sent_at is not None and t > sent_at)
            left = max(0, remain - later)
            until = now + max(0, expire_ms) / 1000
            known = self._server.get(path)
            if known is not None and known.until > now and abs(known.until - until) < _SAME_WINDOW_S:
                left = min(left, known.left)  # answers can arrive out of order: the lowest count is newest
            self._server[path] = _ServerWindow(left, until)

    def _wait_s(self, path: str, now: float) -> float:
        wait = 0.0
        for index, budget in enumerate(self.budgets):
            if not budget.applies_to(path):
                continue
            times = self._log(index, budget, path).times
            span = budget.window_s + self.margin_s
            while times and times[0] + span <= now:
                times.popleft()
            if len(times) >= budget.limit:
                wait = max(wait, times[len(times) - budget.limit] + span - now)
        window = self._server.get(path)
        if window is not None:
            if window.until <= now:
                del self._server[path]
            elif window.left <= 0:
                wait = max(wait, window.until - now)
        return wait

    def _reserve(self, path: str, now: float) -> None:
        for index, budget in enumerate(self.budgets):
            if budget.applies_to(path):
                self._log(index, budget, path).times.append(now)
        window = self._server.get(path)
        if window is not None:
            window.left -= 1
        sent = self._sent.setdefault(path, deque(maxlen=1024))
        sent.append(now)

    def _log(self, index: int, budget: Budget, path: str) -> _Log:
        key = (index, path if budget.per_endpoint else "*")
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = _Log()
        return log


class SharedLimiter(Limiter):
    """A Limiter whose reservations live in a small file, so every process on the host draws from one budget.

    BingX limits the IP, not the process: the recorder's healing, a `backfill` and a `poll` running at the
    same time must share the budgets. Each acquire takes an exclusive flock on `path`, reads the reservation
    log, reserves if the request fits and writes the log back; it sleeps outside the lock. Times are wall
    clock seconds (comparable across processes). A lost file only forgets the last window: the server's
    headers still tighten the budget.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        budgets: Sequence[Budget] = BINGX_BUDGETS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = time.sleep,
        margin_s: float = 0.1,
    ) -> None:
        super().__init__(budgets, clock=clock, sleep=sleep, margin_s=margin_s)
        self.path = os.fspath(path)
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)

    def acquire(self, path: str) -> float:
        """Block until a request to path fits every budget of every process sharing the file; reserve it."""
        while True:
            with self._lock, _locked(self.path) as handle:
                self._logs = _read_logs(handle)
                now = self.clock()
                wait = self._wait_s(path, now)
                if wait <= 0:
                    self._reserve(path, now)
                    _write_logs(handle, self._logs)
                    return now
                wait = max(wait, _MIN_WAIT_S)
                self.seconds_waited += wait
            self.sleep(wait)


@contextlib.contextmanager
def _locked(path: str) -> Iterator[IO[str]]:
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield handle
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _read_logs(handle: IO[str]) -> dict[tuple[int, str], _Log]:
    handle.seek(0)
    text = handle.read()
    try:
        document = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:  # a torn write (power cut): start a fresh window
        document = {}
    logs: dict[tuple[int, str], _Log] = {}
    for name, times in document.items():
        index, _, key = name.partition(" ")
        logs[int(index), key] = _Log(deque(float(t) for t in times))
    return logs


def _write_logs(handle: IO[str], logs: dict[tuple[int, str], _Log]) -> None:
    document = {f"{index} {key}": list(log.times) for (index, key), log in logs.items() if log.times}
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(document))
    handle.flush()
