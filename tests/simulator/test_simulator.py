"""The Simulator facade: both servers from one context manager; stream and REST tell the same facts."""

from __future__ import annotations

import time
from decimal import Decimal

import requests

from simulator import Simulator
from simulator.market import Market
from simulator.rest import RestServer
from simulator.ws import WsOptions, WsServer
from simulator.ws_feed import FeedOptions
from tests.simulator.test_ws import SYMBOL, Client, by_topic

TRADES = "/openApi/swap/v1/market/historicalTrades"
KLINES = "/openApi/swap/v3/quote/klines"


def test_the_facade_serves_websocket_rest_and_a_shared_ledger() -> None:
    with Simulator(symbols=[SYMBOL], seed=5) as sim:
        assert sim.ws_url.startswith("ws://127.0.0.1:") and sim.ws_url.endswith("/swap-market")
        assert sim.rest_url is not None and isinstance(sim.rest, RestServer) and sim.admin_url is None
        body = requests.get(f"{sim.rest_url}/openApi/swap/v2/server/time", timeout=5).json()
        assert body["code"] == 0 and isinstance(body["data"]["serverTime"], int)
        client = Client(sim.ws_url)
        try:
            assert client.reply(client.sub(f"{SYMBOL}@markPrice"))["code"] == 0
        finally:
            client.close()
        assert sim.rest_ledger is sim.rest.ledger and sim.faults.rest is sim.rest.faults
        assert [r.path for r in sim.ledger.rest.snapshot()] == ["/openApi/swap/v2/server/time"]
        assert sim.ledger.summary()["rest"]["requests_per_path"] == {"/openApi/swap/v2/server/time": 1}


def test_streamed_trades_equal_the_rest_trades_of_the_same_window() -> None:
    with Simulator(symbols=[SYMBOL], seed=5, rate=5.0) as sim:
        client = Client(sim.ws_url)
        try:
            client.reply(client.sub(f"{SYMBOL}@trade"))
            frames = client.collect_until(f"{SYMBOL}@trade", 3)
        finally:
            client.close()
        streamed = [(t["T"], t["p"], t["q"], t["m"]) for frame in frames for t in reversed(frame["data"])]
        assert len(streamed) >= 2
        params: dict[str, str | int] = {"symbol": SYMBOL, "limit": 100}
        page = requests.get(f"{sim.rest_url}{TRADES}", params=params, timeout=5).json()
        window = [
            (t["time"], t["price"], t["qty"], t["isBuyerMaker"])
            for t in page["data"]
            if streamed[0][0] <= t["time"] <= streamed[-1][0]
        ]
        assert streamed == window


def test_the_final_stream_update_of_a_bar_equals_the_rest_bar() -> None:
    market = Market(symbols=(SYMBOL,), seed=5)
    boundary = int(time.time() * 1000) // 60_000 * 60_000 - 60_000  # a past minute: REST has it settled
    started = time.monotonic()

    def clock() -> int:  # 0.4 s before `boundary`, then real time flows
        return boundary - 400 + int((time.monotonic() - started) * 1000)

    options = WsOptions(feed=FeedOptions(rate=5.0))
    with WsServer(market, options=options, clock=clock) as ws_server, RestServer(market) as rest:
        client = Client(ws_server.url)
        try:
            client.reply(client.sub(f"{SYMBOL}@kline_1m"))
            bars = [f["data"][0] for f in by_topic(client.collect(1.2), f"{SYMBOL}@kline_1m")]
        finally:
            client.close()
        query: dict[str, str | int] = {
            "symbol": SYMBOL,
            "interval": "1m",
            "startTime": boundary - 60_000,
            "endTime": boundary - 1,
        }
        [settled] = requests.get(f"{rest.url}{KLINES}", params=query, timeout=5).json()["data"]
    opens = [bar["T"] for bar in bars]
    assert opens[0] == boundary - 60_000 and opens[-1] == boundary  # one bar, then the next
    final = [bar for bar in bars if bar["T"] == boundary - 60_000][-1]
    assert settled["time"] == final["T"]
    for rest_name, ws_name in (("open", "o"), ("high", "h"), ("low", "l"), ("close", "c"), ("volume", "v")):
        assert Decimal(settled[rest_name]) == Decimal(final[ws_name]), rest_name


def test_the_live_ticker_covers_the_configured_window_and_matches_the_market() -> None:
    with Simulator(symbols=[SYMBOL], seed=5, ticker_window_s=600) as sim:
        client = Client(sim.ws_url)
        try:
            topic = f"{SYMBOL}@ticker"
            assert client.reply(client.sub(topic))["code"] == 0
            data = client.collect_until(topic, 1)[0]["data"]
        finally:
            client.close()
        assert data["O"] == data["E"] - 600_000
        stats = sim.market.ticker(SYMBOL, data["E"], 600_000)
        assert (data["o"], data["h"], data["l"], data["v"]) == (
            stats.open,
            stats.high,
            stats.low,
            stats.volume,
        )
