"""Account converters on the recorded payloads: exact ids, one row per item, stable event ids."""

from __future__ import annotations

import orjson
import pytest

from schemas.account import commission_from_rest, income_from_rest, positions_from_rest
from schemas.account_stream import event_id, from_account_event, is_account_event
from schemas.dataset import ConversionError
from tests.conftest import PAYLOADS, load_payload


def _event(name: str) -> dict[str, object]:
    return orjson.loads((PAYLOADS / name).read_bytes())  # type: ignore[no-any-return]


def test_an_order_id_beyond_two_to_the_53_is_kept_exactly() -> None:
    dataset, rows = from_account_event(_event("ws_order_trade_update.json"))
    assert dataset is not None and dataset.name == "order_updates"
    assert rows[0]["order_id"] == "1627970445070303232"  # float64 would give ...303200
    assert rows[0]["fee"] == -0.01369708 and rows[0]["trade_time"] == 1676973375149


def test_an_account_update_gives_one_row_per_balance_and_per_position() -> None:
    dataset, rows = from_account_event(_event("ws_account_update.json"))
    assert dataset is not None and dataset.name == "account_updates"
    assert [(r["item"], r["kind"], r["asset"], r["symbol"]) for r in rows] == [
        (0, "balance", "USDT", None),
        (1, "position", None, "LINK-USDT"),
    ]
    assert rows[1]["position_amount"] == 108.843 and rows[0]["wallet_balance"] == 5277.59264687


def test_a_funding_fee_without_positions_and_an_empty_update_still_count_as_events() -> None:
    funding = {
        "e": "ACCOUNT_UPDATE",
        "E": 1,
        "a": {"m": "FUNDING_FEE", "B": [{"a": "USDT", "wb": "1", "bc": "-1"}]},
    }
    assert len(from_account_event(funding)[1]) == 1
    empty = {"e": "ACCOUNT_UPDATE", "E": 2, "a": {"m": "ORDER"}}
    assert [r["kind"] for r in from_account_event(empty)[1]] == ["none"]


def test_the_event_id_is_the_same_for_the_same_event_and_differs_by_event_time() -> None:
    event = _event("ws_account_config_update.json")
    same = orjson.loads(orjson.dumps(event))
    later = {**event, "E": int(event["E"]) + 1}  # type: ignore[call-overload]
    assert event_id(event) == event_id(same) != event_id(later)
    assert from_account_event(event)[1][0]["long_leverage"] == 12


def test_listen_key_expired_is_an_account_frame_no_dataset_stores() -> None:
    expired = _event("ws_listen_key_expired.json")
    assert is_account_event(expired) and from_account_event(expired) == (None, [])
    assert not is_account_event(load_payload("ws_trade.json"))


@pytest.mark.parametrize(
    ("name", "broken"),
    [
        ("ws_order_trade_update.json", {"e": "ORDER_TRADE_UPDATE", "E": 1, "o": {"s": "BTC-USDT"}}),
        ("ws_account_update.json", {"e": "ACCOUNT_UPDATE", "E": "soon", "a": {}}),
        ("ws_account_config_update.json", {"e": "ACCOUNT_CONFIG_UPDATE", "E": 1, "ac": "x"}),
    ],
)
def test_a_malformed_event_is_a_one_line_conversion_error_naming_its_dataset(
    name: str, broken: dict[str, object]
) -> None:
    dataset, _ = from_account_event(_event(name))
    assert dataset is not None
    with pytest.raises(ConversionError) as raised:
        from_account_event(broken)
    assert str(raised.value).startswith(dataset.name) and "\n" not in str(raised.value)


def test_income_keeps_every_type_and_reads_a_time_sent_as_a_string() -> None:
    rows = income_from_rest(load_payload("rest_income.json"), {})
    assert [r["income_type"] for r in rows] == ["FUNDING_FEE", "TRADING_FEE", "TRANSFER"]
    assert rows[0]["time"] == 1769241660000 and rows[2]["symbol"] is None
    assert rows[0]["trade_id"] == "1769048666279853387_310_1941328"


def test_positions_take_leverage_as_a_string_and_liquidation_price_as_a_number() -> None:
    row = positions_from_rest(load_payload("rest_positions.json"), {})[0]
    assert row["leverage"] == 34 and row["liquidation_price"] == 7.9183 and row["isolated"] is True


def test_commission_rates_come_from_the_commission_object() -> None:
    rows = commission_from_rest(load_payload("rest_commission_rate.json"), {})
    assert rows == [{"taker_commission_rate": 0.0005, "maker_commission_rate": 0.0002}]
