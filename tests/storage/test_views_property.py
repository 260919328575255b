"""Property: any interleaving, batching or duplication of writes of the same facts gives the same views."""

from __future__ import annotations

import functools
import itertools
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.dataset import Dataset, Row
from storage.lake import Lake
from storage.views import connect
from tests.storage.samples import BARS, FILLS, SAMPLES, bar, fill

FACTS: list[tuple[Dataset, Row]] = [
    *(
        (BARS, bar(minute, close, "stream", received_s))
        for minute, close, received_s in [
            (0, 100.5, 61),
            (0, 101.0, 70),
            (1, 102.0, 121),
            (1, 101.5, 150),
            (2, 103.0, 181),
        ]
    ),
    *((BARS, bar(minute, close, "backfill", 400)) for minute, close in [(0, 101.25), (1, 101.75)]),
    *((FILLS, fill(price, "stream", 1, frame_index=index)) for index, price in enumerate([7.0, 7.0, 8.0])),
    (FILLS, fill(7.0, "stream", 2, frame_index=0)),  # the same-looking trade again, in a later frame
    *(
        (FILLS, fill(price, "backfill", 500, trade_id=trade_id))
        for trade_id, price in [("101", 7.0), ("103", 8.0)]
    ),
]


@st.composite
def write_plans(draw: st.DrawFn) -> list[list[int]]:
    """Every fact at least once plus some copies, in any order, cut into write batches anywhere."""
    copies = draw(st.lists(st.sampled_from(range(len(FACTS))), max_size=8))
    order = draw(st.permutations([*range(len(FACTS)), *copies]))
    cuts = sorted(set(draw(st.lists(st.integers(1, len(order) - 1), max_size=6))))
    bounds = [0, *cuts, len(order)]
    return [order[start:end] for start, end in itertools.pairwise(bounds)]


def _view_contents(plan: list[list[int]]) -> dict[str, list[dict[str, Any]]]:
    with tempfile.TemporaryDirectory() as folder:
        lake = Lake(Path(folder))
        for batch in plan:
            for dataset in (BARS, FILLS):
                rows = [FACTS[index][1] for index in batch if FACTS[index][0] is dataset]
                lake.write(dataset, rows)
        with connect(folder, datasets=SAMPLES) as con:
            return {
                name: con.sql(f"SELECT * FROM {name} ORDER BY ALL").to_arrow_table().to_pylist()
                for name in ("bars", "fills")
            }


@functools.cache
def _expected() -> dict[str, list[dict[str, Any]]]:
    return _view_contents([list(range(len(FACTS)))])


def test_the_expected_contents_are_what_the_precedence_says() -> None:
    expected = _expected()
    assert [(row["close"], row["source"]) for row in expected["bars"]] == [
        (101.25, "backfill"),
        (101.75, "backfill"),
        (103.0, "stream"),
    ]
    assert [(row["price"], row["source"], row["trade_id"]) for row in expected["fills"]] == [
        (7.0, "backfill", "101"),
        (7.0, "stream", None),  # three 7.0 trades streamed (two in frame 1, one in frame 2), one backfilled
        (7.0, "stream", None),
        (8.0, "backfill", "103"),
    ]


@settings(max_examples=25, deadline=None)
@given(write_plans())
def test_any_interleaving_or_duplication_of_writes_gives_the_same_views(plan: list[list[int]]) -> None:
    assert _view_contents(plan) == _expected()
