"""The simulated account: BingX's income limits, fills and funding that accrue income, listenKey expiry."""

from __future__ import annotations

import pytest

from simulator.account import DAY_MS, WEEK_MS, Account, AccountOptions
from simulator.endpoints import ApiError
from simulator.market import Market
from simulator.signed import income

NOW = 1_790_000_000_000


def _account(**knobs: float) -> Account:
    options = AccountOptions(**knobs)  # type: ignore[arg-type]
    return Account(Market(["BTC-USDT", "ETH-USDT"]), options, clock_ms=lambda: NOW)


def test_income_without_a_range_is_only_the_last_seven_days() -> None:
    account = _account(history_days=20, fills_per_day=12)
    rows = income(account, {"limit": "1000"}, NOW)
    assert rows and min(r["time"] for r in rows) >= NOW - WEEK_MS
    assert [r["time"] for r in rows] == sorted((r["time"] for r in rows), reverse=True)  # newest first


def test_a_range_over_seven_days_and_a_page_over_1000_are_refused_with_109400() -> None:
    account = _account(history_days=10)
    with pytest.raises(ApiError) as caught:
        income(account, {"startTime": str(NOW - WEEK_MS - 1), "endTime": str(NOW)}, NOW)
    assert caught.value.code == 109400 and "7 days" in caught.value.msg
    with pytest.raises(ApiError, match="limit"):
        income(account, {"limit": "1001"}, NOW)


def test_income_older_than_three_months_is_gone() -> None:
    account = _account(history_days=100, fills_per_day=2)
    old = income(account, {"startTime": str(NOW - 95 * DAY_MS), "endTime": str(NOW - 89 * DAY_MS)}, NOW)
    assert old and min(r["time"] for r in old) >= NOW - 90 * DAY_MS
    assert min(r["time"] for r in account.income) < NOW - 90 * DAY_MS


def test_history_holds_fees_realized_pnl_funding_and_the_deposit() -> None:
    account = _account(history_days=5, fills_per_day=24)
    kinds = {r["incomeType"] for r in account.income}
    assert kinds == {"TRANSFER", "TRADING_FEE", "REALIZED_PNL", "FUNDING_FEE"}
    assert len({r["tranId"] for r in account.income}) == len(account.income)


def test_a_live_fill_pushes_an_order_and_an_account_update_and_records_its_fee() -> None:
    account = _account(history_days=0)
    pushed: list[dict[str, object]] = []
    account.pusher = lambda message: (pushed.append(message), ("k",))[1]  # type: ignore[func-returns-value]
    before = len(account.income)
    account.trade()
    assert [m["e"] for m in pushed] == ["ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"]
    assert len(account.income) == before + 1 and account.income[-1]["incomeType"] == "TRADING_FEE"
    assert account.events[-1].income_ids == (account.income[-1]["tranId"],)
    account.settle()  # the position opened by the fill pays funding
    assert account.income[-1]["incomeType"] == "FUNDING_FEE" and pushed[-1]["a"]["m"] == "FUNDING_FEE"  # type: ignore[index]


def test_an_expired_listen_key_is_reported_once_and_cannot_be_extended() -> None:
    account = _account(history_days=0)
    told: list[str] = []
    account.on_expired = told.append
    key = account.create_listen_key()
    assert account.expire_listen_keys() == 1 and told == [key]
    assert not account.is_valid(key) and not account.extend_listen_key(key)
    assert account.expire_listen_keys() == 0 and told == [key]


def test_the_admin_endpoint_expires_listen_keys() -> None:
    import json
    import urllib.request

    from simulator import Simulator

    with Simulator(symbols=["BTC-USDT"], admin_port=0, account=AccountOptions(history_days=0)) as sim:
        key = sim.account.create_listen_key()
        request = urllib.request.Request(f"{sim.admin_url}/faults/expire-listen-keys", method="POST")
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert json.loads(answer.read()) == {"expired": 1}
        assert not sim.account.is_valid(key)
