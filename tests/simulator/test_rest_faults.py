"""The REST simulator's rate limits, injected faults and ledger, seen from a plain requests client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from simulator.market import Market
from simulator.rest import ADMIN_PATH, RestServer

NOW = 1_780_012_800_000
TIME = "/openApi/swap/v2/server/time"
TICKER = "/openApi/swap/v2/quote/ticker"
DEPTH = "/openApi/swap/v2/quote/depth"


class FakeClock:
    """A settable millisecond clock for the rate limiter."""

    def __init__(self) -> None:
        self.ms = 5_000_000

    def __call__(self) -> int:
        return self.ms


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(("BTC-USDT",), seed=2, trades_per_second=0.02)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(market: Market, clock: FakeClock) -> Iterator[RestServer]:
    knobs = {"budget": 5, "ban_after": 2, "ban_ms": 60_000, "limiter_clock_ms": clock}
    with RestServer(market, clock_ms=lambda: NOW, **knobs) as running:  # type: ignore[arg-type]
        yield running


def call(server: RestServer, path: str = TIME, **params: str) -> requests.Response:
    return requests.get(server.url + path, params=params, timeout=5)


def test_rate_limit_headers_count_down_in_a_fixed_window(server: RestServer, clock: FakeClock) -> None:
    seen = []
    for _ in range(4):
        response = call(server)
        seen.append(
            (response.headers["x-ratelimit-requests-remain"], response.headers["x-ratelimit-requests-expire"])
        )
        clock.ms += 1_000
    assert seen == [("4", "10000"), ("3", "9000"), ("2", "8000"), ("1", "7000")]
    other = call(server, DEPTH, symbol="BTC-USDT")  # per endpoint: another path has its own window
    assert other.headers["x-ratelimit-requests-remain"] == "4"
    clock.ms += 6_000  # the window is over: a fresh one starts
    assert call(server).headers["x-ratelimit-requests-remain"] == "4"


def test_over_budget_gets_429_with_100410_then_418_for_a_client_that_keeps_going(
    server: RestServer, clock: FakeClock
) -> None:
    statuses = [call(server).status_code for _ in range(5)]
    over = [call(server) for _ in range(3)]
    assert statuses == [200] * 5
    assert [r.status_code for r in over] == [429, 429, 418]
    assert over[0].json()["code"] == 100410 and over[0].headers["x-ratelimit-requests-remain"] == "0"
    clock.ms += 20_000  # a new window, but the ban lasts 60 s
    assert call(server).status_code == 418
    clock.ms += 60_000
    assert call(server).status_code == 200
    assert server.ledger.throttled == 4 and server.ledger.banned == 2


def test_throttling_can_answer_http_200_with_100410(market: Market) -> None:
    with RestServer(market, clock_ms=lambda: NOW, budget=1, throttle_status=200) as running:
        assert call(running).json()["code"] == 0
        second = call(running)
        assert second.status_code == 200 and second.json()["code"] == 100410


def test_group_budget_limits_all_endpoints_together(market: Market) -> None:
    with RestServer(market, clock_ms=lambda: NOW, budget=100, group_budget=3) as running:
        codes = [call(running, path).status_code for path in (TIME, TICKER, TIME, TICKER)]
    assert codes == [200, 200, 200, 429]


def test_fail_next_answers_5xx_only_for_its_path_then_recovers(server: RestServer) -> None:
    server.faults.fail_next(2, status=503, path=TICKER)
    assert call(server).status_code == 200  # another path is untouched
    assert [call(server, TICKER).status_code for _ in range(3)] == [503, 503, 200]
    assert [r.fault for r in server.ledger.for_path(TICKER)] == ["fail", "fail", None]


def test_rate_limit_next_answers_429_with_100410_or_http_200(server: RestServer) -> None:
    server.faults.rate_limit_next(1)
    server.faults.rate_limit_next(1, status=200)
    first, second, third = call(server), call(server), call(server)
    assert (first.status_code, first.json()["code"]) == (429, 100410)
    assert (second.status_code, second.json()["code"]) == (200, 100410)
    assert third.json()["code"] == 0


def test_ban_next_error_next_and_drop_next(server: RestServer) -> None:
    server.faults.ban_next(1)
    assert call(server).status_code == 418
    server.faults.error_next(1, code=109500, msg="depth unavailable")
    assert call(server).json() == {"code": 109500, "msg": "depth unavailable"}
    server.faults.drop_next(1)
    with pytest.raises(requests.ConnectionError):
        call(server)
    assert call(server).status_code == 200
    assert [r.status for r in server.ledger.snapshot()] == [418, 200, 0, 200]


def test_slow_next_makes_a_short_client_timeout_fire(server: RestServer) -> None:
    server.faults.slow_next(1, seconds=5.0)
    with pytest.raises(requests.ReadTimeout):
        requests.get(server.url + TIME, timeout=0.3)
    server.stopping.set()  # wake the held request so the server can answer and stop
    assert call(server).status_code == 200


def test_admin_endpoint_arms_a_fault(server: RestServer) -> None:
    armed = requests.get(
        server.url + ADMIN_PATH, params={"kind": "fail", "n": "1", "status": "502"}, timeout=5
    )
    assert armed.json()["code"] == 0
    assert call(server).status_code == 502
    refused = requests.get(server.url + ADMIN_PATH, params={"kind": "nope"}, timeout=5)
    assert refused.status_code == 400 and "unknown fault kind" in refused.json()["msg"]


def test_ledger_records_path_params_status_code_and_rows(server: RestServer) -> None:
    call(server, DEPTH, symbol="BTC-USDT", limit="10")
    call(server, DEPTH, symbol="NOPE-USDT")
    call(server, TICKER)
    records = server.ledger.snapshot()
    assert [(r.path, r.params, r.status, r.code, r.rows) for r in records] == [
        (DEPTH, {"symbol": "BTC-USDT", "limit": "10"}, 200, 0, 1),
        (DEPTH, {"symbol": "NOPE-USDT"}, 200, 109425, 0),
        (TICKER, {}, 200, 0, 1),
    ]
    assert all(r.client == "127.0.0.1" and r.time_ms == NOW for r in records)


def test_bingx_budgets_throttle_klines_past_5_per_second_and_the_group_past_100(market: Market) -> None:
    clock = [NOW]
    with RestServer(
        market, clock_ms=lambda: NOW, limiter_clock_ms=lambda: clock[0], bingx_budgets=True, ban_after=1000
    ) as running:
        klines = "/openApi/swap/v3/quote/klines"
        assert [call(running, klines).status_code for _ in range(6)] == [200] * 5 + [429]
        clock[0] += 1_000
        assert call(running, klines).status_code == 200  # a new second
        codes = [call(running, TIME).status_code for _ in range(100)]
        assert codes.count(429) == 7  # 100 per 10 s for the group: 7 klines already counted in it


def test_historical_trades_serve_only_as_far_back_as_the_trade_history_reaches(market: Market) -> None:
    from simulator.endpoints import Options

    with RestServer(market, clock_ms=lambda: NOW, options=Options(trade_history_ms=60_000)) as running:
        path = "/openApi/swap/v1/market/historicalTrades"
        oldest = call(running, path, symbol="BTC-USDT", fromId="1", limit="5").json()["data"]
    assert oldest and all(NOW - 60_000 <= trade["time"] < NOW for trade in oldest)
    assert [int(t["id"]) for t in oldest] == sorted(int(t["id"]) for t in oldest)
