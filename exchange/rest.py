"""HTTP transport for BingX REST: the envelope, error classification, retries, rate limits and signing.

Classify once, in `_classify`; the retry loop in `get` only tests the exception's type (STYLE.md snippet 5).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import orjson
import requests

from exchange.backoff import backoff
from exchange.errors import Banned, FatalError, RateLimited, RetryableError
from exchange.ratelimit import Limiter, group_of
from exchange.signing import (
    API_KEY_HEADER,
    Credentials,
    canonical_query,
    redact,
    redact_request_logs,
    signed_query,
)

log = logging.getLogger(__name__)

WINDOW_S: Final = (
    10.0  # BingX's fixed rate-limit window: the wait when a throttled answer has no expire header
)
BAN_S: Final = 300.0  # how long BingX's 418/403 bans last; also the cap for repeated throttle waits
RATE_LIMIT_CODES: Final = frozenset({100410, 109429})  # rate limited; too many invalid requests (§15.1)
REMAIN_HEADER: Final = "x-ratelimit-requests-remain"
EXPIRE_HEADER: Final = "x-ratelimit-requests-expire"
_RETRYABLE_TRANSPORT = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


@dataclass
class RestStats:
    """What a client has done so far; the backfill prints it as its summary."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0  # answers that were 429 / 100410 / 109429
    seconds_throttled: float = 0.0  # slept after throttled answers
    seconds_paced: float = 0.0  # waited in the limiter before sending


# Every client of this process together, by rate-limit group (exchange.ratelimit.group_of): plain counters
# the metrics read (service/metrics.py).
REQUESTS: Counter[str] = Counter()
THROTTLED: Counter[str] = Counter()


class RestClient:
    """GET BingX endpoints with retries, pacing and optional signing. Safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        session: requests.Session | None = None,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        limiter: Limiter | None = None,
        attempts: int = 8,
        timeout_s: float = 10.0,
        api_key: str | None = None,
        secret: str | None = None,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        self.base_url = base_url.rstrip("/")
        self._owns_session = session is None
        self.session = session if session is not None else requests.Session()
        self.sleep = sleep
        self.clock = clock
        self.limiter = limiter
        self.attempts = attempts
        self.timeout_s = timeout_s
        self.rng = rng
        self.wall_clock = wall_clock
        self.stats = RestStats()
        self._credentials = Credentials(api_key or "", secret or "") if (api_key or secret) else None
        if self._credentials is not None:
            redact_request_logs()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RestClient({self.base_url!r}, signed={self._credentials is not None})"

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """GET path; return BingX's JSON envelope once its `code` is 0.

        Retries RetryableError up to `attempts` times in all (jittered backoff; throttles wait out the window,
        longer each time in a row), then re-raises the last one. FatalError and Banned are raised at once.
        """
        params = dict(params or {})
        delays = backoff(first_s=1.0, factor=2.0, cap_s=30.0, rng=self.rng)
        throttles_in_a_row = 0
        for attempt in range(1, self.attempts + 1):
            try:
                return self._get_once(path, params)
            except RetryableError as error:
                if isinstance(error, RateLimited):
                    throttles_in_a_row += 1
                    wait = _throttle_wait(error.retry_after_s, throttles_in_a_row)
                    self._pause_others(path, wait)
                else:
                    throttles_in_a_row = 0
                    wait = next(delays)
                if attempt == self.attempts:
                    self._count(error, retried=False, wait_s=0.0)
                    raise
                self._count(error, retried=True, wait_s=wait)
                log.warning("%s (attempt %d/%d), retrying in %.1fs", error, attempt, self.attempts, wait)
                self.sleep(wait)
        raise AssertionError("unreachable")

    def _get_once(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        sent_at = self._pace(path)
        headers = {API_KEY_HEADER: self._credentials.api_key} if self._credentials else {}
        with self._lock:
            self.stats.requests += 1
            REQUESTS[group_of(path)] += 1
        try:
            response = self.session.get(self._url(path, params), headers=headers, timeout=self.timeout_s)
        except requests.Timeout as error:
            raise RetryableError(f"{path}: no answer from BingX within {self.timeout_s:g}s") from error
        except _RETRYABLE_TRANSPORT as error:
            text = self._redact(f"{type(error).__name__}: {error}")
            raise RetryableError(f"{path}: connection to BingX failed: {text}") from error
        with response:
            expire_ms = self._observe(path, response, sent_at)
            return self._classify(path, params, response, expire_ms)

    def _classify(
        self, path: str, params: Mapping[str, Any], response: requests.Response, expire_ms: int | None
    ) -> dict[str, Any]:
        status = response.status_code
        if status in (418, 403):
            raise Banned(
                f"{path}: BingX banned this IP for rate-limit abuse (HTTP {status}); "
                "wait ~5 minutes before retrying",
                BAN_S,
            )
        wait_s = WINDOW_S if expire_ms is None else max(0.0, expire_ms / 1000)
        if status == 429:
            raise RateLimited(path, wait_s, "HTTP 429")
        if status >= 500:
            raise RetryableError(f"{path}: HTTP {status} from BingX")
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            what = f"HTTP {status} with a body that is not a JSON object: {_preview(response.content)}"
            if status >= 400:
                raise FatalError(self._redact(f"{path} {_describe(params)}: {what}"))
            raise RetryableError(f"{path}: {what}")  # a proxy's error page: try again
        code = _code(body.get("code"))
        if code == 0 and status < 400:
            return body
        if code in RATE_LIMIT_CODES:
            raise RateLimited(path, wait_s, f"BingX code {code}")
        detail = f"BingX code {body.get('code')!r}: {body.get('msg')!r} (HTTP {status})"
        raise FatalError(self._redact(f"{path} {_describe(params)}: {detail}"))

    def _url(self, path: str, params: Mapping[str, Any]) -> str:
        if self._credentials is not None:
            now_ms = int(self.wall_clock() * 1000)  # built after pacing: recvWindow is 5 s
            query = signed_query(params, self._credentials.secret, now_ms)
        else:
            query = canonical_query(params, encode=True)
        return f"{self.base_url}{path}?{query}" if query else f"{self.base_url}{path}"

    def _pace(self, path: str) -> float | None:
        if self.limiter is None:
            return None
        started = self.clock()
        sent_at = self.limiter.acquire(path)
        waited = self.clock() - started
        with self._lock:
            self.stats.seconds_paced += waited
        return sent_at

    def _observe(self, path: str, response: requests.Response, sent_at: float | None) -> int | None:
        """Feed the rate-limit headers of every answer to the limiter; return expire (ms) if present."""
        remain = _header_int(response.headers, REMAIN_HEADER)
        expire_ms = _header_int(response.headers, EXPIRE_HEADER)
        if self.limiter is not None:
            self.limiter.observe(path, remain, expire_ms, sent_at)
        return expire_ms

    def _pause_others(self, path: str, wait_s: float) -> None:
        if self.limiter is not None:  # the other threads hitting this endpoint must wait too
            self.limiter.observe(path, 0, round(wait_s * 1000))

    def _count(self, error: RetryableError, retried: bool, wait_s: float) -> None:
        with self._lock:
            self.stats.retries += int(retried)
            if isinstance(error, RateLimited):
                self.stats.throttled += 1
                THROTTLED[group_of(error.path)] += 1
                self.stats.seconds_throttled += wait_s

    def _redact(self, text: str) -> str:
        return self._credentials.redact(text) if self._credentials else redact(text)


def _throttle_wait(retry_after_s: float, in_a_row: int) -> float:
    """Wait out the window once; a second throttle in a row means the window we were told about is not the
    exhausted one, so back off harder (doubling up to the ban length) rather than risk a 418."""
    if in_a_row <= 1:
        return retry_after_s
    return max(retry_after_s, min(BAN_S, WINDOW_S * 2.0 ** (in_a_row - 1)))


def _code(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)  # a few captures carry the code as a string (BINGX_API.md §1)
    return None


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return None if value is None else int(value.strip())
    except ValueError:
        return None


def _describe(params: Mapping[str, Any]) -> str:
    return "{" + canonical_query({k: v for k, v in params.items() if k != "signature"}, encode=False) + "}"


def _preview(content: bytes, limit: int = 80) -> str:
    text = " ".join(content[:limit].decode("utf-8", "replace").split())
    return repr(text + ("…" if len(content) > limit else ""))
