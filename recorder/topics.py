"""Channels, topics and their assignment to connections: pure, no network."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence

from recorder.errors import TopicError

MAX_TOPICS_PER_CONNECTION = 200  # BingX answers 80403 to the 201st topic on one socket
MAX_CONNECTIONS = 60  # BingX's documented limit per IP


def check_channels(channels: Sequence[str]) -> list[str]:
    """Return the channels (order kept, duplicates dropped) once each maps to a stream dataset."""
    from schemas import CHANNELS, dataset_for_channel

    seen: list[str] = []
    for channel in channels:
        channel = channel.strip()
        if not channel or channel in seen:
            continue
        dataset = dataset_for_channel(channel)
        if dataset is None or dataset.from_stream is None:
            raise TopicError(
                f"unknown channel {channel!r}: expected {', '.join(CHANNELS)}, "
                "or another kline_<interval> or depth<5|10|20|50|100>[@<ms>]"
            )
        seen.append(channel)
    return seen


def topics_for(symbols: Iterable[str], channels: Sequence[str]) -> list[str]:
    """Every "<SYMBOL>@<channel>" topic, grouped by symbol so a symbol's channels share a connection."""
    return [f"{symbol}@{channel}" for symbol in symbols for channel in channels]


def shard(
    topics: Sequence[str], per_connection: int, max_connections: int = MAX_CONNECTIONS
) -> list[list[str]]:
    """Split topics into consecutive groups of at most `per_connection`; refuse more than fits."""
    if not 1 <= per_connection <= MAX_TOPICS_PER_CONNECTION:
        raise TopicError(
            f"topics per connection must be 1..{MAX_TOPICS_PER_CONNECTION}, got {per_connection}"
        )
    groups = [list(topics[start : start + per_connection]) for start in range(0, len(topics), per_connection)]
    if len(groups) > max_connections:
        raise TopicError(
            f"{len(topics)} topics need {len(groups)} connections of {per_connection}; "
            f"BingX allows {max_connections} per IP: record fewer symbols or channels"
        )
    return groups


class Pacer:
    """A token bucket that says whether one more subscription may go now (BingX: under 10 per second)."""

    def __init__(
        self, per_second: float, burst: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = 1.0 / per_second
        self.burst = burst
        self.clock = clock
        self._tokens = burst
        self._at = clock()
        self._lock = threading.Lock()

    def try_take(self) -> bool:
        """Take one token if one is there; never blocks."""
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) / self.interval)
            self._at = now
            if self._tokens >= 1.0 - 1e-9:  # float steps must not lose a token
                self._tokens -= 1.0
                return True
            return False
