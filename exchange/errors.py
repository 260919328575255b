"""Failures that come from BingX or the network, sorted by what the caller should do."""

from __future__ import annotations


class ExchangeError(Exception):
    """Base for every failure that came from BingX or the network."""


class RetryableError(ExchangeError):
    """The same request may succeed later: timeouts, dropped sockets, HTTP 5xx."""


class RateLimited(RetryableError):
    """BingX asked us to slow down (HTTP 429 or code 100410); wait `retry_after_s` before the next call."""

    def __init__(self, path: str, retry_after_s: float, detail: str = "rate limited") -> None:
        super().__init__(f"{path}: {detail}, retry in {retry_after_s:.1f}s")
        self.path = path
        self.retry_after_s = retry_after_s


class FatalError(ExchangeError):
    """Retrying cannot help: unknown symbol, bad parameters, rejected subscription."""


class Banned(FatalError):
    """BingX banned this IP (HTTP 418/403) for continuing after rate limiting; stop and wait minutes.

    `retry_after_s` is how long the ban is expected to last (BINGX_API §15: ~5 minutes, no header says).
    """

    def __init__(self, message: str, retry_after_s: float = 300.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class FrameError(ExchangeError, ValueError):
    """A WebSocket frame that is not gzip-compressed UTF-8 text or not the JSON we expect; quarantine it."""
