"""Walk fetches, converts and stamps pages of one series; BatchWriter writes them behind the fetching, in
order, data before cursor; errors stop it."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from backfill import cursor as cursors
from backfill.errors import PagingError
from backfill.pager import Page
from backfill.series import SERIES
from backfill.walk import BatchWriter, Walk
from exchange.rest import RestClient
from schemas import DATASETS
from schemas.dataset import Dataset, Row
from storage.lake import Lake
from storage.state import State
from tests.backfill.conftest import SINCE_MS, no_sleep

MINUTE_MS = 60_000
NAME = "backfill/klines/BTC-USDT/1m"


class SlowLake(Lake):
    """A real lake whose writes can be held until a flag is set, fail on demand, and log what they did."""

    def __init__(self, root: Path, events: list[str], fail_on: int | None = None) -> None:
        super().__init__(root)
        self.events, self.fail_on = events, fail_on
        self.hold_until: threading.Event | None = None
        self.saw_next_page: list[bool] = []

    def write(self, dataset: Dataset, rows: Sequence[Row]) -> list[str]:
        number = sum(1 for event in self.events if event.startswith("write")) + 1
        if self.hold_until is not None:
            self.saw_next_page.append(self.hold_until.wait(timeout=10))
        if number == self.fail_on:
            raise OSError(f"disk full at write {number}")
        paths = super().write(dataset, rows)
        self.events.append(f"write {number}")
        return paths


class LoggedState(State):
    """A real state folder that logs each cursor save with how far the cursor reached."""

    def __init__(self, root: Path, events: list[str]) -> None:
        super().__init__(root)
        self.events = events

    def write(self, name: str, document: dict[str, Any]) -> None:
        super().write(name, document)
        self.events.append(f"save {document['covered'][-1][1]}")


def bar(open_ms: int) -> Row:
    moment = datetime.fromtimestamp(open_ms / 1000, tz=UTC)
    price = 100.0 + open_ms / MINUTE_MS
    return {
        "symbol": "BTC-USDT",
        "interval": "1m",
        "open_time": moment,
        "open": price,
        "high": price,
        "low": price,
        "close": price,
        "volume": 1.0,
        "received_at": moment,
        "source": "backfill",
    }


def pages(count: int, fetched: list[int], after_first: threading.Event | None = None) -> Iterator[Page[Row]]:
    """`count` pages of one bar each, minute after minute; logs each page as it is fetched."""
    for index in range(count):
        if index == 1 and after_first is not None:
            after_first.set()  # the second page is being fetched
        fetched.append(index)
        yield Page([bar(index * MINUTE_MS)], covered_to_ms=(index + 1) * MINUTE_MS)


def writer(lake: Lake, state: State) -> BatchWriter:
    flushed: list[tuple[int, int, int, int]] = []
    return BatchWriter(
        lake, state, DATASETS["klines"], NAME, cursors.Cursor(), 1, set(), lambda *a: flushed.append(a)
    )


def test_the_next_page_is_fetched_while_the_previous_one_is_written(tmp_path: Path) -> None:
    events: list[str] = []
    lake, state = SlowLake(tmp_path / "lake", events), LoggedState(tmp_path / "state", events)
    lake.hold_until = threading.Event()
    fetched: list[int] = []
    writer(lake, state).consume(0, pages(3, fetched, lake.hold_until))
    assert lake.saw_next_page[0] is True  # page 2 was fetched during write 1
    assert events == ["write 1", "save 60000", "write 2", "save 120000", "write 3", "save 180000"]
    assert cursors.load(state, NAME).covered == [(0, 3 * MINUTE_MS)]


def test_a_failed_write_stops_the_walk_and_the_cursor_stays_behind_the_data(tmp_path: Path) -> None:
    events: list[str] = []
    lake, state = SlowLake(tmp_path / "lake", events, fail_on=2), LoggedState(tmp_path / "state", events)
    fetched: list[int] = []
    with pytest.raises(OSError, match="disk full at write 2"):
        writer(lake, state).consume(0, pages(10, fetched))
    assert events == ["write 1", "save 60000"]
    assert cursors.load(state, NAME).covered == [(0, MINUTE_MS)]
    assert len(fetched) <= 3  # at most one batch fetched beyond the one being written


class Stop(Exception):
    """What a stopped job's check_stop raises."""


def walk(client: RestClient, lake: Lake, check_stop: Any = lambda: None) -> Walk:
    return Walk(client, lake, check_stop, SERIES["klines"], DATASETS["klines"], "ETH-USDT", "1m")


def truth(sim: Any, low: int, high: int) -> list[tuple[int, float, float]]:
    return [
        (b.open_ms, float(b.open), float(b.close)) for b in sim.market.klines("ETH-USDT", "1m", low, high)
    ]


def test_a_fetch_asks_for_the_series_symbol_and_interval_and_stamps_each_row_backfill(
    sim: Any, tmp_path: Path
) -> None:
    high = SINCE_MS + 5 * MINUTE_MS
    with RestClient(sim.rest_url, sleep=no_sleep) as client:
        rows = walk(client, Lake(tmp_path / "lake")).fetch({"startTime": SINCE_MS, "endTime": high - 1})
    (asked,) = [r for r in sim.rest_ledger.snapshot() if r.params.get("startTime") == str(SINCE_MS)]
    assert (asked.params["symbol"], asked.params["interval"]) == ("ETH-USDT", "1m")
    assert [(int(r["open_time"]), r["open"], r["close"]) for r in rows] == truth(sim, SINCE_MS, high)
    assert {(r["source"], r["received_at"].tzinfo) for r in rows} == {("backfill", UTC)}


def test_times_pages_cover_the_window_exactly_once(sim: Any, tmp_path: Path) -> None:
    low, high = SINCE_MS, SINCE_MS + 2_500 * MINUTE_MS  # 2,500 bars: more than one page of 1,000
    with RestClient(sim.rest_url, sleep=no_sleep) as client:
        pages = list(walk(client, Lake(tmp_path / "lake")).times(low, high))
    rows = [row for page in pages for row in page.items]
    assert len(pages) >= 2
    assert [(int(r["open_time"]), r["open"], r["close"]) for r in rows] == truth(sim, low, high)
    assert pages[-1].covered_to_ms == high


def test_a_stopped_job_sends_no_further_request(sim: Any, tmp_path: Path) -> None:
    def stop() -> None:
        raise Stop

    with RestClient(sim.rest_url, sleep=no_sleep) as client:
        before = len(sim.rest_ledger.snapshot())
        with pytest.raises(Stop):
            walk(client, Lake(tmp_path / "lake"), stop).fetch({"startTime": SINCE_MS})
    assert len(sim.rest_ledger.snapshot()) == before


def test_a_page_the_converter_refuses_is_kept_in_rejects_and_stops_the_walk(sim: Any, tmp_path: Path) -> None:
    path = SERIES["klines"].path
    sim.rest.faults.mangle_next(1, field="close", value="not a price", index=2, path=path)
    try:
        with RestClient(sim.rest_url, sleep=no_sleep) as client, pytest.raises(PagingError) as raised:
            walk(client, Lake(tmp_path / "lake")).fetch(
                {"startTime": SINCE_MS, "endTime": SINCE_MS + 4 * MINUTE_MS}
            )
    finally:
        sim.rest.faults.clear()
    assert str(raised.value).startswith(f"{path} {{'symbol': 'ETH-USDT', 'startTime': {SINCE_MS}, ")
    assert str(raised.value).endswith("(kept in _rejects/klines)")
    assert len(list((tmp_path / "lake" / "_rejects" / "klines").rglob("*.parquet"))) == 1
