"""Jittered, capped exponential backoff as a generator, shared by REST retries and WebSocket reconnects."""

from __future__ import annotations

import random
from collections.abc import Iterator


def backoff(
    first_s: float = 1.0, factor: float = 2.0, cap_s: float = 60.0, rng: random.Random | None = None
) -> Iterator[float]:
    """Return an endless iterator of the seconds to wait before each retry.

    The first wait is uniform in [0, first_s] so that many clients dropped at once do not come back at once;
    wait k (k >= 1) is uniform in [d/2, d] with d = min(cap_s, first_s * factor**k), so it never exceeds
    cap_s and never collapses to zero. Bad settings raise ValueError here, not at the first next().
    """
    if first_s <= 0 or factor < 1 or cap_s < first_s:
        raise ValueError(
            f"backoff needs 0 < first_s <= cap_s and factor >= 1, got {first_s}, {factor}, {cap_s}"
        )
    return _waits(first_s, factor, cap_s, rng or random.Random())


def _waits(first_s: float, factor: float, cap_s: float, rng: random.Random) -> Iterator[float]:
    yield rng.uniform(0.0, first_s)
    delay = first_s
    while True:
        delay = min(cap_s, delay * factor)
        yield rng.uniform(delay / 2, delay)
