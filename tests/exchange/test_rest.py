"""RestClient against a real local HTTP server: retries, throttles, bans, fatal codes. No real sleeping."""

from __future__ import annotations

import socket

import pytest

from exchange.errors import Banned, FatalError, RateLimited, RetryableError
from exchange.ratelimit import Budget, Limiter
from exchange.rest import RestClient
from tests.exchange.conftest import Answer, ScriptedServer, envelope, limit_headers
from tests.exchange.fakes import FakeClock, Highest

KLINES = "/openApi/swap/v3/quote/klines"


def client_for(server: ScriptedServer, sleeps: list[float], **options: object) -> RestClient:
    return RestClient(server.url, sleep=sleeps.append, rng=Highest(), **options)  # type: ignore[arg-type]


def test_get_returns_the_envelope_and_sends_the_params(server: ScriptedServer) -> None:
    server.script(Answer(body=envelope([{"time": 1}])))
    with RestClient(server.url) as client:
        body = client.get(KLINES, {"symbol": "BTC-USDT", "interval": "1m", "limit": 2, "flag": True})
    assert body == {"code": 0, "msg": "", "data": [{"time": 1}]}
    assert [(seen.path, seen.query) for seen in server.seen] == [
        (KLINES, {"flag": "true", "interval": "1m", "limit": "2", "symbol": "BTC-USDT"})
    ]
    assert "X-BX-APIKEY" not in server.seen[0].headers
    assert client.stats.requests == 1 and client.stats.retries == 0


def test_a_code_zero_sent_as_a_string_is_success(server: ScriptedServer) -> None:
    server.script(Answer(body=envelope({"serverTime": 5}, code="0")))
    with RestClient(server.url) as client:
        assert client.get("/openApi/swap/v2/server/time")["data"] == {"serverTime": 5}


def test_5xx_answers_are_retried_with_growing_backoff(server: ScriptedServer) -> None:
    server.script(Answer(500, b"oops"), Answer(502, b""), Answer(503, b""), Answer(body=envelope([])))
    sleeps: list[float] = []
    with client_for(server, sleeps) as client:
        assert client.get(KLINES, {"symbol": "BTC-USDT"})["code"] == 0
    assert sleeps == [1.0, 2.0, 4.0]
    assert len(server.seen) == 4
    assert (client.stats.requests, client.stats.retries, client.stats.throttled) == (4, 3, 0)


def test_retries_give_up_after_the_configured_attempts(server: ScriptedServer) -> None:
    server.script(*[Answer(500, b"")] * 3)
    sleeps: list[float] = []
    with client_for(server, sleeps, attempts=3) as client, pytest.raises(RetryableError, match="HTTP 500"):
        client.get(KLINES, {"symbol": "BTC-USDT"})
    assert len(server.seen) == 3
    assert sleeps == [1.0, 2.0]
    assert client.stats.retries == 2


def test_429_waits_out_the_window_the_expire_header_announces(server: ScriptedServer) -> None:
    server.script(Answer(429, envelope(code=100410), limit_headers(0, 3500)), Answer(body=envelope([])))
    sleeps: list[float] = []
    with client_for(server, sleeps) as client:
        client.get(KLINES, {"symbol": "BTC-USDT"})
    assert sleeps == [3.5]
    assert (client.stats.throttled, client.stats.seconds_throttled, client.stats.retries) == (1, 3.5, 1)


def test_429_without_headers_waits_a_full_window_then_longer_each_time_in_a_row(
    server: ScriptedServer,
) -> None:
    server.script(Answer(429, b""), Answer(429, b""), Answer(429, b""), Answer(body=envelope([])))
    sleeps: list[float] = []
    with client_for(server, sleeps) as client:
        client.get(KLINES, {"symbol": "BTC-USDT"})
    assert sleeps == [10.0, 20.0, 40.0]
    assert (client.stats.throttled, client.stats.seconds_throttled) == (3, 70.0)


@pytest.mark.parametrize("status", [200, 429])
@pytest.mark.parametrize("code", [100410, "100410", 109429])
def test_rate_limit_codes_are_throttles_whatever_the_http_status(
    server: ScriptedServer, status: int, code: int | str
) -> None:
    server.script(
        Answer(status, envelope(code=code, msg="Request rate limit exceeded")), Answer(body=envelope([]))
    )
    sleeps: list[float] = []
    with client_for(server, sleeps) as client:
        assert client.get(KLINES, {"symbol": "BTC-USDT"})["code"] == 0
    assert sleeps == [10.0]
    assert len(server.seen) == 2 and client.stats.throttled == 1


def test_a_throttle_is_raised_as_rate_limited_when_attempts_run_out(server: ScriptedServer) -> None:
    server.script(Answer(200, envelope(code=100410), limit_headers(0, 1200)))
    with client_for(server, [], attempts=1) as client, pytest.raises(RateLimited) as caught:
        client.get(KLINES, {"symbol": "BTC-USDT"})
    assert caught.value.retry_after_s == 1.2
    assert caught.value.path == KLINES


@pytest.mark.parametrize("status", [418, 403])
def test_a_ban_stops_after_exactly_one_request_with_a_one_line_message(
    server: ScriptedServer, status: int
) -> None:
    server.script(Answer(status, b"banned"), Answer(body=envelope([])))
    sleeps: list[float] = []
    with client_for(server, sleeps) as client, pytest.raises(Banned) as caught:
        client.get(KLINES, {"symbol": "BTC-USDT"})
    assert len(server.seen) == 1 and sleeps == []
    message = str(caught.value)
    assert "\n" not in message
    assert f"HTTP {status}" in message and "wait ~5 minutes" in message and KLINES in message
    assert isinstance(caught.value, FatalError)


def test_a_business_error_is_fatal_at_once_with_path_params_code_and_msg(server: ScriptedServer) -> None:
    msg = "NOPE-USDT not exist, please verify it in api: /openApi/swap/v2/quote/contracts"
    server.script(Answer(body=envelope(code=109425, msg=msg)))
    sleeps: list[float] = []
    with client_for(server, sleeps) as client, pytest.raises(FatalError) as caught:
        client.get(KLINES, {"symbol": "NOPE-USDT", "interval": "1m"})
    message = str(caught.value)
    assert len(server.seen) == 1 and sleeps == []
    assert "\n" not in message
    for part in (KLINES, "symbol=NOPE-USDT", "interval=1m", "109425", msg):
        assert part in message
    assert not isinstance(caught.value, RetryableError)


def test_an_http_400_with_a_bingx_body_is_fatal(server: ScriptedServer) -> None:
    server.script(Answer(400, b'{"code":104414,"msg":"Invalid parameter","retryable":0}'))
    with (
        client_for(server, []) as client,
        pytest.raises(FatalError, match=r"104414.*Invalid parameter.*HTTP 400"),
    ):
        client.get(KLINES, {"symbol": "BTC-USDT"})


def test_a_body_that_is_not_json_is_retried(server: ScriptedServer) -> None:
    server.script(Answer(200, b"<html>502 Bad Gateway</html>"), Answer(body=envelope([1])))
    sleeps: list[float] = []
    with client_for(server, sleeps) as client:
        assert client.get(KLINES, {"symbol": "BTC-USDT"})["data"] == [1]
    assert sleeps == [1.0]


def test_a_slow_answer_times_out_and_is_retried(server: ScriptedServer) -> None:
    server.script(Answer(body=envelope([]), delay_s=0.6), Answer(body=envelope([2])))
    sleeps: list[float] = []
    with client_for(server, sleeps, timeout_s=0.2) as client:
        assert client.get(KLINES, {"symbol": "BTC-USDT"})["data"] == [2]
    assert sleeps == [1.0]
    assert len(server.seen) == 2 and client.stats.retries == 1


def test_a_refused_connection_is_retryable(unused_port: int) -> None:
    sleeps: list[float] = []
    with (
        RestClient(
            f"http://127.0.0.1:{unused_port}", sleep=sleeps.append, rng=Highest(), attempts=3
        ) as client,
        pytest.raises(RetryableError, match="connection to BingX failed"),
    ):
        client.get(KLINES, {"symbol": "BTC-USDT"})
    assert sleeps == [1.0, 2.0]
    assert client.stats.requests == 3


def test_rate_limit_headers_on_every_answer_reach_the_limiter(server: ScriptedServer) -> None:
    server.script(Answer(body=envelope([]), headers=limit_headers(1, 4000)), Answer(body=envelope([])))
    server.script(Answer(body=envelope([])))
    clock = FakeClock()
    limiter = Limiter([Budget("endpoint", 500, 10.0, per_endpoint=True)], clock=clock, sleep=clock.sleep)
    with RestClient(server.url, limiter=limiter, clock=clock, sleep=clock.sleep) as client:
        client.get(KLINES, {"symbol": "BTC-USDT"})
        client.get(KLINES, {"symbol": "BTC-USDT"})  # the one request the server said was left
        assert clock.sleeps == []
        client.get(KLINES, {"symbol": "BTC-USDT"})
    assert clock.sleeps == [4.0]
    assert client.stats.seconds_paced == 4.0 and client.stats.throttled == 0


def test_a_throttle_makes_the_limiter_hold_other_callers_too(server: ScriptedServer) -> None:
    server.script(Answer(429, b""), Answer(body=envelope([])))
    clock = FakeClock()
    limiter = Limiter([], clock=clock, sleep=clock.sleep)
    sleeps: list[float] = []
    with RestClient(server.url, limiter=limiter, clock=clock, sleep=sleeps.append) as client:
        client.get(KLINES, {"symbol": "BTC-USDT"})  # its own sleep is not the clock's: the limiter waits too
    assert sleeps == [10.0]
    assert clock.sleeps == [10.0]


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
