"""The incremental incrDepth book equals the full book at every step; its diffs are the full books' diffs."""

from __future__ import annotations

import random

import pytest

from simulator import book
from simulator.book_live import LiveBook
from simulator.market import Market
from simulator.ws_topics import book_diff

MARKET = Market(symbols=("BTC-USDT", "ETH-USDT", "ALT-USDT", "DOGE-USDT"), seed=1)
START_MS = 1_763_900_000_000
# Steps: within a tick, typical pushes, a minute, and a jump past the rebuild threshold.
STEPS_MS = (1, 50, 100, 200, 500, 500, 1_000, 5_000, 70_000)


@pytest.mark.parametrize("symbol", MARKET.symbols)
@pytest.mark.parametrize("levels", [5, 1000])
def test_live_book_tracks_the_full_book_and_its_diffs(symbol: str, levels: int) -> None:
    spec, rng = MARKET.spec(symbol), random.Random(levels)
    t = START_MS + rng.randrange(10**9)
    live, previous = LiveBook(spec, t, levels), book.book(spec, t, levels)
    assert live.sides() == previous
    mid_moves = 0
    for _ in range(150):
        t += rng.choice(STEPS_MS)
        bids, asks = live.advance(t)
        current = book.book(spec, t, levels)
        assert live.sides() == current
        assert bids == book_diff(dict(previous[0]), dict(current[0]), descending=True)
        assert asks == book_diff(dict(previous[1]), dict(current[1]), descending=True)
        mid_moves += previous[0][0] != current[0][0]
        previous = current
    assert mid_moves > 0  # the walk exercised ladder shifts, not only size changes


def test_a_live_book_never_moves_back_in_time() -> None:
    spec = MARKET.spec("BTC-USDT")
    live = LiveBook(spec, START_MS, 20)
    live.advance(START_MS + 1_000)
    assert live.advance(START_MS + 500) == ([], [])
    assert live.sides() == book.book(spec, START_MS + 1_000, 20)
