"""BatchWriter: batches are written behind the fetching, in order, data before cursor; errors stop it."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from backfill import cursor as cursors
from backfill.pager import Page
from backfill.walk import BatchWriter
from schemas import DATASETS
from schemas.dataset import Dataset, Row
from storage.lake import Lake
from storage.state import State

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
