"""The pager's arithmetic against fake servers with every ordering and boundary rule BingX might have."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backfill.errors import PagingError
from backfill.pager import first_id_at, id_pages, time_pages


@dataclass
class TimeServer:
    """A time-paged endpoint over sorted item times: inclusive or exclusive bounds, first or last N."""

    times: list[int]
    newest_first: bool = False
    start_inclusive: bool = True
    end_inclusive: bool = True
    picks_last: bool = False  # returns the last `limit` items of the range instead of the first
    calls: int = 0

    def __call__(self, params: dict[str, Any]) -> list[int]:
        self.calls += 1
        start, end, limit = params["startTime"], params["endTime"], params["limit"]
        lo = bisect_left(self.times, start) if self.start_inclusive else bisect_right(self.times, start)
        hi = bisect_right(self.times, end) if self.end_inclusive else bisect_left(self.times, end)
        found = self.times[lo:hi]
        found = found[-limit:] if self.picks_last else found[:limit]
        return found[::-1] if self.newest_first else found


def identity(value: int) -> int:
    return value


@st.composite
def bar_windows(draw: st.DrawFn) -> tuple[list[int], int, int, int]:
    step = draw(st.sampled_from([1, 3, 60]))
    count = draw(st.integers(0, 60))
    gaps = draw(st.lists(st.integers(1, 4), min_size=count, max_size=count))
    times, t = [], draw(st.integers(0, 50)) * step
    for gap in gaps:
        t += gap * step
        times.append(t)
    start = draw(st.integers(0, (times[-1] if times else 100) + step))
    end = draw(st.integers(start, (times[-1] if times else 100) + 3 * step))
    return times, start, end, step


@settings(max_examples=300, deadline=None)
@given(
    window=bar_windows(),
    limit=st.integers(2, 12),
    newest_first=st.booleans(),
    start_inclusive=st.booleans(),
    end_inclusive=st.booleans(),
    picks_last=st.booleans(),
    sparse=st.booleans(),
)
def test_time_pages_cover_the_window_exactly_once_under_any_server_rule(
    window: tuple[list[int], int, int, int],
    limit: int,
    newest_first: bool,
    start_inclusive: bool,
    end_inclusive: bool,
    picks_last: bool,
    sparse: bool,
) -> None:
    times, start, end, step = window
    server = TimeServer(times, newest_first, start_inclusive, end_inclusive, picks_last)
    # sparse: funding-like, the walk advances by 1 ms but sizes its ranges by the spacing of the items
    steps = {"step_ms": 1, "spacing_ms": step} if sparse else {"step_ms": step}
    pages = list(time_pages(server, identity, start, end, limit=limit, path="/k", **steps))
    got = [t for page in pages for t in page.items]
    assert got == [t for t in times if start <= t < end]
    covered = [page.covered_to_ms for page in pages]
    assert covered == sorted(covered)
    assert not pages or covered[-1] == end
    for number, page in enumerate(pages):  # never ahead of the data: nothing below it is still to come
        assert all(t >= page.covered_to_ms for later in pages[number + 1 :] for t in later.items)


def test_dense_bars_take_one_request_per_limit_minus_one_bars() -> None:
    times = list(range(0, 4320 * 60_000, 60_000))  # 3 days of 1m bars
    server = TimeServer(times, newest_first=True)
    pages = list(time_pages(server, identity, 0, 4320 * 60_000, step_ms=60_000, limit=1000, path="/k"))
    assert sum(len(p.items) for p in pages) == 4320
    assert server.calls == 5  # 999 bars per page: ceil(4320 / 999)


def test_a_response_that_ignores_the_range_raises_paging_error_naming_the_request() -> None:
    def stuck(params: dict[str, Any]) -> list[int]:
        return [0, 1, 2]  # always the same page, whatever startTime says

    with pytest.raises(PagingError, match=r"/k .*startTime.*ignored the requested range.*0\.\.2"):
        list(time_pages(stuck, identity, 10, 100, step_ms=1, limit=3, path="/k"))


@dataclass(frozen=True)
class Trade:
    id: int
    time: int


@dataclass
class TradeServer:
    """An id-paged endpoint: fromId inclusive or exclusive, either page order, no fromId = newest."""

    trades: list[Trade]
    inclusive: bool = True
    newest_first: bool = False
    calls: int = 0

    def __call__(self, params: dict[str, Any]) -> list[Trade]:
        self.calls += 1
        limit = params["limit"]
        if "fromId" not in params:
            found = self.trades[-limit:]
        else:
            ids = [t.id for t in self.trades]
            from_id = params["fromId"]
            lo = bisect_left(ids, from_id) if self.inclusive else bisect_right(ids, from_id)
            found = self.trades[lo : lo + limit]
        return found[::-1] if self.newest_first else found


@st.composite
def trade_tapes(draw: st.DrawFn) -> list[Trade]:
    count = draw(st.integers(0, 400))
    trades, trade_id, t = [], draw(st.integers(0, 1000)), 0
    for _ in range(count):
        trade_id += draw(st.integers(1, 5))  # id gaps
        t += draw(st.sampled_from([0, 0, 1, 7]))  # same-ms trades are common
        trades.append(Trade(trade_id, t))
    return trades


def trade_id(trade: Trade) -> int:
    return trade.id


def trade_time(trade: Trade) -> int:
    return trade.time


@settings(max_examples=200, deadline=None)
@given(
    tape=trade_tapes(),
    since=st.integers(0, 800),
    length=st.integers(0, 800),
    inclusive=st.booleans(),
    newest_first=st.booleans(),
    limit=st.integers(2, 100),
)
def test_trade_walk_from_a_time_returns_every_trade_of_the_window_once(
    tape: list[Trade], since: int, length: int, inclusive: bool, newest_first: bool, limit: int
) -> None:
    server = TradeServer(tape, inclusive, newest_first)
    until = since + length
    first = first_id_at(server, trade_id, trade_time, since, path="/h")
    expected = [t for t in tape if since <= t.time < until]
    if first is None:
        assert not [t for t in tape if t.time >= since]
        return
    assert first == min(t.id for t in tape if t.time >= since)
    pages = list(id_pages(server, trade_id, trade_time, first, until, limit=limit, path="/h"))
    assert [t for page in pages for t in page.items] == expected
    assert pages[-1].covered_to_ms == until
    later = [t.id for t in tape if t.time >= until]
    assert pages[-1].next_id == (later[0] if later else (tape[-1].id + 1))


def test_a_trade_page_that_ignores_from_id_raises_paging_error() -> None:
    tape = [Trade(i, i) for i in range(1, 300)]

    def newest_only(params: dict[str, Any]) -> list[Trade]:
        return tape[-5:] if "fromId" not in params else tape[:5]

    with pytest.raises(PagingError, match=r"/h .*fromId.*did not advance"):
        list(id_pages(newest_only, trade_id, trade_time, 100, 10_000, limit=5, path="/h"))
