"""Backfill fixtures: a simulator with a slow trade tape, a 3-day window in the past, its Market as truth."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backfill.job import Job, Request, Summary
from backfill.progress import LogReporter
from backfill.series import SERIES
from exchange.ratelimit import Budget, Limiter
from exchange.rest import RestClient
from storage.lake import Lake
from storage.state import State
from storage.views import connect

SYMBOLS = ["BTC-USDT", "ETH-USDT", "SOL-USDT"]
DAY_MS = 86_400_000
TODAY_MS = int(time.time() * 1000) // DAY_MS * DAY_MS
SINCE_MS = TODAY_MS - 4 * DAY_MS
UNTIL_MS = SINCE_MS + 3 * DAY_MS
# The simulator's default budget (500 per endpoint per 10 s) instead of BingX's stricter published one:
# the tests stay fast; pacing against the published budget is measured by `make bench`.
FAST = (Budget("simulator endpoint", 490, 10.0, per_endpoint=True),)


def no_sleep(seconds: float) -> None:
    """Retries in tests do not wait: the simulator's faults last a number of requests, not seconds."""


def run_job(
    rest_url: str,
    data_dir: Path,
    series: str,
    intervals: tuple[str, ...] = (),
    *,
    symbols: list[str] | None = None,
    limiter: Limiter | None = None,
    **client: Any,
) -> Summary:
    """Backfill SINCE..UNTIL of one series for SYMBOLS in-process, the way the CLI does."""
    request = Request(SERIES[series], symbols or SYMBOLS, intervals, SINCE_MS, UNTIL_MS)
    client.setdefault("sleep", no_sleep)
    with RestClient(rest_url, limiter=limiter or Limiter(FAST), **client) as rest:
        job = Job(rest, Lake(data_dir / "lake"), State(data_dir / "state"), workers=3, reporter=LogReporter())
        return job.run(request)


def query(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    con = connect(data_dir / "lake")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def lake_files(data_dir: Path) -> set[Path]:
    return set((data_dir / "lake").rglob("*.parquet"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    from simulator import Simulator

    with Simulator(symbols=SYMBOLS, seed=5, trades_per_second=0.02) as simulator:
        yield simulator
