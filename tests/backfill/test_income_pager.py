"""The income pager over a fake endpoint with BingX's rules: every row of a window exactly once, for any page
size and either page order; a page stuck on one millisecond is a PagingError."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backfill.account import WINDOW_MS, window_rows, windows
from backfill.errors import PagingError


class FakeIncome:
    """Answers /user/income from a list: inclusive bounds, `limit` rows, newest or oldest first."""

    def __init__(self, times: list[int], newest_first: bool) -> None:
        self.rows = [
            {"incomeType": "FUNDING_FEE", "income": "-0.1", "asset": "USDT", "time": t, "tranId": str(i)}
            for i, t in enumerate(times)
        ]
        self.newest_first = newest_first
        self.calls = 0

    def get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        low, high, limit = params["startTime"], params["endTime"], params["limit"]
        assert high - low <= WINDOW_MS
        found = sorted((r for r in self.rows if low <= r["time"] <= high), key=lambda r: r["time"])
        if self.newest_first:
            found.reverse()
        return {"code": 0, "msg": "", "data": found[:limit]}


@settings(max_examples=60, deadline=None)
@given(
    times=st.lists(st.integers(0, 10_000), max_size=120),
    limit=st.integers(3, 40),
    newest_first=st.booleans(),
)
def test_any_page_size_and_order_gives_every_row_in_the_window_once(
    times: list[int], limit: int, newest_first: bool
) -> None:
    # at most 2 rows share a millisecond, so a page of >= 3 always moves on
    capped = [t for i, t in enumerate(sorted(times)) if sorted(times)[: i + 1].count(t) <= 2]
    fake = FakeIncome(capped, newest_first)
    rows, pages = window_rows(fake, 1_000, 9_000, limit)  # type: ignore[arg-type]
    wanted = sorted(str(i) for i, r in enumerate(fake.rows) if 1_000 <= r["time"] < 9_000)
    assert sorted(r["tran_id"] for r in rows) == wanted
    assert pages == fake.calls


def test_a_full_page_in_one_millisecond_is_a_paging_error_not_a_loop() -> None:
    fake = FakeIncome([5_000] * 10, newest_first=True)
    with pytest.raises(PagingError, match="one millisecond"):
        window_rows(fake, 0, 10_000, 5)  # type: ignore[arg-type]
    assert fake.calls == 2


def test_windows_are_at_most_seven_days_and_cover_the_range_without_overlap() -> None:
    spans = windows(0, 3 * WINDOW_MS + 5)
    assert spans == [
        (0, WINDOW_MS),
        (WINDOW_MS, 2 * WINDOW_MS),
        (2 * WINDOW_MS, 3 * WINDOW_MS),
        (3 * WINDOW_MS, 3 * WINDOW_MS + 5),
    ]
