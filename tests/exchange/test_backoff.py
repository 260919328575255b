"""Backoff: jittered, growing, capped; never zero after the first wait."""

from __future__ import annotations

import itertools
import random

import pytest

from exchange.backoff import backoff
from tests.exchange.fakes import Highest


def test_backoff_doubles_up_to_the_cap() -> None:
    waits = list(itertools.islice(backoff(1.0, 2.0, 30.0, rng=Highest()), 8))
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


@pytest.mark.parametrize("seed", range(20))
def test_jittered_waits_stay_between_half_and_the_full_delay(seed: int) -> None:
    waits = list(itertools.islice(backoff(0.5, 3.0, 20.0, rng=random.Random(seed)), 10))
    assert 0.0 <= waits[0] <= 0.5
    for k, wait in enumerate(waits[1:], start=1):
        delay = min(20.0, 0.5 * 3.0**k)
        assert delay / 2 <= wait <= delay


def test_two_clients_do_not_wait_in_lockstep() -> None:
    first = list(itertools.islice(backoff(rng=random.Random(1)), 5))
    second = list(itertools.islice(backoff(rng=random.Random(2)), 5))
    assert all(a != b for a, b in zip(first, second, strict=True))


@pytest.mark.parametrize(("first_s", "factor", "cap_s"), [(0.0, 2.0, 1.0), (1.0, 0.5, 5.0), (2.0, 2.0, 1.0)])
def test_nonsense_settings_are_refused(first_s: float, factor: float, cap_s: float) -> None:
    with pytest.raises(ValueError):
        backoff(first_s, factor, cap_s)
