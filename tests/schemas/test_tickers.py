"""Ticker and book-ticker converters, pinned to tests/payloads/ws_ticker.json, ws_book_ticker.json,
rest_ticker.json and rest_book_ticker.json."""

from __future__ import annotations

import pytest

from schemas.dataset import ConversionError
from schemas.tickers import (
    book_ticker_from_rest,
    book_ticker_from_stream,
    ticker_from_rest,
    ticker_from_stream,
)
from tests.conftest import load_payload, utc_ms


def test_stream_ticker_row() -> None:
    assert ticker_from_stream(load_payload("ws_ticker.json")) == [
        {
            "symbol": "BTC-USDT",
            "event_time": utc_ms(2025, 10, 9, 8, 21, 59, 388000),
            "price_change": -262.0,
            "price_change_percent": -0.21,
            "last_price": 121621.7,
            "last_qty": 0.001,
            "open_price": 121883.7,
            "high_price": 124152.9,
            "low_price": 121412.0,
            "volume": 17030.6463,
            "quote_volume": 210028.1,
            "ask_price": 121621.7,
            "ask_qty": 11.3115,
            "bid_price": 121621.5,
            "bid_qty": 6.4426,
            "open_time": utc_ms(2025, 10, 9, 8, 20, 27, 573000),
            "close_time": utc_ms(2025, 10, 9, 8, 21, 59, 403000),
        }
    ]


def test_rest_ticker_row_uses_the_later_window_time_as_event_time() -> None:
    assert ticker_from_rest(load_payload("rest_ticker.json"), {"symbol": "SFP-USDT"}) == [
        {
            "symbol": "SFP-USDT",
            "event_time": utc_ms(2023, 12, 16, 9, 43, 53, 853000),
            "price_change": 0.0295,
            "price_change_percent": 4.15,
            "last_price": 0.7409,
            "last_qty": 10.0,
            "open_price": 0.7114,
            "high_price": 0.7506,
            "low_price": 0.6903,
            "volume": 4308212.0,
            "quote_volume": 3085449.53,
            "ask_price": 0.7414,
            "ask_qty": 99.0,
            "bid_price": 0.7413,
            "bid_qty": 84.0,
            "open_time": utc_ms(2023, 12, 16, 9, 43, 53, 853000),
            "close_time": utc_ms(2023, 12, 16, 9, 43, 18, 603000),
        }
    ]


def test_rest_ticker_prefers_the_envelope_timestamp_and_accepts_string_times() -> None:
    page = load_payload("rest_ticker.json")
    page["timestamp"] = 1702719900000
    page["data"]["openTime"] = "1702719833853"
    page["data"] = [page["data"]]  # without `symbol` in the query, data is an array
    (row,) = ticker_from_rest(page, {})
    assert row["event_time"] == utc_ms(2023, 12, 16, 9, 45)
    assert row["open_time"] == utc_ms(2023, 12, 16, 9, 43, 53, 853000)


def test_rest_ticker_without_any_time_is_a_conversion_error() -> None:
    page = load_payload("rest_ticker.json")
    del page["data"]["openTime"], page["data"]["closeTime"]
    with pytest.raises(ConversionError, match=r"^tickers rest: no event time"):
        ticker_from_rest(page, {})


def test_empty_ticker_fields_are_null_but_last_price_is_required() -> None:
    frame = load_payload("ws_ticker.json")
    frame["data"]["q"] = ""
    assert ticker_from_stream(frame)[0]["quote_volume"] is None
    frame["data"]["c"] = ""
    with pytest.raises(ConversionError, match=r"^tickers stream: field 'c' is ''$"):
        ticker_from_stream(frame)


def test_stream_book_ticker_row() -> None:
    assert book_ticker_from_stream(load_payload("ws_book_ticker.json")) == [
        {
            "symbol": "ETH-USDT",
            "event_time": utc_ms(2024, 5, 2, 11, 55, 46, 618000),
            "update_id": 309869207,
            "trade_time": utc_ms(2024, 5, 2, 11, 55, 46, 596000),
            "bid_price": 2993.59,
            "bid_qty": 13.24,
            "ask_price": 2993.67,
            "ask_qty": 9.78,
        }
    ]


def test_rest_book_ticker_reads_the_nested_snake_case_numbers() -> None:
    assert book_ticker_from_rest(load_payload("rest_book_ticker.json"), {"symbol": "BTC-USDT"}) == [
        {
            "symbol": "BTC-USDT",
            "event_time": None,
            "update_id": None,
            "trade_time": None,
            "bid_price": 42211.1,
            "bid_qty": 12663.0,
            "ask_price": 42211.8,
            "ask_qty": 128854.0,
        }
    ]


def test_rest_book_ticker_keeps_time_and_update_id_when_present() -> None:
    page = load_payload("rest_book_ticker.json")
    page["data"]["book_ticker"].update(time="1702719083983", lastUpdateId=42, bid_price="42211.1")
    (row,) = book_ticker_from_rest(page, {"symbol": "BTC-USDT"})
    assert (row["event_time"], row["update_id"], row["bid_price"]) == (
        utc_ms(2023, 12, 16, 9, 31, 23, 983000),
        42,
        42211.1,
    )


def test_book_ticker_missing_price_names_the_field() -> None:
    frame = load_payload("ws_book_ticker.json")
    del frame["data"]["a"]
    with pytest.raises(ConversionError, match=r"^book_tickers stream: field 'a' is missing$"):
        book_ticker_from_stream(frame)
    page = load_payload("rest_book_ticker.json")
    page["data"]["book_ticker"]["ask_qty"] = None
    with pytest.raises(ConversionError, match=r"^book_tickers rest: field 'ask_qty' is None$"):
        book_ticker_from_rest(page, {"symbol": "BTC-USDT"})


@pytest.mark.parametrize(("sent", "stored"), [("0.31%", 0.31), ("-4.15%", -4.15), (" 2.5 % ", 2.5)])
def test_price_change_percent_with_a_percent_sign_parses_as_the_same_number(sent: str, stored: float) -> None:
    # A shape seen in third-party fixtures: the percent sign sent along with the number (issue 11 item 5)
    envelope = load_payload("rest_ticker.json")
    envelope["data"]["priceChangePercent"] = sent
    stream = load_payload("ws_ticker.json")
    stream["data"]["P"] = sent
    assert ticker_from_rest(envelope, {})[0]["price_change_percent"] == stored
    assert ticker_from_stream(stream)[0]["price_change_percent"] == stored


def test_a_percent_sign_elsewhere_is_still_a_conversion_error() -> None:
    envelope = load_payload("rest_ticker.json")
    envelope["data"]["lastPrice"] = "0.74%"
    with pytest.raises(ConversionError, match="lastPrice"):
        ticker_from_rest(envelope, {})
