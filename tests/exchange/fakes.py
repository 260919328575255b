"""Fakes for time and randomness: tests never sleep and never depend on luck."""

from __future__ import annotations

import random


class FakeClock:
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Highest(random.Random):
    """Always picks the top of the range: backoff waits become exact."""

    def uniform(self, a: float, b: float) -> float:
        return b
