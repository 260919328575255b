"""The msgspec decoder for book frames gives exactly the rows the orjson path gives, and declines (so the
converter's own checks run) whatever does not have the expected shape."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder import books
from schemas import DATASETS

PAYLOADS = Path(__file__).parents[1] / "payloads"
BOOK_FRAMES = [
    ("depth_snapshots", "ws_depth5.json"),
    ("book_updates", "ws_incr_depth_all.json"),
    ("book_updates", "ws_incr_depth_update.json"),
]


@pytest.mark.parametrize(("dataset", "payload"), BOOK_FRAMES)
def test_recorded_book_frames_convert_to_the_same_rows(dataset: str, payload: str) -> None:
    text = (PAYLOADS / payload).read_bytes()
    fast = books.decode(dataset, text)
    assert fast is not None
    convert = DATASETS[dataset].from_stream
    assert convert is not None
    rows = convert(fast)
    assert rows and rows == convert(orjson.loads(text))


@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=0, max_value=10**9, places=8, allow_nan=False),
            st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False),
        ),
        max_size=30,
    )
)
def test_decimal_strings_become_the_floats_python_would_make(levels: list[tuple[object, object]]) -> None:
    sides = [[str(price), str(qty)] for price, qty in levels]
    frame = {"dataType": "X-USDT@depth20@500ms", "ts": 1, "data": {"bids": sides, "asks": sides[::-1]}}
    decoded = books.decode("depth_snapshots", orjson.dumps(frame))
    assert decoded is not None
    assert decoded["data"]["bids"] == [(float(price), float(qty)) for price, qty in sides]


@pytest.mark.parametrize(
    "data",
    [
        {"bids": [["1.5", "2", "extra"]], "asks": []},  # a level is exactly [price, qty]
        {"bids": [["one", "2"]], "asks": []},  # not a decimal
        {"asks": []},  # no bids
        ["not", "an", "object"],
    ],
)
def test_frames_of_another_shape_are_declined(data: object) -> None:
    frame = orjson.dumps({"dataType": "BTC-USDT@depth5", "ts": 1, "data": data})
    assert books.decode("depth_snapshots", frame) is None


def test_datasets_without_a_fast_decoder_are_declined() -> None:
    assert books.decode("trades", b'{"dataType":"BTC-USDT@trade","data":[]}') is None
