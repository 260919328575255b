"""The parsing helpers every converter shares (schemas/dataset.py): BingX's loose typing in one place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.dataset import (
    MS,
    ConversionError,
    amount,
    envelope_data,
    explain,
    flag,
    integer,
    items,
    ms_or_none,
    time_ms,
    topic_parts,
)


@given(st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999))  # years 1 to 9999
def test_time_ms_lands_as_exactly_that_utc_time(ms: int) -> None:
    assert time_ms(ms) == time_ms(str(ms)) == ms
    landed = pa.array([time_ms(ms)], MS).to_pylist()[0]  # what the lake stores and DuckDB reads
    assert landed == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


@pytest.mark.parametrize("ms", [-62_135_596_800_001, 253_402_300_800_000, 10**20, "-99999999999999999"])
def test_time_ms_outside_a_datetimes_range_is_a_conversion_error(ms: int | str) -> None:
    with pytest.raises(ConversionError, match=r"^time -?\d+ ms is out of range$"):
        time_ms(ms)


def test_ms_or_none_treats_empty_as_null_and_zero_as_the_epoch() -> None:
    assert ms_or_none(None) is None
    assert ms_or_none("") is None
    assert ms_or_none(0) == 0


def test_amount_accepts_strings_numbers_and_empty() -> None:
    assert amount("42214.0") == 42214.0
    assert amount(0.0002) == 0.0002
    assert amount(2) == 2.0
    assert amount("") is None
    with pytest.raises(ConversionError):
        amount(True)


def test_flag_and_integer_accept_both_spellings() -> None:
    assert [flag(v) for v in (True, "true", False, "false", "", None)] == [
        True,
        True,
        False,
        False,
        None,
        None,
    ]
    assert [integer(v) for v in (4, "4", "", None)] == [4, 4, None, None]
    with pytest.raises(ConversionError):
        flag("yes")
    with pytest.raises(ConversionError):
        integer(False)


def test_items_normalises_object_array_and_null() -> None:
    assert items({"a": 1}) == [{"a": 1}]
    assert items([{"a": 1}, {"a": 2}]) == [{"a": 1}, {"a": 2}]
    assert items(None) == []
    with pytest.raises(ConversionError, match=r"^w: expected an object or an array in 'data', got str$"):
        items("oops", "w")


def test_envelope_data_checks_the_code() -> None:
    assert envelope_data({"code": 0, "data": [1]}, "x") == [1]
    assert envelope_data({"code": "0", "data": {"a": 1}}, "x") == {"a": 1}
    with pytest.raises(ConversionError, match=r"^x: envelope code 109400 \('bad'\), not 0$"):
        envelope_data({"code": 109400, "msg": "bad"}, "x")
    with pytest.raises(ConversionError, match=r"^x: expected a JSON object envelope, got list$"):
        envelope_data([], "x")  # type: ignore[arg-type]


def test_topic_parts_splits_the_data_type() -> None:
    assert topic_parts({"dataType": "BTC-USDT@depth20@500ms"}) == ("BTC-USDT", "depth20@500ms")
    with pytest.raises(ConversionError, match="bad dataType ''"):
        topic_parts({"dataType": ""})


def test_explain_names_the_first_bad_field_with_its_index() -> None:
    fields = {"T": "time", "p": "decimal", "x": "decimal?"}
    good = {"T": 1, "p": "1.5", "x": ""}
    assert str(explain("w", [good, {"T": 1}], fields)) == "w[1]: field 'p' is missing"
    assert str(explain("w", [{"T": "x", "p": "1"}], fields)) == "w: field 'T' has a bad value 'x'"
    assert str(explain("w", [good, "nope"], fields)) == "w[1]: expected an object, got str 'nope'"
    assert str(explain("w", [good], fields, KeyError("k"))) == "w: unexpected shape (KeyError: 'k')"
    assert str(explain("w", [good], fields, ConversionError("field 'z' is odd"))) == "w: field 'z' is odd"


def test_explain_messages_stay_on_one_line() -> None:
    error = explain("w", [{"T": 1, "p": "1"}], {"T": "time"}, ValueError("two\nlines"))
    assert "\n" not in str(error)
