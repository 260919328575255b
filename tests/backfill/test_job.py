"""Backfill jobs against the simulator: exact truth under both orderings, re-runs, two jobs, faults."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from exchange.errors import Banned
from exchange.ratelimit import Budget, Limiter
from tests.backfill.conftest import (
    SINCE_MS,
    SYMBOLS,
    UNTIL_MS,
    lake_files,
    query,
    run_job,
)

KLINES_SQL = """
SELECT symbol, epoch_ms(open_time), open, high, low, close, volume FROM {view}
WHERE "interval" = '{interval}' ORDER BY 1, 2
"""
FUNDING_SQL = "SELECT symbol, epoch_ms(funding_time), funding_rate FROM funding_rates ORDER BY 1, 2"
TRADES_SQL = """
SELECT symbol, CAST(trade_id AS BIGINT), epoch_ms(trade_time), price, qty, is_buyer_maker FROM trades
ORDER BY 1, 2
"""


def true_bars(market: Any, view: str, interval: str) -> list[tuple[Any, ...]]:
    bars = market.klines if view == "klines" else market.mark_klines
    return [
        (s, b.open_ms, float(b.open), float(b.high), float(b.low), float(b.close), float(b.volume))
        for s in SYMBOLS
        for b in bars(s, interval, SINCE_MS, UNTIL_MS)
    ]


def true_funding(market: Any) -> list[tuple[Any, ...]]:
    return [(s, t, float(rate)) for s in SYMBOLS for t, rate in market.funding(s, SINCE_MS, UNTIL_MS)]


def true_trades(market: Any) -> list[tuple[Any, ...]]:
    return [
        (s, t.id, t.time_ms, float(t.price), float(t.qty), t.is_buyer_maker)
        for s in SYMBOLS
        for t in market.trades(s, SINCE_MS, UNTIL_MS)
    ]


def backfill_everything(rest_url: str, data_dir: Path) -> None:
    run_job(rest_url, data_dir, "klines", ("1m",))
    run_job(rest_url, data_dir, "mark-klines", ("1m",))
    run_job(rest_url, data_dir, "funding")
    run_job(rest_url, data_dir, "trades")


def assert_lake_equals_truth(market: Any, data_dir: Path) -> None:
    klines = query(data_dir, KLINES_SQL.format(view="klines", interval="1m"))
    assert len(klines) == 3 * 3 * 1440
    assert klines == true_bars(market, "klines", "1m")
    assert query(data_dir, KLINES_SQL.format(view="mark_klines", interval="1m")) == true_bars(
        market, "mark_klines", "1m"
    )
    funding = query(data_dir, FUNDING_SQL)
    assert funding and funding == true_funding(market)
    trades = query(data_dir, TRADES_SQL)
    assert len(trades) > 3 * 3 * 1000  # the slow tape still has thousands of trades per symbol
    assert trades == true_trades(market)


@pytest.mark.parametrize(
    "options",
    [
        {"order": "asc"},
        {"order": "desc", "start_exclusive": True, "funding_null_when_empty": True},
    ],
    ids=["ascending", "newest-first"],
)
def test_three_days_of_every_series_equal_the_simulators_truth(
    options: dict[str, Any], tmp_path: Path
) -> None:
    from simulator import Simulator
    from simulator.endpoints import Options

    with Simulator(symbols=SYMBOLS, seed=5, trades_per_second=0.02, options=Options(**options)) as sim:
        assert sim.rest_url is not None
        backfill_everything(sim.rest_url, tmp_path)
        assert_lake_equals_truth(sim.market, tmp_path)
        before = lake_files(tmp_path)
        backfill_everything(sim.rest_url, tmp_path)
        assert lake_files(tmp_path) == before  # a finished window writes nothing, not even an empty file


def test_a_rerun_sends_no_history_request_once_the_window_is_done(sim: Any, data_dir: Path) -> None:
    run_job(sim.rest_url, data_dir, "funding")
    again = run_job(sim.rest_url, data_dir, "funding")
    assert (again.rows, again.pages, again.files) == (0, 0, 0)
    assert again.requests == 1  # /quote/contracts only


def test_the_still_open_bar_is_never_stored(sim: Any, data_dir: Path) -> None:
    from backfill.job import Job, Request
    from backfill.progress import LogReporter
    from backfill.series import SERIES
    from exchange.rest import RestClient
    from storage.lake import Lake
    from storage.state import State
    from tests.backfill.conftest import FAST

    now_ms = int(__import__("time").time() * 1000)
    request = Request(SERIES["klines"], ["BTC-USDT"], ("1h",), now_ms - 5 * 3_600_000, None)
    with RestClient(sim.rest_url, limiter=Limiter(FAST)) as client:
        Job(client, Lake(data_dir / "lake"), State(data_dir / "state"), reporter=LogReporter()).run(request)
    opens = [row[1] for row in query(data_dir, KLINES_SQL.format(view="klines", interval="1h"))]
    assert opens and max(opens) + 3_600_000 <= now_ms
    assert max(opens) + 2 * 3_600_000 > now_ms - 5_000  # the last closed hour is there


def test_two_jobs_at_once_on_the_same_lake_write_each_fact_once(sim: Any, data_dir: Path) -> None:
    errors: list[BaseException] = []

    def job() -> None:
        try:
            run_job(sim.rest_url, data_dir, "klines", ("1m",))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=job) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert query(data_dir, KLINES_SQL.format(view="klines", interval="1m")) == true_bars(
        sim.market, "klines", "1m"
    )
    raw = query(data_dir, f"SELECT count(*) FROM read_parquet('{data_dir}/lake/klines/**/*.parquet')")
    assert raw == [(3 * 3 * 1440,)]  # not one bar written twice


def test_injected_5xx_and_timeouts_are_retried_to_an_exact_result(sim: Any, data_dir: Path) -> None:
    sim.rest.faults.fail_next(3, status=503)
    sim.rest.faults.slow_next(2, seconds=1.0)
    summary = run_job(sim.rest_url, data_dir, "funding", timeout_s=0.3)
    assert summary.retries >= 5
    assert query(data_dir, FUNDING_SQL) == true_funding(sim.market)


def test_an_injected_418_stops_the_job_with_banned(sim: Any, data_dir: Path) -> None:
    klines = "/openApi/swap/v3/quote/klines"
    sim.rest.faults.ban_next(1, path=klines)
    before = len(sim.rest.ledger.for_path(klines))
    with pytest.raises(Banned):
        run_job(sim.rest_url, data_dir, "klines", ("1m",))
    assert sim.rest.ledger.banned >= 1
    assert len(sim.rest.ledger.for_path(klines)) - before < 15  # stopped: a full run takes 15 pages


def test_a_small_budget_is_never_exceeded(data_dir: Path) -> None:
    from simulator import Simulator

    with Simulator(symbols=SYMBOLS, seed=5, trades_per_second=0.02, budget=20, window_ms=1000) as sim:
        limiter = Limiter((Budget("simulator", 20, 1.0),))
        assert sim.rest_url is not None
        summary = run_job(sim.rest_url, data_dir, "klines", ("1m",), limiter=limiter)
        assert summary.requests >= 16
        assert summary.throttled == 0
        assert sim.rest.ledger.throttled == 0


class FailAfter:
    """A reporter that breaks the exchange after `batches` written batches: an interruption at a page."""

    def __init__(self, sim: Any, batches: int) -> None:
        self.sim, self.left = sim, batches

    def start(self, label: str, total_ms: int) -> None: ...

    def finish(self, label: str) -> None: ...

    def advance(self, label: str, done_ms: int, rows: int, pages: int) -> None:
        self.left -= 1
        if self.left == 0:
            self.sim.rest.faults.fail_next(10_000, status=503)


def test_trades_interrupted_at_random_pages_resume_to_exactly_the_truth(sim: Any, data_dir: Path) -> None:
    from backfill.job import Job, Request
    from backfill.series import SERIES
    from exchange.errors import RetryableError
    from exchange.rest import RestClient
    from storage.lake import Lake
    from storage.state import State
    from tests.backfill.conftest import FAST, no_sleep

    request = Request(SERIES["trades"], SYMBOLS, (), SINCE_MS, UNTIL_MS)
    for batches in (1, 7, 30):
        with RestClient(sim.rest_url, limiter=Limiter(FAST), attempts=1, sleep=no_sleep) as client:
            job = Job(client, Lake(data_dir / "lake"), State(data_dir / "state"), flush_rows=100)
            job.reporter = FailAfter(sim, batches)
            with pytest.raises(RetryableError):
                job.run(request)
        sim.rest.faults.clear()
    run_job(sim.rest_url, data_dir, "trades")
    assert query(data_dir, TRADES_SQL) == true_trades(sim.market)
    raw = query(data_dir, f"SELECT count(*) FROM read_parquet('{data_dir}/lake/trades/**/*.parquet')")
    assert raw == [(len(true_trades(sim.market)),)]


def test_every_long_interval_stores_exactly_the_closed_bars(sim: Any, data_dir: Path) -> None:
    import time
    from datetime import UTC, datetime

    from backfill.job import Job, Request
    from backfill.series import INTERVAL_MS, SERIES
    from exchange.rest import RestClient
    from storage.lake import Lake
    from storage.state import State
    from tests.backfill.conftest import DAY_MS, FAST, TODAY_MS

    def closes_ms(interval: str, open_ms: int) -> int:
        if interval != "1M":
            return open_ms + INTERVAL_MS[interval]
        opened = datetime.fromtimestamp(open_ms / 1000, tz=UTC)
        following = datetime(opened.year + opened.month // 12, opened.month % 12 + 1, 1, tzinfo=UTC)
        return int(following.timestamp() * 1000)

    intervals = ("2h", "8h", "12h", "1d", "3d", "1w", "1M")
    since = TODAY_MS - 150 * DAY_MS
    request = Request(SERIES["klines"], ["ETH-USDT"], intervals, since, None)
    now_ms = int(time.time() * 1000)
    with RestClient(sim.rest_url, limiter=Limiter(FAST)) as client:
        Job(client, Lake(data_dir / "lake"), State(data_dir / "state")).run(request)
    for interval in intervals:
        stored = [row[1:] for row in query(data_dir, KLINES_SQL.format(view="klines", interval=interval))]
        truth = [
            (b.open_ms, float(b.open), float(b.high), float(b.low), float(b.close), float(b.volume))
            for b in sim.market.klines("ETH-USDT", interval, since, now_ms)
            if closes_ms(interval, b.open_ms) <= now_ms - 5_000
        ]
        assert stored == truth, interval
        assert stored, interval


def test_listing_times_come_from_the_contracts_converter(sim: Any) -> None:
    from backfill.contracts import listings
    from exchange.rest import RestClient

    with RestClient(sim.rest_url) as client:
        assert listings(client) == dict.fromkeys(SYMBOLS, sim.market.listed_ms)
