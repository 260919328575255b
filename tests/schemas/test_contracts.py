"""Contract list converter, pinned to tests/payloads/rest_contracts.json."""

from __future__ import annotations

import pytest

from schemas.contracts import from_rest
from schemas.dataset import ConversionError
from tests.conftest import load_payload, utc_ms


def test_contract_row_turns_string_states_into_booleans_and_zero_times_into_null() -> None:
    assert from_rest(load_payload("rest_contracts.json"), {}) == [
        {
            "symbol": "BTC-USDT",
            "contract_id": "100",
            "display_name": None,
            "currency": "USDT",
            "asset": "BTC",
            "status": 1,
            "quantity_precision": 4,
            "price_precision": 1,
            "max_long_leverage": 125,
            "max_short_leverage": 125,
            "maker_fee_rate": 0.0002,
            "taker_fee_rate": 0.0005,
            "trade_min_quantity": 0.0001,
            "trade_min_usdt": 2.0,
            "api_state_open": True,
            "api_state_close": True,
            "broker_state": True,
            "launch_time": utc_ms(2020, 4, 7, 16, 0),
            "maintain_time": None,
            "off_time": None,
        }
    ]


def test_contract_quirks_false_strings_real_booleans_string_numbers() -> None:
    page = load_payload("rest_contracts.json")
    page["data"][0].update(
        apiStateOpen="false", brokerState=False, makerFeeRate="0.0002", status="25", displayName="BTC-USDT"
    )
    (row,) = from_rest(page, {})
    assert (row["api_state_open"], row["broker_state"], row["maker_fee_rate"], row["status"]) == (
        False,
        False,
        0.0002,
        25,
    )
    assert row["display_name"] == "BTC-USDT"


def test_contract_with_a_bad_state_names_the_field() -> None:
    page = load_payload("rest_contracts.json")
    page["data"][0]["apiStateOpen"] = "yes"
    with pytest.raises(
        ConversionError, match=r"^contracts rest: field 'apiStateOpen' has a bad value 'yes'$"
    ):
        from_rest(page, {})


def test_contract_without_symbol_names_the_field() -> None:
    page = load_payload("rest_contracts.json")
    del page["data"][0]["symbol"]
    with pytest.raises(ConversionError, match=r"^contracts rest: field 'symbol' is missing$"):
        from_rest(page, {})
