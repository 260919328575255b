"""The WebSocket frame codec: gzip, Ping/Pong, subscribe messages, acks and routing (BINGX_API.md §17)."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.frames import (
    PONG,
    Ack,
    FrameError,
    classify,
    data_topic,
    is_ping,
    loads,
    parse_ack,
    subscribe_message,
    unpack,
    unsubscribe_message,
)

LONG_ACK = {"id": "0fffced2", "code": 80015, "msg": "dataType not support", "dataType": "", "data": None}


def test_a_gzipped_ping_unpacks_to_ping_and_is_answered_with_plain_pong() -> None:
    raw = unpack(gzip.compress(b"Ping"), binary=True)
    assert raw == b"Ping" and is_ping(raw)
    assert PONG == "Pong"
    assert not is_ping(b"Pong") and not is_ping(b'{"ping":"x"}')


def test_text_frames_pass_through_and_binary_data_frames_are_gunzipped() -> None:
    frame = {"code": 0, "dataType": "BTC-USDT@trade", "data": [{"p": "1.5"}]}
    assert unpack(b"Ping", binary=False) == b"Ping"
    assert loads(unpack(gzip.compress(json.dumps(frame).encode()), binary=True)) == frame
    assert unpack("é".encode(), binary=False) == "é".encode()


@given(st.text())
def test_unpack_round_trips_any_text(text: str) -> None:
    assert unpack(gzip.compress(text.encode()), binary=True) == text.encode()


def test_the_data_topic_is_found_without_parsing_and_an_ack_has_none() -> None:
    assert data_topic(b'{"code":0,"dataType":"BTC-USDT@trade","data":[]}') == "BTC-USDT@trade"
    assert data_topic(json.dumps(LONG_ACK).replace(" ", "").encode()) is None
    assert data_topic(b'{"id":"x","code":0,"msg":""}') is None


@pytest.mark.parametrize(
    "payload",
    [
        b"Ping",
        b"\x1f\x8b\x08garbage",
        gzip.compress(b"truncated frame")[:-6],
        zlib.compress(b"zlib, not gzip"),
    ],
)
def test_bytes_that_are_not_gzip_raise_a_frame_error(payload: bytes) -> None:
    with pytest.raises(FrameError, match="not gzip") as caught:
        unpack(payload, binary=True)
    assert isinstance(caught.value, ValueError) and "\n" not in str(caught.value)


def test_gzip_of_bytes_that_are_not_utf8_raises_a_frame_error() -> None:
    with pytest.raises(FrameError, match="not UTF-8"):
        unpack(gzip.compress(b"\xff\xfe\x00bad"), binary=True)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"Ping"', ""])
def test_loads_rejects_anything_but_a_json_object(text: str) -> None:
    with pytest.raises(FrameError):
        loads(text)


def test_subscribe_and_unsubscribe_messages_have_bingx_shape() -> None:
    assert json.loads(subscribe_message("BTC-USDT@trade", "r1")) == {
        "id": "r1",
        "reqType": "sub",
        "dataType": "BTC-USDT@trade",
    }
    assert json.loads(unsubscribe_message("BTC-USDT@kline_1m", "r2")) == {
        "id": "r2",
        "reqType": "unsub",
        "dataType": "BTC-USDT@kline_1m",
    }
    with pytest.raises(ValueError):
        subscribe_message("", "r3")


@pytest.mark.parametrize(
    ("obj", "kind"),
    [
        ({"code": 0, "dataType": "BTC-USDT@trade", "data": []}, "data"),
        ({"id": "a", "code": 0, "msg": "", "dataType": "", "data": None}, "ack"),
        ({"id": "a", "code": 0, "msg": ""}, "ack"),
        (LONG_ACK, "ack"),
        ({"e": "ACCOUNT_UPDATE", "E": 1, "a": {"m": "ORDER"}}, "account"),
        ({"e": "ORDER_TRADE_UPDATE", "E": 1, "o": {"s": "LINK-USDT"}}, "account"),
        ({"e": "ACCOUNT_CONFIG_UPDATE", "E": 1, "ac": {"s": "BTC-USDT"}}, "account"),
        ({"e": "listenKeyExpired", "E": 1, "listenKey": "k"}, "unknown"),
        ({"ping": "uuid", "time": "t"}, "unknown"),
        ({}, "unknown"),
    ],
)
def test_classify_follows_the_documented_routing_rule(obj: dict[str, object], kind: str) -> None:
    assert classify(obj) == kind


def test_parse_ack_accepts_both_shapes_and_error_codes() -> None:
    assert parse_ack({"id": "a", "code": 0, "msg": ""}) == Ack("a", 0, "")
    assert parse_ack({"id": "b", "code": 0, "msg": "", "dataType": "", "data": None}).is_ok
    refused = parse_ack(LONG_ACK)
    assert refused == Ack("0fffced2", 80015, "dataType not support") and not refused.is_ok
    assert parse_ack({"id": "c", "code": "80403", "msg": "your topic num over max 200"}).code == 80403
    assert parse_ack({"id": 7, "code": 0, "msg": None}) == Ack("7", 0, "")


@pytest.mark.parametrize("obj", [{"code": 0, "msg": ""}, {"id": "", "code": 0}, {"id": "x", "code": "oops"}])
def test_parse_ack_rejects_frames_without_an_id_or_a_numeric_code(obj: dict[str, object]) -> None:
    with pytest.raises(FrameError):
        parse_ack(obj)
