"""Signed BingX REST (BINGX_API.md §16): the server-time offset measured and applied, and POST/PUT/DELETE in
the query or the JSON-body form. Knows transport only: nothing about datasets.

The secret signs; it is never sent, logged or put in an error. A listenKey appears in errors as a short hash.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson
import requests

from exchange.backoff import backoff
from exchange.errors import FatalError, RateLimited, RetryableError
from exchange.ratelimit import BINGX_BUDGETS, Budget, Limiter
from exchange.rest import _RETRYABLE_TRANSPORT, RestClient
from exchange.signing import (
    API_KEY_HEADER,
    Credentials,
    canonical_query,
    short_hash,
    signed_params,
    signed_query,
)

log = logging.getLogger(__name__)

SERVER_TIME_PATH: Final = "/openApi/swap/v2/server/time"
RECV_WINDOW_MS: Final = 5000  # BingX's default; a request older than this on arrival is refused (100421)
LISTEN_KEY: Final = "listenKey"


# BingX's authentication refusals (BINGX_API.md §15.1): what each means for the user, in one line.
_AUTH_HINTS: Final = {
    100413: "BingX refused the API key (code 100413): check BINGX_API_KEY",
    100001: "BingX refused the signature (code 100001): the API secret does not match the key; "
    "check BINGX_API_SECRET",
    100412: "BingX got no signature (code 100412)",
    100419: "BingX refused this IP for the API key (code 100419): add it to the key's IP whitelist",
    100421: "BingX refused the timestamp (code 100421): the clock is off by more than recvWindow",
    100004: "the API key lacks the permission this endpoint needs (code 100004)",
}


# The signed endpoints' own budgets (SEED: "rate limitation by UID: 5/s" for balance, positions, income and
# commission rate; 2/s for the listenKey calls, BINGX_API.md §16), on top of the published market ones.
ACCOUNT_BUDGETS: Final = (
    Budget(
        "account endpoint", 5, 1.0, ("/openApi/swap/v2/user/", "/openApi/swap/v3/user/"), per_endpoint=True
    ),
    Budget("listenKey", 2, 1.0, ("/openApi/user/auth/userDataStream",)),
)


def account_limiter() -> Limiter:
    """A limiter for BingX's published market budgets plus the signed endpoints' UID budgets."""
    return Limiter((*BINGX_BUDGETS, *ACCOUNT_BUDGETS))


class Unauthorized(FatalError):
    """BingX refused the credentials (wrong key or secret, IP whitelist, clock): fix the setup, then retry."""

    def __init__(self, path: str, code: int) -> None:
        super().__init__(f"{path}: {_AUTH_HINTS[code]}")
        self.code = code


class SignedClient(RestClient):
    """A RestClient whose every GET is signed with a timestamp on the server's clock; `send` does the rest."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        wall_clock: Callable[[], float] = time.time,
        recv_window_ms: int = RECV_WINDOW_MS,
        **options: Any,
    ) -> None:
        self._local_clock = wall_clock
        self.offset_ms = 0  # server clock minus ours, from measure_offset()
        self.recv_window_ms = recv_window_ms
        self.credentials = credentials
        super().__init__(
            base_url,
            api_key=credentials.api_key,
            secret=credentials.secret,
            wall_clock=self._server_clock,
            **options,
        )

    def __repr__(self) -> str:
        return f"SignedClient({self.base_url!r}, offset_ms={self.offset_ms})"

    def _server_clock(self) -> float:
        return self._local_clock() + self.offset_ms / 1000

    def measure_offset(self) -> int:
        """Measure the server's clock against ours (midpoint of the round trip), apply it, return it in ms."""
        before = self._local_clock()
        body = RestClient.get(self, SERVER_TIME_PATH, {})
        after = self._local_clock()
        server_ms = int(body["data"]["serverTime"])
        self.offset_ms = server_ms - round((before + after) * 500)
        log.debug("server clock offset %+d ms (round trip %.0f ms)", self.offset_ms, (after - before) * 1000)
        return self.offset_ms

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Signed GET: recvWindow and timestamp added, signature last (RestClient does the signing).

        A timestamp refusal (100421) re-measures the server's clock once and tries again: over weeks the
        two clocks drift apart.
        """
        stamped = {"recvWindow": self.recv_window_ms, **(params or {})}
        try:
            return super().get(path, stamped)
        except Unauthorized as error:
            if error.code != 100421 or path == SERVER_TIME_PATH:
                raise
            self.measure_offset()
            return super().get(path, stamped)

    def send(
        self, method: str, path: str, params: Mapping[str, Any] | None = None, form: str = "key-only"
    ) -> dict[str, Any]:
        """POST/PUT/DELETE path; return the JSON body once BingX accepted it. Retries RetryableError.

        form: "key-only" (the API-key header, params in the query: the listenKey endpoints), "query" (signed
        query string) or "body" (signed parameters as a JSON body).
        """
        if form not in ("key-only", "query", "body"):
            raise ValueError(f"form must be key-only, query or body, got {form!r}")
        delays = backoff(first_s=1.0, factor=2.0, cap_s=30.0, rng=self.rng)
        for attempt in range(1, self.attempts + 1):
            try:
                return self._send_once(method.upper(), path, dict(params or {}), form)
            except RetryableError as error:
                if attempt == self.attempts:
                    raise
                wait = error.retry_after_s if isinstance(error, RateLimited) else next(delays)
                log.warning("%s (attempt %d/%d), retrying in %.1fs", error, attempt, self.attempts, wait)
                self.sleep(wait)
        raise AssertionError("unreachable")

    def _send_once(self, method: str, path: str, params: dict[str, Any], form: str) -> dict[str, Any]:
        sent_at = self._pace(path)
        headers = {API_KEY_HEADER: self.credentials.api_key}
        url, body = self._request_parts(path, params, form)
        if body is not None:
            headers["Content-Type"] = "application/json"
        with self._lock:
            self.stats.requests += 1
        shown = _shown(params)
        try:
            response = self.session.request(method, url, headers=headers, data=body, timeout=self.timeout_s)
        except requests.Timeout:
            raise RetryableError(
                f"{method} {path}: no answer from BingX within {self.timeout_s:g}s"
            ) from None
        except _RETRYABLE_TRANSPORT as error:
            text = self._hide(f"{type(error).__name__}: {error}", params)
            raise RetryableError(f"{method} {path}: connection to BingX failed: {text}") from None
        with response:
            expire_ms = self._observe(path, response, sent_at)
            if response.status_code < 400:
                try:
                    parsed = orjson.loads(response.content)
                except orjson.JSONDecodeError:
                    parsed = None
                # The older listenKey answer is bare: {"listenKey": "..."} without an envelope (§16, §27.8)
                if isinstance(parsed, dict) and "code" not in parsed and LISTEN_KEY in parsed:
                    return parsed
            return self._classify(f"{method} {path}", shown, response, expire_ms)

    def _classify(
        self, path: str, params: Mapping[str, Any], response: requests.Response, expire_ms: int | None
    ) -> dict[str, Any]:
        try:
            code = orjson.loads(response.content).get("code")
        except (orjson.JSONDecodeError, AttributeError):
            code = None
        if isinstance(code, int) and code in _AUTH_HINTS:
            raise Unauthorized(path, code)
        return super()._classify(path, params, response, expire_ms)

    def _request_parts(self, path: str, params: dict[str, Any], form: str) -> tuple[str, bytes | None]:
        base = f"{self.base_url}{path}"
        if form == "key-only":
            query = canonical_query(params, encode=True)
            return (f"{base}?{query}" if query else base), None
        now_ms = int(self.wall_clock() * 1000)
        stamped = {"recvWindow": self.recv_window_ms, **params}
        if form == "body":
            return base, orjson.dumps(signed_params(stamped, self.credentials.secret, now_ms))
        return f"{base}?{signed_query(stamped, self.credentials.secret, now_ms)}", None

    def _hide(self, text: str, params: Mapping[str, Any]) -> str:
        token = params.get(LISTEN_KEY)
        if isinstance(token, str) and token:
            text = text.replace(token, short_hash(token))
        return self._redact(text)


def _shown(params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters as an error message may show them: a listenKey as its short hash."""
    token = params.get(LISTEN_KEY)
    if isinstance(token, str) and token:
        return {**params, LISTEN_KEY: short_hash(token)}
    return dict(params)
