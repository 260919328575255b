"""The book engine against the simulator's true book: frames in, books out, and the resync rules."""

from __future__ import annotations

import random

import orjson
import pytest

from books.engine import BEFORE_SNAPSHOT, CROSSED, REPEAT, STEP_BACK, Engine
from schemas.depth import update_from_stream
from simulator import ws_topics as wt
from simulator.market import Market
from simulator.ws_feed import INCR_LEVELS, FeedOptions, IncrDepthFeed, feed_for

START_MS = 1_790_000_000_000


def _feed(market: Market, symbol: str, **faults: int) -> IncrDepthFeed:
    topic = wt.parse_topic(f"{symbol}@incrDepth", market)
    assert topic is not None
    feed = feed_for(topic, market, FeedOptions(seed=3), START_MS)
    assert isinstance(feed, IncrDepthFeed)
    feed.build(START_MS)  # builds the live book
    for name, count in faults.items():
        setattr(feed, name, count)
    return feed


def _apply(engine: Engine, message: wt.Message) -> str | None:
    # Through the wire text and the converter: what the recorder stores is what the engine reads.
    (row,) = update_from_stream(orjson.loads(orjson.dumps(message)))
    return engine.apply(
        row["action"],
        row["update_id"],
        row["event_time"],
        row["bid_prices"],
        row["bid_qtys"],
        row["ask_prices"],
        row["ask_qtys"],
    )


def _truth(market: Market, symbol: str, t_ms: int) -> tuple[list[tuple[float, float]], ...]:
    bids, asks = market.book(symbol, t_ms, INCR_LEVELS)
    return [(float(p), float(q)) for p, q in bids], [(float(p), float(q)) for p, q in asks]


def test_the_book_equals_the_true_book_after_every_update_of_a_busy_minute() -> None:
    market = Market(symbols=["BTC-USDT"], seed=11)
    feed = _feed(market, "BTC-USDT")
    engine = Engine("BTC-USDT")
    assert _apply(engine, feed.snapshot(START_MS)) is None
    jumps = 0
    for step in range(1, 301):  # a minute of 200 ms pushes
        now = START_MS + step * 200
        for message in feed.build(now):
            before = engine.book.update_id
            assert _apply(engine, message) is None
            jumps += engine.book.update_id - before > 1
            assert engine.book.top() == _truth(market, "BTC-USDT", now), f"step {step}"
    assert engine.applied > 200 and engine.resyncs == 0
    assert jumps > 100  # forward id jumps happened all along and were applied, never a resync


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("repeat", (REPEAT,)), ("backward", (STEP_BACK, CROSSED)), ("cross", (CROSSED,))],
)
def test_a_fault_resyncs_once_and_the_next_snapshot_is_the_true_book(fault: str, reason: tuple[str]) -> None:
    # A reordered pair can cross the book before the step back shows: either is that fault's one resync.
    market = Market(symbols=["ETH-USDT"], seed=4)
    feed = _feed(market, "ETH-USDT")
    engine = Engine("ETH-USDT")
    _apply(engine, feed.snapshot(START_MS))
    reasons: list[str] = []
    now = START_MS
    for step in range(1, 200):
        now = START_MS + step * 500
        if step == 20:
            setattr(feed, fault, 1)
        for message in feed.build(now):
            found = _apply(engine, message)
            if found is not None:
                reasons.append(found)
            if engine.valid:
                assert engine.book.top() == _truth(market, "ETH-USDT", now), f"step {step}"
        if not engine.valid and step % 7 == 0:  # a resubscribe brings a new `all`
            _apply(engine, feed.snapshot(now))
            assert engine.book.top() == _truth(market, "ETH-USDT", now)
    assert len(reasons) == 1 and reasons[0].startswith(reason), reasons
    assert engine.valid and engine.resyncs == 1


def test_a_silent_loss_of_a_best_level_lasts_until_it_crosses_or_the_next_snapshot() -> None:
    # incr_lose: the recorded books test expects one resync per loss, so a later update of the same level
    # must not repair the book first (the tracker resyncs on a crossed book, or on a disagreement with
    # depth that outlasts its tolerance). Over 12 seeds x 3 symbols x 3 moments: 0 repaired, most crossed.
    market = Market(symbols=["BTC-USDT"], seed=11)
    feed = _feed(market, "BTC-USDT")
    engine = Engine("BTC-USDT")
    _apply(engine, feed.snapshot(START_MS))
    now, lost_at, reasons = START_MS, None, []
    for step in range(1, 301):
        now = START_MS + step * 200
        if step == 10:
            feed.withhold_top = 1
        for message in feed.build(now):
            reason = _apply(engine, message)  # ids only jump forward: the loss itself is silent
            reasons += [reason] if reason is not None else []
        if lost_at is None and feed.withheld:
            lost_at = step
        if not engine.valid:  # the stale level ended up crossing the book: a resync as well
            break
        if lost_at is not None:
            assert engine.book.top(20) != tuple(side[:20] for side in _truth(market, "BTC-USDT", now)), step
    assert lost_at is not None and lost_at < 100  # the loss happened early, and lasted every push since
    assert all(reason.startswith(CROSSED) for reason in reasons) and len(reasons) <= 1, reasons
    _apply(engine, feed.snapshot(now))
    assert engine.book.top() == _truth(market, "BTC-USDT", now)
    for step in range(301, 351):  # after the `all`, updates carry every level again
        now = START_MS + step * 200
        for message in feed.build(now):
            _apply(engine, message)
        assert engine.book.top() == _truth(market, "BTC-USDT", now), step


def test_an_id_at_or_below_the_last_resyncs_but_a_forward_jump_does_not() -> None:
    engine = Engine("X")
    engine.apply("all", 10, 0, [99.0], [1.0], [101.0], [1.0])
    assert engine.apply("update", 11, 1, [98.0], [1.0], [], []) is None
    assert engine.apply("update", 19, 2, [97.0], [1.0], [], []) is None  # +8: normal on BingX
    reason = engine.apply("update", 15, 3, [96.0], [1.0], [], [])
    assert reason is not None and reason.startswith(STEP_BACK)
    engine.apply("all", 30, 4, [99.0], [1.0], [101.0], [1.0])
    engine.apply("update", 31, 5, [98.0], [1.0], [], [])
    reason = engine.apply("update", 31, 5, [98.0], [1.0], [], [])
    assert reason is not None and reason.startswith(REPEAT)
    assert engine.resyncs == 2 and 96.0 not in engine.book.bids.qtys


def test_an_update_before_any_snapshot_resyncs_and_later_ones_wait_quietly() -> None:
    engine = Engine("BTC-USDT")
    reason = engine.apply("update", 5, START_MS, [100.0], [1.0], [], [])
    assert reason is not None and reason.startswith(BEFORE_SNAPSHOT)
    assert engine.apply("update", 6, START_MS, [100.0], [2.0], [], []) is None
    assert engine.resyncs == 1 and engine.ignored == 1 and not engine.valid
    assert engine.apply("all", 9, START_MS, [100.0, 99.0], [1.0, 2.0], [101.0], [3.0]) is None
    assert engine.valid and engine.book.top(1) == ([(100.0, 1.0)], [(101.0, 3.0)])


def test_levels_apply_by_price_in_either_order_and_zero_deletes() -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    engine = Engine("X")
    engine.apply("all", 1, 0, [], [], [], [])
    bids: dict[float, float] = {}
    for update_id in range(2, 400):
        prices = rng.sample(range(1, 60), 6)
        qtys = [rng.choice([0.0, 0.5, 1.25, 3.0]) for _ in prices]
        for price, qty in zip(prices, qtys, strict=True):
            if qty:
                bids[float(price)] = qty
            else:
                bids.pop(float(price), None)
        assert engine.apply("update", update_id, 0, [float(p) for p in prices], qtys, [], []) is None
        assert engine.book.bids.top() == sorted(bids.items(), reverse=True), f"seed {seed}"
    assert engine.book.bids.top(3) == sorted(bids.items(), reverse=True)[:3], f"seed {seed}"
