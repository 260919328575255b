"""The signed client against the simulator's signed endpoints: clock offset, both forms, refusals."""

from __future__ import annotations

import time

import pytest

from exchange.errors import FatalError
from exchange.signed import SignedClient, Unauthorized
from exchange.signing import Credentials
from simulator import Simulator
from simulator.account import AccountOptions

ACCOUNT = AccountOptions(history_days=1)
BALANCE = "/openApi/swap/v3/user/balance"
AHEAD_MS = 60_000  # the simulated server's clock runs a minute ahead of ours


def _ahead() -> int:
    return time.time_ns() // 1_000_000 + AHEAD_MS


@pytest.fixture(scope="module")
def sim() -> object:
    with Simulator(symbols=["BTC-USDT"], account=ACCOUNT, clock_ms=_ahead) as simulator:
        yield simulator


def _client(sim: Simulator, key: str = ACCOUNT.api_key, secret: str = ACCOUNT.secret) -> SignedClient:
    return SignedClient(sim.rest_url or "", Credentials(key, secret), attempts=1)


def test_the_measured_server_time_offset_makes_signed_requests_pass_the_recv_window(sim: Simulator) -> None:
    with _client(sim) as client:
        with pytest.raises(Unauthorized, match="100421"):
            client.send("GET", BALANCE, form="query")  # a minute behind the server: outside recvWindow
        offset = client.measure_offset()
        assert abs(offset - AHEAD_MS) < 1000
        assert client.get(BALANCE)["data"][0]["asset"] == "USDT"


def test_a_timestamp_refusal_remeasures_the_clock_and_retries_once(sim: Simulator) -> None:
    with _client(sim) as client:
        assert client.offset_ms == 0  # never measured: the first answer is 100421
        assert client.get(BALANCE)["data"][0]["asset"] == "USDT"
        assert abs(client.offset_ms - AHEAD_MS) < 1000


def test_the_body_form_and_the_query_form_are_both_accepted(sim: Simulator) -> None:
    with _client(sim) as client:
        client.measure_offset()
        assert client.send("GET", BALANCE, form="body")["data"][0]["asset"] == "USDT"
        assert client.send("GET", BALANCE, form="query")["data"][0]["asset"] == "USDT"


def test_a_wrong_secret_is_refused_and_the_message_names_the_secret_but_never_shows_it(
    sim: Simulator,
) -> None:
    wrong = "not-the-secret-91f3"
    with _client(sim, secret=wrong) as client:
        client.measure_offset()
        with pytest.raises(Unauthorized) as caught:
            client.get(BALANCE)
    message = str(caught.value)
    assert caught.value.code == 100001 and "BINGX_API_SECRET" in message and "\n" not in message
    assert wrong not in message and ACCOUNT.secret not in message


def test_a_wrong_key_is_refused_with_its_own_message(sim: Simulator) -> None:
    with _client(sim, key="nobody-s-key") as client:
        client.measure_offset()
        with pytest.raises(Unauthorized, match="BINGX_API_KEY") as caught:
            client.get(BALANCE)
    assert caught.value.code == 100413 and "nobody-s-key" not in str(caught.value)


def test_listen_keys_are_created_extended_and_deleted_and_an_unknown_one_is_404(sim: Simulator) -> None:
    path = "/openApi/user/auth/userDataStream"
    with _client(sim) as client:
        key = client.send("POST", path)["data"]["listenKey"]
        assert sim.account.is_valid(key)
        assert client.send("PUT", path, {"listenKey": key})["code"] == 0
        assert client.send("DELETE", path, {"listenKey": key})["code"] == 0
        with pytest.raises(FatalError, match="HTTP 404") as caught:
            client.send("PUT", path, {"listenKey": key})
    assert key not in str(caught.value)  # only its short hash
