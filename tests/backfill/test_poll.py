"""`poll --every` rides out what the exchange does daily: 5xx runs, a business error, a 418, one bad item."""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backfill.poll import SNAPSHOTS, poll
from exchange.rest import BAN_S, RestClient
from storage.lake import Lake
from tests.backfill.conftest import SYMBOLS, no_sleep, query
from tests.backfill.test_commands import command, start

TICKER = "/openApi/swap/v2/quote/ticker"
PRICE = "/openApi/swap/v1/ticker/price"


@pytest.fixture
def faults(sim: Any) -> Iterator[Any]:
    yield sim.rest.faults
    sim.rest.faults.clear()


def _scheduled(sim: Any, data_dir: Path, rounds: int, waits: list[float]) -> Any:
    """Poll tickers `rounds` times in-process; every wait between rounds is recorded, none is slept."""
    with RestClient(sim.rest_url, sleep=no_sleep, attempts=2) as client:
        return poll(
            client,
            Lake(data_dir / "lake"),
            SNAPSHOTS["tickers"],
            None,
            every_s=1.0,
            count=rounds,
            wait=lambda seconds: waits.append(seconds) is not None,
        )


def _symbols_landed(data_dir: Path) -> list[str]:
    return [row[0] for row in query(data_dir, "SELECT DISTINCT symbol FROM tickers ORDER BY 1")]


def test_a_run_of_5xx_longer_than_the_retries_fails_one_round_and_the_loop_goes_on(
    sim: Any, data_dir: Path, faults: Any, caplog: pytest.LogCaptureFixture
) -> None:
    faults.fail_next(3, status=503, path=TICKER)  # 2 attempts per round: round 1 fails, round 2 retries once
    waits: list[float] = []
    summary = _scheduled(sim, data_dir, 3, waits)
    assert (summary.rounds, summary.failed) == (3, 1)
    assert _symbols_landed(data_dir) == sorted(SYMBOLS)
    assert any(
        "HTTP 503" in record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING
    )


def test_a_business_error_as_http_200_fails_one_round_only(sim: Any, data_dir: Path, faults: Any) -> None:
    faults.error_next(1, code=109500, msg="internal error", path=TICKER)
    summary = _scheduled(sim, data_dir, 2, [])
    assert (summary.rounds, summary.failed) == (2, 1)
    assert _symbols_landed(data_dir) == sorted(SYMBOLS)


def test_a_418_is_waited_out_then_polling_carries_on(
    sim: Any, data_dir: Path, faults: Any, caplog: pytest.LogCaptureFixture
) -> None:
    faults.ban_next(1, path=TICKER)
    waits: list[float] = []
    summary = _scheduled(sim, data_dir, 2, waits)
    assert (summary.rounds, summary.failed) == (2, 1)
    assert waits[0] > BAN_S - 1  # BINGX_API §15: the ban lifts after ~5 minutes; no header says when
    assert _symbols_landed(data_dir) == sorted(SYMBOLS)
    assert any("418" in record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING)


def test_a_percent_sign_in_price_change_percent_parses(sim: Any, data_dir: Path, faults: Any) -> None:
    faults.mangle_next(1, field="priceChangePercent", value="0.31%", index=0, path=TICKER)
    with RestClient(sim.rest_url, sleep=no_sleep) as client:
        summary = poll(client, Lake(data_dir / "lake"), SNAPSHOTS["tickers"], None)
    assert summary.rows == len(SYMBOLS)
    values = [row[0] for row in query(data_dir, "SELECT price_change_percent FROM tickers")]
    assert 0.31 in values


def test_one_bad_item_goes_to_rejects_with_its_reason_and_its_neighbours_land(
    sim: Any, data_dir: Path, faults: Any
) -> None:
    faults.mangle_next(1, field="lastPrice", value="not a price", index=1, path=TICKER)
    with RestClient(sim.rest_url, sleep=no_sleep) as client:
        summary = poll(client, Lake(data_dir / "lake"), SNAPSHOTS["tickers"], None)
    rejects = query(
        data_dir,
        f"SELECT reason, raw FROM read_parquet('{data_dir}/lake/_rejects/tickers/**/*.parquet')",
    )
    assert len(rejects) == 1
    reason, raw = rejects[0]
    bad = json.loads(raw)
    assert bad["lastPrice"] == "not a price"
    assert "lastPrice" in reason or "last price" in reason
    assert summary.rows == len(SYMBOLS) - 1
    assert _symbols_landed(data_dir) == sorted(set(SYMBOLS) - {bad["symbol"]})


@pytest.mark.slow
def test_sigterm_stops_a_scheduled_poll_within_seconds_even_mid_backoff(
    sim: Any, tmp_path: Path, faults: Any
) -> None:
    before = len(sim.rest.ledger.for_path(PRICE))
    faults.fail_next(100, status=503, path=PRICE)  # 8 attempts per round, ~70 s of backoff
    process = start(command(sim.rest_url, tmp_path, "poll", "prices", "--every", "1"))
    try:
        deadline = time.monotonic() + 30
        while len(sim.rest.ledger.for_path(PRICE)) < before + 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGTERM)
        # the backoff left after the third failure is at least 4 + 8 + 15 + 15 s; a stop must cut it short
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err.decode()
    assert out.decode().startswith("poll prices:")


def test_one_symbols_bad_answer_in_a_per_symbol_poll_costs_that_answer_only(
    sim: Any, data_dir: Path, faults: Any
) -> None:
    path = "/openApi/swap/v2/quote/bookTicker"
    faults.mangle_next(1, field="book_ticker", value={"bid_price": "nope"}, index=0, path=path)
    with RestClient(sim.rest_url, sleep=no_sleep) as client:
        summary = poll(client, Lake(data_dir / "lake"), SNAPSHOTS["book-tickers"], SYMBOLS)
    assert (summary.rows, summary.rejected) == (len(SYMBOLS) - 1, 1)
    landed = query(data_dir, "SELECT count(DISTINCT symbol) FROM book_tickers")
    assert landed == [(len(SYMBOLS) - 1,)]
    rejects = query(data_dir, f"SELECT count(*) FROM read_parquet('{data_dir}/lake/_rejects/**/*.parquet')")
    assert rejects == [(1,)]
