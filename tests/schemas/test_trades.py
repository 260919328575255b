"""Trade converters, pinned to tests/payloads/ws_trade.json, rest_historical_trades.json, rest_trades*."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from schemas.dataset import ConversionError
from schemas.trades import TRADES, from_rest, from_stream
from tests.conftest import load_payload, utc_ms

BTC = {"symbol": "BTC-USDT"}


def test_stream_frame_gives_one_row_per_trade_in_frame_order() -> None:
    rows = from_stream(load_payload("ws_trade.json"))
    assert rows == [
        {
            "symbol": "BTC-USDT",
            "trade_time": utc_ms(2025, 10, 9, 7, 16, 2, 450000),
            "price": 121934.9,
            "qty": 0.0162,
            "is_buyer_maker": False,
            "trade_id": None,
            "quote_qty": None,
            "frame_index": 0,
        },
        {
            "symbol": "BTC-USDT",
            "trade_time": utc_ms(2025, 10, 9, 7, 16, 2, 450000),
            "price": 121926.9,
            "qty": 0.0551,
            "is_buyer_maker": True,
            "trade_id": None,
            "quote_qty": None,
            "frame_index": 1,
        },
    ]


def test_historical_trades_keep_the_string_id_and_quote_qty() -> None:
    rows = from_rest(load_payload("rest_historical_trades.json"), {"symbol": "ETH-USDT", "limit": 100})
    assert rows == [
        {
            "symbol": "ETH-USDT",
            "trade_time": utc_ms(2024, 1, 12, 12, 38, 28, 365000),
            "price": 2662.83,
            "qty": 0.1,
            "is_buyer_maker": True,
            "trade_id": "8179911",
            "quote_qty": 266.28,
            "frame_index": None,
        },
        {
            "symbol": "ETH-USDT",
            "trade_time": utc_ms(2024, 1, 12, 12, 38, 28, 486000),
            "price": 2662.82,
            "qty": 0.1,
            "is_buyer_maker": True,
            "trade_id": "8179912",
            "quote_qty": 266.28,
            "frame_index": None,
        },
    ]


def test_recent_trades_without_ids_have_null_trade_id() -> None:
    rows = from_rest(load_payload("rest_trades.json"), BTC)
    assert [(r["price"], r["qty"], r["is_buyer_maker"], r["trade_id"], r["quote_qty"]) for r in rows] == [
        (42214.0, 0.0248, True, None, 1046.91),
        (42214.1, 0.4985, False, None, 21043.73),
        (42213.9, 0.0394, True, None, 1663.23),
    ]
    assert rows[0]["trade_time"] == utc_ms(2023, 12, 16, 9, 34, 29, 849000)


def test_recent_trades_with_fill_id_use_it_as_trade_id() -> None:
    rows = from_rest(load_payload("rest_trades_fill_id.json"), BTC)
    assert [r["trade_id"] for r in rows] == ["132435489", "132435488"]


def test_numeric_fill_id_becomes_a_string() -> None:
    page = load_payload("rest_trades_fill_id.json")
    page["data"][0]["fillId"] = 132435489
    assert from_rest(page, BTC)[0]["trade_id"] == "132435489"


def test_stream_trades_accept_a_single_object_as_in_the_2023_docs() -> None:
    frame = load_payload("ws_trade.json")
    frame["data"] = frame["data"][1]
    rows = from_stream(frame)
    assert [(r["price"], r["frame_index"]) for r in rows] == [(121926.9, 0)]


def test_numbers_and_times_may_come_as_json_numbers_or_strings() -> None:
    frame = load_payload("ws_trade.json")
    variant = copy.deepcopy(frame)
    variant["data"][0].update(p=121934.9, q=0.0162, T="1759994162450", m="false")
    assert from_stream(variant) == from_stream(frame)


def test_rest_code_may_be_the_string_zero_and_data_null_means_no_rows() -> None:
    page = load_payload("rest_historical_trades.json")
    page["code"] = "0"
    assert len(from_rest(page, BTC)) == 2
    assert from_rest({"code": 0, "msg": "", "data": None}, BTC) == []
    assert from_stream({"code": 0, "dataType": "BTC-USDT@trade", "data": None}) == []


def test_empty_quote_qty_is_null() -> None:
    page = load_payload("rest_historical_trades.json")
    page["data"][0]["quoteQty"] = ""
    assert from_rest(page, BTC)[0]["quote_qty"] is None


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.pop("p"), "trades stream[1]: field 'p' is missing"),
        (lambda t: t.update(q=""), "trades stream[1]: field 'q' is ''"),
        (lambda t: t.update(T="soon"), "trades stream[1]: field 'T' has a bad value 'soon'"),
        (lambda t: t.update(m="maybe"), "trades stream[1]: field 'm' has a bad value 'maybe'"),
        (lambda t: t.update(m=None), "trades stream[1]: field 'm' is None"),
    ],
)
def test_a_bad_stream_trade_names_the_field(edit: Any, message: str) -> None:
    frame = load_payload("ws_trade.json")
    edit(frame["data"][1])
    with pytest.raises(ConversionError) as raised:
        from_stream(frame)
    assert str(raised.value) == message


def test_rest_without_symbol_in_query_is_a_conversion_error() -> None:
    with pytest.raises(ConversionError, match="trades rest: the query has no 'symbol'"):
        from_rest(load_payload("rest_trades.json"), {})


def test_a_non_zero_code_is_a_conversion_error() -> None:
    with pytest.raises(ConversionError, match="envelope code 109425"):
        from_rest(load_payload("rest_error_109425.json"), BTC)


def test_a_frame_without_a_topic_is_a_conversion_error() -> None:
    with pytest.raises(ConversionError, match=r"^trades stream: bad dataType None$"):
        from_stream({"code": 0, "data": []})


def test_trades_replay_keys_name_existing_columns() -> None:
    assert TRADES.occurrence
    assert TRADES.replay_key is not None
    for columns in TRADES.replay_key.values():
        assert set(columns) <= set(TRADES.columns)
