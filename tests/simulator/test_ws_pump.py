"""The WebSocket scheduler's pieces: time-boxed rounds that put warm feeds first, and next-hour prefetch."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from simulator import ws_topics as wt
from simulator.market import Market
from simulator.prices import HOUR_MS
from simulator.ws_feed import Feed, FeedOptions, feed_for
from simulator.ws_pump import Ahead, build_round

MARKET = Market(symbols=("BTC-USDT", "ETH-USDT"), seed=2)
NOW = 1_763_900_000_000


def feed(name: str) -> Feed:
    topic = wt.parse_topic(name, MARKET)
    assert topic is not None
    return feed_for(topic, MARKET, FeedOptions(), NOW - 1_000)


def test_a_round_builds_snapshots_and_due_frames_once_and_marks_feeds_warm() -> None:
    mark, incr = feed("BTC-USDT@markPrice"), feed("ETH-USDT@incrDepth")
    built = build_round([mark], [incr], NOW, 10.0, lambda: False)
    assert [(b.feed, len(b.frames), b.snapshot is not None) for b in built] == [
        (incr, 0, True),  # snapshots owed come first: a subscriber waits on them
        (mark, 1, False),
    ]
    assert mark.warm and incr.warm and not mark.is_due(NOW)
    assert built[0].snapshot is not None and built[0].snapshot.message["data"]["action"] == "all"


def test_an_exhausted_budget_still_warms_one_cold_feed_and_leaves_the_rest_due() -> None:
    cold = [feed("BTC-USDT@markPrice"), feed("ETH-USDT@markPrice")]
    built = build_round(cold, [], NOW, 0.0, lambda: False)
    assert [b.feed for b in built] == [cold[0]] and cold[1].is_due(NOW) and not cold[1].warm


def test_ahead_queues_subscribed_symbols_only_in_the_last_minutes_of_an_hour() -> None:
    server: Any = SimpleNamespace(feeds={"a": feed("BTC-USDT@trade"), "b": feed("BTC-USDT@ticker")})
    ahead = Ahead(MARKET)
    hour_end = (NOW // HOUR_MS + 1) * HOUR_MS
    assert not ahead.pending(hour_end - 30 * 60_000, server)
    assert ahead.pending(hour_end - 60_000, server) and ahead.symbols == ["BTC-USDT"]
    assert ahead.step() and not ahead.step()
    assert not ahead.pending(hour_end - 30_000, server)  # once per hour
