"""Funding, premium index and open interest converters, pinned to tests/payloads/rest_funding_rate.json,
rest_premium_index.json and rest_open_interest.json."""

from __future__ import annotations

import pytest

from schemas.dataset import ConversionError
from schemas.funding import funding_from_rest, open_interest_from_rest, premium_from_rest
from tests.conftest import load_payload, utc_ms


def test_funding_history_rows_in_payload_order() -> None:
    assert funding_from_rest(load_payload("rest_funding_rate.json"), {"symbol": "QNT-USDT"}) == [
        {
            "symbol": "QNT-USDT",
            "funding_time": utc_ms(2023, 12, 16, 8, 0),
            "funding_rate": 0.000271,
            "mark_price": None,
        },
        {
            "symbol": "QNT-USDT",
            "funding_time": utc_ms(2023, 12, 16, 0, 0),
            "funding_rate": 0.000128,
            "mark_price": None,
        },
    ]


def test_funding_data_null_is_an_empty_range() -> None:
    assert funding_from_rest({"code": 0, "msg": "", "data": None}, {"symbol": "QNT-USDT"}) == []


def test_funding_mark_price_and_string_times_are_read() -> None:
    page = load_payload("rest_funding_rate.json")
    page["data"][0].update(markPrice="105.2", fundingTime="1702713600000")
    del page["data"][0]["symbol"]
    row = funding_from_rest(page, {"symbol": "QNT-USDT"})[0]
    assert (row["symbol"], row["mark_price"], row["funding_time"]) == (
        "QNT-USDT",
        105.2,
        utc_ms(2023, 12, 16, 8, 0),
    )


def test_premium_index_row() -> None:
    assert premium_from_rest(load_payload("rest_premium_index.json"), {"symbol": "BTC-USDT"}) == [
        {
            "symbol": "BTC-USDT",
            "mark_price": 42216.4,
            "index_price": 42219.9,
            "last_funding_rate": 0.000251,
            "next_funding_time": utc_ms(2023, 12, 16, 16, 0),
            "funding_interval_hours": None,
            "update_time": None,
        }
    ]


@pytest.mark.parametrize("hours", [4, "4"])
def test_premium_index_newer_fields_as_numbers_or_strings(hours: object) -> None:
    page = load_payload("rest_premium_index.json")
    page["data"].update(fundingIntervalHours=hours, updateTime=1702713600000, nextFundingTime="1702742400000")
    page["data"] = [page["data"]]
    (row,) = premium_from_rest(page, {})
    assert row["funding_interval_hours"] == 4
    assert row["update_time"] == utc_ms(2023, 12, 16, 8, 0)
    assert row["next_funding_time"] == utc_ms(2023, 12, 16, 16, 0)


def test_premium_index_missing_mark_price_names_the_field() -> None:
    page = load_payload("rest_premium_index.json")
    del page["data"]["markPrice"]
    with pytest.raises(ConversionError, match=r"^premium_index rest: field 'markPrice' is missing$"):
        premium_from_rest(page, {})


def test_open_interest_row() -> None:
    assert open_interest_from_rest(load_payload("rest_open_interest.json"), {"symbol": "EOS-USDT"}) == [
        {
            "symbol": "EOS-USDT",
            "open_interest": 7409966.52,
            "event_time": utc_ms(2023, 12, 16, 9, 41, 32, 859000),
        }
    ]


def test_open_interest_bad_time_names_the_field() -> None:
    page = load_payload("rest_open_interest.json")
    page["data"]["time"] = "yesterday"
    with pytest.raises(
        ConversionError, match=r"^open_interest rest: field 'time' has a bad value 'yesterday'$"
    ):
        open_interest_from_rest(page, {})
