"""The REST simulator's knobs and records: injected faults, BingX-style fixed-window rate limits, the ledger.

Thread-safe: request threads and the test thread touch these concurrently. No sockets in here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from threading import Lock
from typing import Any

FAULT_KINDS = ("fail", "rate_limit", "slow", "ban", "drop", "error", "mangle")


@dataclass
class Fault:
    """One armed fault: answers the next `remaining` matching requests in the way `kind` says."""

    kind: str  # fail: HTTP `status`; rate_limit: 429/200 + 100410; slow: sleep then answer; ban: 418;
    # drop: close the socket without answering; error: HTTP 200 with business `code` and `msg`;
    # mangle: answer normally, with `field` of item `index` of `data` replaced by `value`
    remaining: int
    path: str | None = None  # only requests to this path; None = any path
    status: int = 500
    seconds: float = 0.0
    code: int = 0
    msg: str = ""
    field: str = ""
    value: Any = None
    index: int = 0


class RestFaults:
    """Arm faults for the next N requests (optionally only for one path); each request consumes one."""

    def __init__(self) -> None:
        self._lock = Lock()
        self._armed: list[Fault] = []

    def fail_next(self, n: int = 1, status: int = 500, path: str | None = None) -> None:
        """Answer the next n requests with HTTP `status` (5xx by default) and a non-JSON body."""
        self._arm(Fault("fail", n, path, status=status))

    def rate_limit_next(self, n: int = 1, status: int = 429, path: str | None = None) -> None:
        """Answer the next n requests with code 100410, on HTTP 429 (or `status`, e.g. 200)."""
        self._arm(Fault("rate_limit", n, path, status=status))

    def slow_next(self, n: int = 1, seconds: float = 1.0, path: str | None = None) -> None:
        """Delay the next n answers by `seconds` (a client timeout shorter than this sees a timeout)."""
        self._arm(Fault("slow", n, path, seconds=seconds))

    def timeout_next(self, n: int = 1, seconds: float = 30.0, path: str | None = None) -> None:
        """Hold the next n requests for `seconds` before answering: long enough for any client timeout."""
        self.slow_next(n, seconds, path)

    def ban_next(self, n: int = 1, path: str | None = None) -> None:
        """Answer the next n requests with HTTP 418 (IP banned)."""
        self._arm(Fault("ban", n, path, status=418))

    def drop_next(self, n: int = 1, path: str | None = None) -> None:
        """Close the connection of the next n requests without any answer."""
        self._arm(Fault("drop", n, path))

    def error_next(
        self, n: int = 1, code: int = 109500, msg: str = "internal error", path: str | None = None
    ) -> None:
        """Answer the next n requests with HTTP 200 and a business error `code`."""
        self._arm(Fault("error", n, path, status=200, code=code, msg=msg))

    def mangle_next(
        self, n: int = 1, field: str = "", value: Any = None, index: int = 0, path: str | None = None
    ) -> None:
        """Answer the next n requests normally but set `field` of item `index` of `data` to `value`.

        One bad item in an otherwise good answer, e.g. a ticker's priceChangePercent as "0.31%".
        """
        self._arm(Fault("mangle", n, path, status=200, field=field, value=value, index=index))

    def arm(self, kind: str, n: int = 1, **options: Any) -> None:
        """Arm a fault by name (the admin endpoint's entry point)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        self._arm(Fault(kind, n, **options))

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def take(self, path: str) -> Fault | None:
        """Consume one use of the first armed fault that matches `path`."""
        with self._lock:
            for fault in self._armed:
                if fault.path is None or fault.path == path:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._armed.remove(fault)
                    return fault
        return None

    def _arm(self, fault: Fault) -> None:
        if fault.remaining > 0:
            with self._lock:
                self._armed.append(fault)


@dataclass(frozen=True)
class Verdict:
    """The rate limiter's answer for one request."""

    allowed: bool
    banned: bool
    remain: int
    expire_ms: int


@dataclass
class _Window:
    start_ms: int
    used: int = 0


# BingX's published public budgets (BINGX_API.md §15.2), for `RestServer(bingx_budgets=True)`:
# (name, limit, window ms, path prefixes, counted per endpoint). Fixed windows, as the exchange counts.
MARKET_PREFIXES = (
    "/openApi/swap/v1/market/",
    "/openApi/swap/v1/ticker/",
    "/openApi/swap/v2/quote/",
    "/openApi/swap/v2/server/",
    "/openApi/swap/v3/quote/",
)
KLINE_PATHS = ("/openApi/swap/v3/quote/klines", "/openApi/swap/v2/quote/klines")
BINGX_BUDGETS = (
    ("market group", 100, 10_000, MARKET_PREFIXES, False),
    ("market group per minute", 500, 60_000, MARKET_PREFIXES, False),
    ("klines", 5, 1_000, KLINE_PATHS, True),
)


class RateLimiter:
    """BingX's fixed 10 s windows per (client IP, endpoint), an optional per-IP group budget, then a ban.

    A client that gets more than `ban_after` throttled answers inside one window is banned (HTTP 418) for
    `ban_ms` (BINGX_API §15.2: 429, then 418 for one that keeps going).
    """

    def __init__(
        self,
        clock_ms: Callable[[], int],
        budget: int = 500,
        window_ms: int = 10_000,
        group_budget: int | None = None,
        ban_after: int = 5,
        ban_ms: int = 300_000,
        extra: tuple[tuple[str, int, int, tuple[str, ...], bool], ...] = (),
    ) -> None:
        self.clock_ms = clock_ms
        self.budget, self.window_ms, self.group_budget = budget, window_ms, group_budget
        self.extra = extra  # more fixed windows: (name, limit, window ms, path prefixes, per endpoint)
        self.ban_after, self.ban_ms = ban_after, ban_ms
        self._lock = Lock()
        self._windows: dict[tuple[str, str], _Window] = {}
        self._over: dict[str, _Window] = {}  # per IP: throttled answers in the current window
        self._banned_until: dict[str, int] = {}

    def check(self, client: str, path: str) -> Verdict:
        """Count one request and say whether it may be served."""
        now = self.clock_ms()
        with self._lock:
            if self._banned_until.get(client, 0) > now:
                window = self._window((client, path), now)
                return Verdict(False, True, max(0, self.budget - window.used), self._expire(window, now))
            window = self._window((client, path), now)
            group = self._window((client, "*"), now)
            window.used += 1
            group.used += 1
            over = window.used > self.budget or (
                self.group_budget is not None and group.used > self.group_budget
            )
            over = self._count_extra(client, path, now) or over
            verdict = Verdict(not over, False, max(0, self.budget - window.used), self._expire(window, now))
            if over and self._count_over(client, now) > self.ban_after:
                self._banned_until[client] = now + self.ban_ms
                return Verdict(False, True, verdict.remain, verdict.expire_ms)
            return verdict

    def _count_extra(self, client: str, path: str, now: int) -> bool:
        """Count the request in every extra window it falls under; say whether one is over its limit."""
        over = False
        for name, limit, window_ms, prefixes, per_endpoint in self.extra:
            if not path.startswith(prefixes):
                continue
            key = (client, f"{name}|{path if per_endpoint else '*'}")
            window = self._windows.get(key)
            if window is None or now - window.start_ms >= window_ms:
                window = self._windows[key] = _Window(now)
            window.used += 1
            over = over or window.used > limit
        return over

    def headers(self, client: str, path: str) -> Verdict:
        """Peek at the window without counting (for answers that bypass the limiter)."""
        now = self.clock_ms()
        with self._lock:
            window = self._window((client, path), now)
            return Verdict(True, False, max(0, self.budget - window.used), self._expire(window, now))

    def _window(self, key: tuple[str, str], now: int) -> _Window:
        window = self._windows.get(key)
        if window is None or now - window.start_ms >= self.window_ms:
            window = self._windows[key] = _Window(now)
        return window

    def _expire(self, window: _Window, now: int) -> int:
        return max(0, window.start_ms + self.window_ms - now)

    def _count_over(self, client: str, now: int) -> int:
        over = self._over.get(client)
        if over is None or now - over.start_ms >= self.window_ms:
            over = self._over[client] = _Window(now)
        over.used += 1
        return over.used


@dataclass(frozen=True)
class RestRequest:
    """One answered (or dropped) request as the simulator saw it."""

    path: str
    params: dict[str, str]
    status: int  # HTTP status; 0 when the connection was dropped without an answer
    code: int | None  # BingX business code of the body, None for non-JSON bodies
    rows: int  # items in `data` (1 for an object, 0 for null or errors)
    client: str
    time_ms: int
    fault: str | None = None  # the injected fault kind that shaped the answer


@dataclass
class RestLedger:
    """Everything the REST server answered, in arrival order."""

    requests: list[RestRequest] = field(default_factory=list)
    _lock: Lock = field(default_factory=Lock, repr=False)

    def record(self, request: RestRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def snapshot(self) -> list[RestRequest]:
        with self._lock:
            return list(self.requests)

    def for_path(self, path: str) -> list[RestRequest]:
        return [request for request in self.snapshot() if request.path == path]

    @property
    def throttled(self) -> int:
        """Answers that told the client to slow down: HTTP 429, code 100410 or HTTP 418."""
        return sum(1 for r in self.snapshot() if r.status in (429, 418) or r.code == 100410)

    @property
    def banned(self) -> int:
        return sum(1 for r in self.snapshot() if r.status == 418)
