"""The seeded market: trades, bars derived from them, funding, book, determinism."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise

import pytest

from simulator.intervals import INTERVALS, floor_open, next_open
from simulator.market import Bar, Market, Trade

DAY = 86_400_000
START = 1_780_012_800_000  # 2026-05-29 00:00 UTC, a day boundary
SYMBOLS = ("BTC-USDT", "ETH-USDT", "DOGE-USDT")


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(SYMBOLS, seed=7, trades_per_second=0.05)


def truth_bar(trades: list[Trade], open_ms: int, previous_close: str) -> Bar:
    if not trades:
        return Bar(open_ms, previous_close, previous_close, previous_close, previous_close, "0")
    prices = [Decimal(t.price) for t in trades]
    return Bar(
        open_ms,
        trades[0].price,
        str(max(prices)),
        str(min(prices)),
        trades[-1].price,
        str(sum(Decimal(t.qty) for t in trades)),
    )


def same_bar(bar: Bar, truth: Bar) -> bool:
    fields = ("open", "high", "low", "close", "volume")
    return bar.open_ms == truth.open_ms and all(
        Decimal(getattr(bar, f)) == Decimal(getattr(truth, f)) for f in fields
    )


def test_trade_ids_strictly_increase_with_time_across_days(market: Market) -> None:
    trades = market.trades("BTC-USDT", START - DAY // 2, START + DAY // 2)
    assert len(trades) > 2_000
    assert all(a.id < b.id and a.time_ms <= b.time_ms for a, b in pairwise(trades))
    assert {t.time_ms // DAY for t in trades} == {START // DAY - 1, START // DAY}
    assert all(START - DAY // 2 <= t.time_ms < START + DAY // 2 for t in trades)


def test_trades_include_legit_identical_fills_in_one_millisecond(market: Market) -> None:
    trades = market.trades("ETH-USDT", START, START + DAY)
    looks = Counter((t.time_ms, t.price, t.qty, t.is_buyer_maker) for t in trades)
    same_ms = Counter(t.time_ms for t in trades)
    assert any(n >= 2 for n in looks.values()), "no identical (time, price, qty, side) trades"
    assert sum(1 for n in same_ms.values() if n >= 2) > sum(1 for n in looks.values() if n >= 2)


def test_prices_and_quantities_have_the_contract_precision(market: Market) -> None:
    for symbol in SYMBOLS:
        row = market.contract(symbol)
        price = re.compile(rf"\d+\.\d{{{row['pricePrecision']}}}" if row["pricePrecision"] else r"\d+")
        qty = re.compile(rf"\d+\.\d{{{row['quantityPrecision']}}}" if row["quantityPrecision"] else r"\d+")
        trades = market.trades(symbol, START, START + 3_600_000)
        assert trades and all(price.fullmatch(t.price) and qty.fullmatch(t.qty) for t in trades)
        assert price.fullmatch(market.mark_price(symbol, START)) and price.fullmatch(
            market.last_price(symbol, START)
        )


def test_plausible_base_prices(market: Market) -> None:
    assert 60_000 < float(market.last_price("BTC-USDT", START)) < 130_000
    assert 2_000 < float(market.last_price("ETH-USDT", START)) < 4_500


def test_one_minute_klines_aggregate_exactly_the_trades(market: Market) -> None:
    bars = market.klines("BTC-USDT", "1m", START, START + 6 * 3_600_000)
    trades = market.trades("BTC-USDT", START - 3_600_000, START + 6 * 3_600_000)
    assert [b.open_ms for b in bars] == list(range(START, START + 6 * 3_600_000, 60_000))
    previous = [t for t in trades if t.time_ms < START][-1].price
    empty = 0
    for bar in bars:
        inside = [t for t in trades if bar.open_ms <= t.time_ms < bar.open_ms + 60_000]
        assert same_bar(bar, truth_bar(inside, bar.open_ms, previous)), bar
        previous, empty = bar.close, empty + (not inside)
    assert empty > 0, "a quiet minute must repeat the previous close with volume 0"


@pytest.mark.parametrize("interval", ["5m", "1h", "4h", "1d"])
def test_longer_bars_merge_the_one_minute_bars(market: Market, interval: str) -> None:
    minutes = market.klines("ETH-USDT", "1m", START - DAY, START + DAY)
    for bar in market.klines("ETH-USDT", interval, START - DAY, START + DAY):
        inside = [m for m in minutes if bar.open_ms <= m.open_ms < next_open(interval, bar.open_ms)]
        traded = [m for m in inside if Decimal(m.volume)] or inside[-1:]  # quiet minutes only repeat a close
        assert bar.open == traded[0].open and bar.close == traded[-1].close == inside[-1].close
        assert Decimal(bar.high) == max(Decimal(m.high) for m in traded)
        assert Decimal(bar.low) == min(Decimal(m.low) for m in traded)
        assert Decimal(bar.volume) == sum(Decimal(m.volume) for m in inside)


def test_as_of_cuts_the_open_bar_and_hides_later_bars(market: Market) -> None:
    as_of = START + 3 * 3_600_000 + 1_234_567
    bars = market.klines("BTC-USDT", "1h", START, START + DAY, as_of_ms=as_of)
    assert bars[-1].open_ms == floor_open("1h", as_of) and len(bars) == 4
    trades = market.trades("BTC-USDT", bars[-1].open_ms, as_of)
    assert same_bar(bars[-1], truth_bar(trades, bars[-1].open_ms, bars[-2].close))
    assert bars[:-1] == market.klines("BTC-USDT", "1h", START, START + 3 * 3_600_000)


def test_bar_boundaries_weeks_on_monday_months_on_the_first() -> None:
    t = START + 5 * DAY + 123
    week = datetime.fromtimestamp(floor_open("1w", t) / 1000, tz=UTC)
    month = datetime.fromtimestamp(floor_open("1M", t) / 1000, tz=UTC)
    assert (week.weekday(), week.hour, week.minute) == (0, 0, 0)
    assert (month.day, month.hour) == (1, 0)
    assert (
        datetime.fromtimestamp(next_open("1M", floor_open("1M", t)) / 1000, tz=UTC).month == month.month + 1
    )
    assert len(INTERVALS) == 15 and all(
        floor_open(i, t) <= t < next_open(i, floor_open(i, t)) for i in INTERVALS
    )


def test_every_interval_has_bars_and_no_bar_precedes_the_listing() -> None:
    listed = START - 7_777_777
    market = Market(("BTC-USDT",), seed=1, trades_per_second=0.01, listed_ms=listed)
    for interval in INTERVALS:
        bars = market.klines("BTC-USDT", interval, START - 60 * DAY, listed + DAY // 4)
        assert bars, interval
        assert bars[0].open_ms == floor_open(interval, listed)
        assert bars[-1].open_ms == floor_open(interval, listed + DAY // 4 - 1)
        marks = market.mark_klines("BTC-USDT", interval, START - 60 * DAY, listed + DAY // 4)
        assert [m.open_ms for m in marks] == [b.open_ms for b in bars]
        assert all(Decimal(m.low) <= min(Decimal(m.open), Decimal(m.close)) for m in marks)
        assert all(Decimal(m.high) >= max(Decimal(m.open), Decimal(m.close)) for m in marks)


def test_funding_settles_on_the_contracts_interval(market: Market) -> None:
    for symbol in SYMBOLS:
        hours = market.funding_interval_hours(symbol)
        settlements = market.funding(symbol, START, START + DAY)
        assert hours in (1, 2, 4, 8) and len(settlements) == 24 // hours
        assert all(t % (hours * 3_600_000) == 0 for t, _ in settlements)
        assert all(re.fullmatch(r"-?0\.\d{8}", rate) for _, rate in settlements)
        assert market.next_funding_ms(symbol, START) == START + hours * 3_600_000


def test_book_sides_are_sorted_and_change_a_few_levels_per_tick(market: Market) -> None:
    changed = []
    previous: tuple[list[tuple[str, str]], list[tuple[str, str]]] = ([], [])
    for tick in range(20):
        bids, asks = market.book("BTC-USDT", START + tick * 100, 50)
        assert len(bids) == len(asks) == 50
        bid_prices, ask_prices = [Decimal(p) for p, _ in bids], [Decimal(p) for p, _ in asks]
        assert bid_prices == sorted(bid_prices, reverse=True) and ask_prices == sorted(ask_prices)
        assert bid_prices[0] < ask_prices[0]
        if tick:
            changed.append(len(set(bids + asks) - set(previous[0] + previous[1])))
        previous = (bids, asks)
    assert any(changed) and max(changed) < 30


def test_same_seed_same_market_and_another_seed_another() -> None:
    one, two, other = (Market(("BTC-USDT",), seed=s, trades_per_second=0.05) for s in (3, 3, 4))
    assert one.trades("BTC-USDT", START, START + DAY) == two.trades("BTC-USDT", START, START + DAY)
    assert one.book("BTC-USDT", START, 20) == two.book("BTC-USDT", START, 20)
    assert one.funding("BTC-USDT", START, START + DAY) == two.funding("BTC-USDT", START, START + DAY)
    assert one.trades("BTC-USDT", START, START + DAY) != other.trades("BTC-USDT", START, START + DAY)
    assert one.klines("BTC-USDT", "1h", START, START + DAY) != other.klines(
        "BTC-USDT", "1h", START, START + DAY
    )


def test_trade_paging_helpers_agree_with_the_window(market: Market) -> None:
    window = market.trades("DOGE-USDT", START - DAY, START + DAY)
    assert market.recent_trades("DOGE-USDT", START + DAY, 300) == window[-300:]
    assert market.trades_from_id("DOGE-USDT", window[10].id, 500, START + DAY) == window[10:510]
    assert market.trades_from_id("DOGE-USDT", window[-5].id, 500, START + DAY) == window[-5:]


def test_paused_contract_reports_status_25(market: Market) -> None:
    market.pause("ETH-USDT")
    try:
        assert market.contract("ETH-USDT")["status"] == 25 and market.is_paused("ETH-USDT")
    finally:
        market.pause("ETH-USDT", False)
    assert market.contract("ETH-USDT")["status"] == 1
