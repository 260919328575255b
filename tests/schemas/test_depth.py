"""Order-book converters, pinned to tests/payloads/ws_depth5.json, ws_incr_depth_*.json, rest_depth.json."""

from __future__ import annotations

import pytest

from schemas.dataset import ConversionError
from schemas.depth import snapshot_from_rest, snapshot_from_stream, update_from_stream
from tests.conftest import load_payload, utc_ms


def test_stream_snapshot_sorts_asks_best_first_and_takes_levels_from_the_topic() -> None:
    assert snapshot_from_stream(load_payload("ws_depth5.json")) == [
        {
            "symbol": "BTC-USDT",
            "event_time": utc_ms(2025, 10, 9, 7, 59, 2, 928000),
            "levels": 5,
            "bid_prices": [121825.7, 121825.6, 121825.4, 121825.2, 121825.0],
            "bid_qtys": [7.7622, 0.006, 0.1234, 0.0021, 0.0023],
            "ask_prices": [121825.9, 121826.1, 121826.5, 121827.1, 121827.3],
            "ask_qtys": [9.2345, 0.0143, 0.0028, 0.001, 0.0025],
        }
    ]


@pytest.mark.parametrize(
    ("topic", "levels"), [("depth20@500ms", 20), ("depth100@200ms", 100), ("depth50", 50)]
)
def test_stream_levels_come_from_the_topic(topic: str, levels: int) -> None:
    frame = load_payload("ws_depth5.json")
    frame["dataType"] = f"BTC-USDT@{topic}"
    assert snapshot_from_stream(frame)[0]["levels"] == levels


def test_rest_snapshot_sorts_descending_asks_and_takes_levels_from_limit() -> None:
    rows = snapshot_from_rest(load_payload("rest_depth.json"), {"symbol": "SHIB-USDT", "limit": 5})
    assert rows == [
        {
            "symbol": "SHIB-USDT",
            "event_time": utc_ms(2023, 12, 16, 9, 31, 23, 983000),
            "levels": 5,
            "bid_prices": [0.000009854, 0.000009853, 0.000009852, 0.000009851, 0.00000985],
            "bid_qtys": [483909.0, 824851.0, 539085.0, 697410.0, 488828.0],
            "ask_prices": [0.000009856, 0.000009857, 0.000009858, 0.000009859, 0.00000986],
            "ask_qtys": [687669.0, 976049.0, 501588.0, 279010.0, 578208.0],
        }
    ]


def test_rest_levels_default_to_20() -> None:
    assert snapshot_from_rest(load_payload("rest_depth.json"), {"symbol": "SHIB-USDT"})[0]["levels"] == 20


def test_asks_in_either_order_and_shuffled_bids_give_the_same_row() -> None:
    frame = load_payload("ws_depth5.json")
    expected = snapshot_from_stream(frame)
    frame["data"]["asks"].reverse()
    frame["data"]["bids"] = [frame["data"]["bids"][i] for i in (3, 0, 4, 1, 2)]
    assert snapshot_from_stream(frame) == expected


def test_incr_depth_snapshot_row() -> None:
    assert update_from_stream(load_payload("ws_incr_depth_all.json")) == [
        {
            "symbol": "BTC-USDT",
            "event_time": utc_ms(2026, 9, 23, 1, 39, 46, 998000),
            "update_id": 857550007,
            "action": "all",
            "bid_prices": [86378.9, 86377.5, 86377.2],
            "bid_qtys": [0.0001, 0.0003, 13.9985],
            "ask_prices": [86379.1, 86379.3, 86379.4],
            "ask_qtys": [87.123, 9.6687, 17.5938],
        }
    ]


def test_incr_depth_update_sorts_descending_asks_and_keeps_zero_qty_deletions() -> None:
    (row,) = update_from_stream(load_payload("ws_incr_depth_update.json"))
    assert (row["action"], row["update_id"]) == ("update", 857550008)
    assert row["event_time"] == utc_ms(2026, 9, 23, 1, 39, 47, 285000)
    assert row["bid_prices"] == [86377.2, 86377.0, 86376.9]
    assert row["bid_qtys"] == [18.0499, 0.0191, 0.0061]
    assert row["ask_prices"] == [87168.9, 87169.0, 87169.5]
    assert row["ask_qtys"] == [0.0, 0.0, 0.0]


def test_update_id_and_time_may_be_numeric_strings() -> None:
    frame = load_payload("ws_incr_depth_update.json")
    frame["data"].update(lastUpdateId="857550008", time="1790127587285")
    assert update_from_stream(frame) == update_from_stream(load_payload("ws_incr_depth_update.json"))


def test_empty_sides_are_empty_lists() -> None:
    frame = load_payload("ws_incr_depth_update.json")
    frame["data"]["asks"] = []
    assert update_from_stream(frame)[0]["ask_prices"] == []


def test_data_null_means_no_rows() -> None:
    assert snapshot_from_stream({"code": 0, "dataType": "BTC-USDT@depth5@500ms", "ts": 1, "data": None}) == []
    assert update_from_stream({"code": 0, "dataType": "BTC-USDT@incrDepth", "data": None}) == []
    assert snapshot_from_rest({"code": 0, "data": None}, {"symbol": "BTC-USDT"}) == []


def test_missing_ts_names_the_field() -> None:
    frame = load_payload("ws_depth5.json")
    del frame["ts"]
    with pytest.raises(ConversionError, match=r"^depth_snapshots stream: field 'ts' is missing$"):
        snapshot_from_stream(frame)


def test_missing_update_id_names_the_field() -> None:
    frame = load_payload("ws_incr_depth_update.json")
    del frame["data"]["lastUpdateId"]
    with pytest.raises(ConversionError, match=r"^book_updates stream: field 'lastUpdateId' is missing$"):
        update_from_stream(frame)


def test_unknown_action_is_a_conversion_error() -> None:
    frame = load_payload("ws_incr_depth_update.json")
    frame["data"]["action"] = "partial"
    with pytest.raises(ConversionError, match="field 'action' is 'partial'"):
        update_from_stream(frame)


def test_a_level_that_is_not_a_pair_is_a_conversion_error() -> None:
    frame = load_payload("ws_depth5.json")
    frame["data"]["bids"][2] = {"p": "121825.4", "v": "0.1234"}  # the legacy 2023 shape
    with pytest.raises(ConversionError) as raised:
        snapshot_from_stream(frame)
    assert str(raised.value).startswith("depth_snapshots stream: field 'bids' has a bad value [[")


def test_rest_depth_without_time_names_the_field() -> None:
    page = load_payload("rest_depth.json")
    del page["data"]["T"]
    with pytest.raises(ConversionError, match=r"^depth_snapshots rest: field 'T' is missing$"):
        snapshot_from_rest(page, {"symbol": "SHIB-USDT"})
