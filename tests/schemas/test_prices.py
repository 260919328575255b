"""Price converters, pinned to tests/payloads/ws_mark_price.json, ws_last_price.json, rest_price.json."""

from __future__ import annotations

import pytest

from schemas.dataset import ConversionError
from schemas.prices import last_from_rest, last_from_stream, mark_from_stream
from tests.conftest import load_payload, utc_ms


def test_mark_price_row() -> None:
    assert mark_from_stream(load_payload("ws_mark_price.json")) == [
        {
            "symbol": "BTC-USDT",
            "event_time": utc_ms(2025, 10, 9, 9, 20, 28, 357000),
            "mark_price": 121570.0,
        }
    ]


def test_last_price_row() -> None:
    assert last_from_stream(load_payload("ws_last_price.json")) == [
        {
            "symbol": "BTC-USDT",
            "event_time": utc_ms(2025, 10, 9, 9, 10, 29, 63000),
            "last_price": 121485.9,
        }
    ]


def test_rest_price_row_for_one_symbol_and_for_an_array() -> None:
    page = load_payload("rest_price.json")
    expected = [
        {
            "symbol": "TIA-USDT",
            "event_time": utc_ms(2023, 12, 16, 9, 28, 42, 941000),
            "last_price": 14.0658,
        }
    ]
    assert last_from_rest(page, {"symbol": "TIA-USDT"}) == expected
    page["data"] = [page["data"], {"symbol": "BTC-USDT", "price": 42214.0, "time": "1702718922941"}]
    assert [row["symbol"] for row in last_from_rest(page, {})] == ["TIA-USDT", "BTC-USDT"]
    assert last_from_rest(page, {})[1]["last_price"] == 42214.0


def test_mark_price_missing_price_names_the_field() -> None:
    frame = load_payload("ws_mark_price.json")
    del frame["data"]["p"]
    with pytest.raises(ConversionError, match=r"^mark_prices stream: field 'p' is missing$"):
        mark_from_stream(frame)
