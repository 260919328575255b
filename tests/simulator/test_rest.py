"""The REST simulator driven with plain requests: shapes, paging walks, validation errors."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from simulator.endpoints import Options
from simulator.market import Market
from simulator.rest import RestServer

DAY = 86_400_000
NOW = 1_780_012_800_000 + 12_345_678  # fixed server clock: 2026-05-29 03:25:45.678 UTC
WINDOW = (NOW - 3 * DAY - 7 * 60_000, NOW - 7 * 60_000)  # a 3-day window, not aligned to days
SYMBOLS = ("BTC-USDT", "ETH-USDT", "SOL-USDT")
KLINES = "/openApi/swap/v3/quote/klines"
MARK_KLINES = "/openApi/swap/v1/market/markPriceKlines"
FUNDING = "/openApi/swap/v2/quote/fundingRate"
HISTORICAL = "/openApi/swap/v1/market/historicalTrades"
DEPTH = "/openApi/swap/v2/quote/depth"


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(SYMBOLS, seed=11, trades_per_second=0.02)


def serve(market: Market, **knobs: Any) -> RestServer:
    return RestServer(market, clock_ms=lambda: NOW, **knobs)


@pytest.fixture(scope="module")
def server(market: Market) -> Iterator[RestServer]:
    with serve(market) as running:
        yield running


def get(server: RestServer, path: str, **params: Any) -> dict[str, Any]:
    response = requests.get(server.url + path, params=params, timeout=5)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def data(server: RestServer, path: str, **params: Any) -> Any:
    body = get(server, path, **params)
    assert body["code"] == 0 and body["msg"] == "", body
    return body["data"]


def types_of(row: dict[str, Any]) -> dict[str, type]:
    return {key: type(value) for key, value in row.items()}


# ---- shapes (BINGX_API §2–14) ----


def test_server_time_and_contracts_shapes(server: RestServer) -> None:
    assert data(server, "/openApi/swap/v2/server/time") == {"serverTime": NOW}
    rows = data(server, "/openApi/swap/v2/quote/contracts")
    assert [row["symbol"] for row in rows] == list(SYMBOLS)
    row = rows[0]
    strings = (
        "contractId",
        "symbol",
        "displayName",
        "size",
        "currency",
        "asset",
        "apiStateOpen",
        "apiStateClose",
    )
    assert all(isinstance(row[key], str) for key in (*strings, "brokerState"))
    ints = ("quantityPrecision", "pricePrecision", "tradeMinLimit", "maxLongLeverage", "status", "launchTime")
    assert all(type(row[key]) is int for key in (*ints, "maxShortLeverage", "maintainTime", "offTime"))
    numbers = ("feeRate", "makerFeeRate", "takerFeeRate", "tradeMinQuantity", "tradeMinUSDT")
    assert all(isinstance(row[key], int | float) and not isinstance(row[key], bool) for key in numbers)
    assert row["status"] == 1 and row["apiStateOpen"] == "true"
    assert data(server, "/openApi/swap/v2/quote/contracts", symbol="ETH-USDT")[0]["symbol"] == "ETH-USDT"


@pytest.mark.parametrize("limit", [5, 20, 100])
def test_depth_shape_best_first_on_both_sides(server: RestServer, limit: int) -> None:
    book = data(server, DEPTH, symbol="BTC-USDT", limit=limit)
    assert set(book) == {"T", "bids", "asks", "bidsCoin", "asksCoin"} and book["T"] == NOW
    assert len(book["bids"]) == len(book["asks"]) == limit
    assert all(isinstance(p, str) and isinstance(q, str) for p, q in book["bids"] + book["asks"])
    bids, asks = [Decimal(p) for p, _ in book["bids"]], [Decimal(p) for p, _ in book["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]
    assert book["bidsCoin"] == book["bids"] and book["asksCoin"] == book["asks"]


def test_recent_trades_newest_first_with_fill_ids(server: RestServer, market: Market) -> None:
    rows = data(server, "/openApi/swap/v2/quote/trades", symbol="ETH-USDT", limit=30)
    assert types_of(rows[0]) == {
        "time": int, "isBuyerMaker": bool, "price": str, "qty": str, "quoteQty": str, "fillId": str,
    }  # fmt: skip
    truth = market.recent_trades("ETH-USDT", NOW, 30)
    assert [row["fillId"] for row in rows] == [str(t.id) for t in reversed(truth)]
    row, trade = rows[0], truth[-1]
    assert Decimal(row["quoteQty"]) == (Decimal(trade.price) * Decimal(trade.qty)).quantize(Decimal("0.01"))


def test_premium_index_object_with_symbol_array_without(server: RestServer, market: Market) -> None:
    row = data(server, "/openApi/swap/v2/quote/premiumIndex", symbol="BTC-USDT")
    assert types_of(row) == {
        "symbol": str, "markPrice": str, "indexPrice": str, "lastFundingRate": str,
        "nextFundingTime": int, "fundingIntervalHours": int, "updateTime": int,
    }  # fmt: skip
    assert row["nextFundingTime"] == market.next_funding_ms("BTC-USDT", NOW) > NOW > row["updateTime"]
    assert [r["symbol"] for r in data(server, "/openApi/swap/v2/quote/premiumIndex")] == list(SYMBOLS)


def test_open_interest_ticker_book_ticker_and_price_shapes(server: RestServer, market: Market) -> None:
    oi = data(server, "/openApi/swap/v2/quote/openInterest", symbol="SOL-USDT")
    assert types_of(oi) == {"openInterest": str, "symbol": str, "time": int}
    ticker = data(server, "/openApi/swap/v2/quote/ticker", symbol="BTC-USDT")
    assert {k for k, v in ticker.items() if isinstance(v, str)} == {
        "symbol", "priceChange", "priceChangePercent", "lastPrice", "lastQty", "highPrice", "lowPrice",
        "volume", "quoteVolume", "openPrice", "askPrice", "askQty", "bidPrice", "bidQty",
    }  # fmt: skip
    assert type(ticker["openTime"]) is int and type(ticker["closeTime"]) is int
    assert ticker["lastPrice"] == market.last_price("BTC-USDT", NOW)
    assert len(data(server, "/openApi/swap/v2/quote/ticker")) == 3
    book = data(server, "/openApi/swap/v2/quote/bookTicker", symbol="BTC-USDT")["book_ticker"]
    assert types_of(book) == {
        "symbol": str,
        "bid_price": float,
        "bid_qty": float,
        "ask_price": float,
        "ask_qty": float,
    }
    price = data(server, "/openApi/swap/v1/ticker/price", symbol="ETH-USDT")
    assert types_of(price) == {"symbol": str, "price": str, "time": int}
    assert data(server, "/openApi/swap/v2/quote/price", symbol="ETH-USDT") == price
    assert [p["symbol"] for p in data(server, "/openApi/swap/v1/ticker/price")] == list(SYMBOLS)


def test_kline_shapes_and_latest_bars_include_the_open_bar_newest_first(
    server: RestServer, market: Market
) -> None:
    rows = data(server, KLINES, symbol="BTC-USDT", interval="1h", limit=5)
    assert types_of(rows[0]) == {
        "open": str,
        "close": str,
        "high": str,
        "low": str,
        "volume": str,
        "time": int,
    }
    truth = market.klines("BTC-USDT", "1h", NOW - 5 * 3_600_000, NOW, as_of_ms=NOW)
    assert [row["time"] for row in rows] == [bar.open_ms for bar in reversed(truth)]
    assert rows[0]["time"] == NOW // 3_600_000 * 3_600_000  # the still-open bar
    marks = data(server, MARK_KLINES, symbol="BTC-USDT", interval="1M", limit=2)
    assert types_of(marks[0]) == {
        "open": str, "close": str, "high": str, "low": str, "volume": str, "openTime": int, "closeTime": int,
    }  # fmt: skip
    assert marks[0]["openTime"] > marks[1]["openTime"]


def test_historical_trades_shape_with_and_without_api_key(server: RestServer, market: Market) -> None:
    plain = data(server, HISTORICAL, symbol="BTC-USDT")
    keyed = requests.get(
        server.url + HISTORICAL, params={"symbol": "BTC-USDT"}, headers={"X-BX-APIKEY": "k"}, timeout=5
    ).json()["data"]
    assert plain == keyed and len(plain) == 50
    assert types_of(plain[0]) == {
        "time": int, "isBuyerMaker": bool, "price": str, "qty": str, "quoteQty": str, "id": str,
    }  # fmt: skip
    assert [row["id"] for row in plain] == [str(t.id) for t in market.recent_trades("BTC-USDT", NOW, 50)]


# ---- paging walks: every bar, settlement and trade exactly once ----


def walk_bars(server: RestServer, path: str, symbol: str, interval: str, limit: int) -> list[dict[str, Any]]:
    key = "time" if path == KLINES else "openTime"
    seen: list[dict[str, Any]] = []
    start, end = WINDOW[0], WINDOW[1] - 1
    while start <= end:
        page = data(server, path, symbol=symbol, interval=interval, startTime=start, endTime=end, limit=limit)
        if not page:
            break
        page.sort(key=lambda row: row[key])  # the order is UNCONFIRMED: clients sort (BINGX_API §8)
        seen.extend(page)
        start = page[-1][key] + 60_000
    return seen


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_kline_walk_returns_every_bar_once_equal_to_the_market(market: Market, order: str) -> None:
    with serve(market, options=Options(order=order)) as server:
        for symbol in ("BTC-USDT", "SOL-USDT"):
            rows = walk_bars(server, KLINES, symbol, "1m", 1000)
            truth = market.klines(symbol, "1m", WINDOW[0], WINDOW[1], as_of_ms=NOW)
            assert [r["time"] for r in rows] == [b.open_ms for b in truth] and len(truth) == 3 * 1440
            assert [(r["open"], r["high"], r["low"], r["close"], r["volume"]) for r in rows] == [
                (b.open, b.high, b.low, b.close, b.volume) for b in truth
            ]
        marks = walk_bars(server, MARK_KLINES, "ETH-USDT", "1m", 1440)
        truth = market.mark_klines("ETH-USDT", "1m", WINDOW[0], WINDOW[1], as_of_ms=NOW)
        assert [(r["openTime"], r["open"], r["close"]) for r in marks] == [
            (b.open_ms, b.open, b.close) for b in truth
        ]


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_funding_walk_returns_every_settlement_once(market: Market, order: str) -> None:
    with serve(market, options=Options(order=order)) as server:
        for symbol in SYMBOLS:
            seen: list[tuple[int, str]] = []
            start = WINDOW[0]
            while True:
                page = data(server, FUNDING, symbol=symbol, startTime=start, endTime=WINDOW[1] - 1, limit=4)
                if not page:
                    break
                assert len(page) <= 4
                page.sort(key=lambda row: row["fundingTime"])
                seen.extend((row["fundingTime"], row["fundingRate"]) for row in page)
                start = page[-1]["fundingTime"] + 1
            assert seen == market.funding(symbol, WINDOW[0], WINDOW[1])
            assert len(seen) == 3 * 24 // market.funding_interval_hours(symbol)


def test_historical_trades_walk_by_from_id_returns_every_trade_once(
    server: RestServer, market: Market
) -> None:
    truth = market.trades("SOL-USDT", WINDOW[0], WINDOW[1])
    seen: list[dict[str, Any]] = []
    from_id = truth[0].id
    while True:
        page = data(server, HISTORICAL, symbol="SOL-USDT", fromId=from_id, limit=100)
        page = [row for row in page if row["time"] < WINDOW[1]]
        if not page:
            break
        seen.extend(page)
        from_id = int(page[-1]["id"]) + 1
    assert len(truth) > 4_000
    assert [(int(r["id"]), r["time"], r["price"], r["qty"], r["isBuyerMaker"]) for r in seen] == [
        (t.id, t.time_ms, t.price, t.qty, t.is_buyer_maker) for t in truth
    ]


def test_klines_aggregate_the_trades_served_by_historical_trades(server: RestServer, market: Market) -> None:
    start = (WINDOW[0] // 900_000 + 1) * 900_000
    bars = data(server, KLINES, symbol="ETH-USDT", interval="15m", startTime=start, limit=8)
    trades = market.trades("ETH-USDT", start, start + 8 * 15 * 60_000)
    assert sorted(bar["time"] for bar in bars) == list(range(start, start + 8 * 900_000, 900_000))
    for bar in bars:
        inside = [t for t in trades if bar["time"] <= t.time_ms < bar["time"] + 15 * 60_000]
        assert inside, "every 15 min bar of this seed has trades"
        assert (bar["open"], bar["close"]) == (inside[0].price, inside[-1].price)
        assert Decimal(bar["high"]) == max(Decimal(t.price) for t in inside)
        assert Decimal(bar["low"]) == min(Decimal(t.price) for t in inside)
        assert Decimal(bar["volume"]) == sum(Decimal(t.qty) for t in inside)


def test_start_time_is_inclusive_by_default_and_exclusive_on_request(
    server: RestServer, market: Market
) -> None:
    start = WINDOW[0] // 60_000 * 60_000
    inclusive = data(server, KLINES, symbol="BTC-USDT", interval="1m", startTime=start, limit=3)
    assert sorted(row["time"] for row in inclusive) == [start, start + 60_000, start + 120_000]
    with serve(market, options=Options(start_exclusive=True)) as exclusive_server:
        rows = data(exclusive_server, KLINES, symbol="BTC-USDT", interval="1m", startTime=start, limit=3)
    assert sorted(row["time"] for row in rows) == [start + 60_000, start + 120_000, start + 180_000]


def test_empty_funding_range_is_a_list_or_null_by_knob(server: RestServer, market: Market) -> None:
    params = {"symbol": "BTC-USDT", "startTime": NOW - 60_000, "endTime": NOW}
    assert data(server, FUNDING, **params) == []
    with serve(market, options=Options(funding_null_when_empty=True)) as nulling:
        assert data(nulling, FUNDING, **params) is None


# ---- validation errors: HTTP 200 with BingX's codes (BINGX_API §15.1) ----


UNKNOWN = "NOPE-USDT not exist, please verify it in api: /openApi/swap/v2/quote/contracts"
BAD_SYMBOL = "Invalid parameters, err:symbol: This field must end with -USDT or -USDC."
BAD_DEPTH = "failed on the 'len=0|oneof=5 10 20 50 100 500 1000' tag"
ONE_MINUTE = {"symbol": "BTC-USDT", "interval": "1m"}


@pytest.mark.parametrize(
    ("path", "params", "code", "msg"),
    [
        (DEPTH, {"symbol": "BTC-USDT", "limit": 7}, 109400, BAD_DEPTH),
        (DEPTH, {"symbol": "NOPE-USDT"}, 109425, UNKNOWN),
        (DEPTH, {"symbol": "btc-usdt"}, 109400, BAD_SYMBOL),
        (DEPTH, {}, 109400, "Invalid parameters, err:symbol: This field is required."),
        (KLINES, {**ONE_MINUTE, "limit": 1441}, 109400, "Invalid parameters, err:limit:"),
        (KLINES, {"symbol": "BTC-USDT", "interval": "7m"}, 109400, "Invalid parameters, err:interval:"),
        (KLINES, {**ONE_MINUTE, "startTime": "x"}, 109400, "err:startTime:"),
        (MARK_KLINES, {**ONE_MINUTE, "limit": 2000}, 109400, "err:limit:"),
        (FUNDING, {"symbol": "BTC-USDT", "limit": 1001}, 109400, "err:limit:"),
        (HISTORICAL, {"symbol": "BTC-USDT", "limit": 101}, 109400, "err:limit:"),
        ("/openApi/swap/v9/nothing", {}, 100400, "this api is not exist"),
    ],
)
def test_bad_requests_get_bingx_codes_on_http_200(
    server: RestServer, path: str, params: dict[str, Any], code: int, msg: str
) -> None:
    body = get(server, path, **params)
    assert body["code"] == code and msg in body["msg"], body
    assert "data" not in body


def test_paused_symbol_is_refused_and_listed_with_status_25(market: Market, server: RestServer) -> None:
    market.pause("SOL-USDT")
    try:
        body = get(server, DEPTH, symbol="SOL-USDT")
        assert (body["code"], body["msg"]) == (109415, "SOL-USDT is pause currently")
        assert data(server, "/openApi/swap/v2/quote/contracts", symbol="SOL-USDT")[0]["status"] == 25
        assert [r["symbol"] for r in data(server, "/openApi/swap/v2/quote/premiumIndex")] == list(SYMBOLS[:2])
    finally:
        market.pause("SOL-USDT", False)


def test_same_seed_serves_the_same_bytes_and_another_seed_does_not(market: Market) -> None:
    params: dict[str, Any] = {"symbol": "BTC-USDT", "interval": "5m", "startTime": WINDOW[0], "limit": 200}
    bodies = []
    for seed in (11, 11, 12):
        with serve(Market(SYMBOLS, seed=seed, trades_per_second=0.02)) as running:
            bodies.append(requests.get(running.url + KLINES, params=params, timeout=5).text)
    assert bodies[0] == bodies[1] != bodies[2]


def test_end_time_only_gives_the_latest_bars_up_to_it_ascending_by_default(server: RestServer) -> None:
    end = WINDOW[1] // 3_600_000 * 3_600_000 + 1  # inclusive: the bar opening right before it is included
    rows = data(server, KLINES, symbol="ETH-USDT", interval="1h", endTime=end, limit=4)
    assert [row["time"] for row in rows] == [end - 1 - h * 3_600_000 for h in (3, 2, 1, 0)]


def test_funding_without_range_gives_the_latest_settled_newest_first(
    server: RestServer, market: Market
) -> None:
    rows = data(server, FUNDING, symbol="SOL-USDT", limit=3)
    settled = market.funding("SOL-USDT", NOW - 2 * DAY, NOW + 1)[-3:]
    assert [(row["fundingTime"], row["fundingRate"]) for row in rows] == settled[::-1]
    assert all(row["fundingTime"] <= NOW for row in rows)
