"""Healing against the simulator: the window filled to the truth, idempotent, crash-safe, beyond history."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from backfill.heal import Healer, HealSummary, plan
from cli import main
from exchange.ratelimit import Limiter
from exchange.rest import RestClient
from simulator import Simulator
from simulator.endpoints import Options
from storage.gaps import outages
from storage.lake import Lake
from storage.state import State
from storage.views import connect
from tests.backfill.conftest import FAST, no_sleep
from tests.backfill.recording import MINUTE_MS, Recording, record, truth_trades

ROOT = Path(__file__).parents[2]
SYMBOLS = ("BTC-USDT", "ETH-USDT")
NOW_MS = int(time.time() * 1000) // MINUTE_MS * MINUTE_MS
START_MS = NOW_MS - 30 * MINUTE_MS
END_MS = NOW_MS - 5 * MINUTE_MS
GAP = (START_MS + 5 * MINUTE_MS + 12_345, START_MS + 20 * MINUTE_MS + 6_789)
RECORDING = Recording(SYMBOLS, START_MS, END_MS, GAP)


def heal(sim: Simulator, data_dir: Path) -> HealSummary:
    with connect(data_dir / "lake") as con:
        found = outages(con)
    with RestClient(str(sim.rest_url), limiter=Limiter(FAST), sleep=no_sleep) as client:
        healer = Healer(client, Lake(data_dir / "lake"), State(data_dir / "state"))
        return healer.run(plan(found, ("trades", "klines")))


def view_trades(data_dir: Path, symbol: str) -> list[tuple[Any, ...]]:
    with connect(data_dir / "lake") as con:
        rows = con.execute(
            "SELECT epoch_ms(trade_time), price, qty, is_buyer_maker FROM trades WHERE symbol = ? "
            "AND epoch_ms(trade_time) BETWEEN ? AND ? ORDER BY ALL",
            [symbol, START_MS, END_MS - 1],
        ).fetchall()
    return rows


def coverage(data_dir: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--data-dir", str(data_dir), "coverage", *args])


@pytest.fixture
def sim() -> Any:
    with Simulator(symbols=SYMBOLS, seed=5, trades_per_second=3.0) as running:
        yield running


def test_heal_fills_the_window_to_the_truth_and_a_rerun_writes_nothing(
    sim: Simulator, tmp_path: Path
) -> None:
    record(Lake(tmp_path / "lake"), sim.market, RECORDING)
    first = heal(sim, tmp_path)
    assert first.rows > 0 and first.waiting == 0
    for symbol in SYMBOLS:
        assert view_trades(tmp_path, symbol) == truth_trades(sim.market, symbol, START_MS, END_MS)
    assert heal(sim, tmp_path).rows == 0


def test_coverage_exits_3_while_a_healable_gap_is_open_and_0_once_healed(
    sim: Simulator, tmp_path: Path
) -> None:
    record(Lake(tmp_path / "lake"), sim.market, RECORDING)
    before = coverage(tmp_path, "--format", "json", "--max-gap", "0")
    assert before.exit_code == 3, before.output
    classes = {(g["channel"], g["class"]) for g in json.loads(before.output)["gaps"]}
    assert classes == {("trade", "open"), ("kline_1m", "open"), ("depth20@500ms", "unhealable")}
    heal(sim, tmp_path)
    after = coverage(tmp_path, "--format", "json", "--max-gap", "0")
    assert after.exit_code == 0, after.output
    classes = {(g["channel"], g["class"]) for g in json.loads(after.output)["gaps"]}
    assert classes == {("trade", "healed"), ("kline_1m", "healed"), ("depth20@500ms", "unhealable")}
    assert coverage(tmp_path, "--max-gap", "0", "--fail-on", "unhealable").exit_code == 3


def test_a_window_older_than_the_trade_history_is_beyond_history(tmp_path: Path) -> None:
    options = Options(trade_history_ms=3 * MINUTE_MS)  # everything recorded is older than that
    with Simulator(symbols=SYMBOLS, seed=5, trades_per_second=3.0, options=options) as sim:
        record(Lake(tmp_path / "lake"), sim.market, RECORDING)
        summary = heal(sim, tmp_path)
    assert summary.beyond_history == len(SYMBOLS)
    report = json.loads(coverage(tmp_path, "--format", "json").output)
    assert {g["class"] for g in report["gaps"] if g["channel"] == "trade"} == {"beyond_history"}
    with connect(tmp_path / "lake") as con:
        assert con.sql("SELECT count(*) FROM trades WHERE source = 'backfill'").fetchall() == [(0,)]


@pytest.mark.slow
def test_heal_killed_at_random_moments_then_rerun_gives_the_identical_result(
    sim: Simulator, tmp_path: Path
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    for data_dir in (whole, killed):
        record(Lake(data_dir / "lake"), sim.market, RECORDING)
    assert _heal_process(sim, whole).wait(60) == 0
    for _ in range(3):
        child = _heal_process(sim, killed)
        time.sleep(rng.uniform(0.8, 2.5))
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert _heal_process(sim, killed).wait(60) == 0
    for symbol in SYMBOLS:
        assert view_trades(killed, symbol) == view_trades(whole, symbol), f"seed {seed}"
        assert view_trades(killed, symbol) == truth_trades(sim.market, symbol, START_MS, END_MS), (
            f"seed {seed}"
        )
    again = subprocess.run(_heal_argv(sim, killed), capture_output=True, text=True, env=_env(), cwd=ROOT)
    assert ", 0 rows written" in again.stdout, (seed, again.stdout, again.stderr)


def _heal_argv(sim: Simulator, data_dir: Path) -> list[str]:
    argv = [sys.executable, "-m", "cli", "--data-dir", str(data_dir), "--rest-url", str(sim.rest_url)]
    return [*argv, "--log-level", "WARNING", "heal", "--datasets", "trades,klines"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _heal_process(sim: Simulator, data_dir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(_heal_argv(sim, data_dir), env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL)


def _backfill(sim: Simulator, data_dir: Path) -> None:
    from backfill.job import Job, Request
    from backfill.series import SERIES

    with RestClient(str(sim.rest_url), limiter=Limiter(FAST), sleep=no_sleep) as client:
        job = Job(client, Lake(data_dir / "lake"), State(data_dir / "state"))
        job.run(Request(SERIES["trades"], list(SYMBOLS), (), START_MS, END_MS))
        job.run(Request(SERIES["klines"], list(SYMBOLS), ("1m",), START_MS, END_MS))


def test_parity_is_100_percent_on_a_span_recorded_and_backfilled_and_less_once_a_trade_is_altered(
    sim: Simulator, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    lake = Lake(tmp_path / "lake")
    record(lake, sim.market, RECORDING)
    _backfill(sim, tmp_path)
    result = json.loads(coverage(tmp_path, "--parity", "--format", "json").output)
    assert result["trades"]["share"] == 1.0 and result["trades"]["stream"] > 1000
    assert result["bars"]["share"] == 1.0 and result["bars"]["stream"] >= 10
    stream_file = next(
        path for path in lake.files("trades") if "/stream-" in path or "stream-" in Path(path).name
    )
    table = pq.read_table(stream_file)
    prices = table["price"].to_pylist()
    prices[len(prices) // 10] += 0.5  # one fill altered on purpose (a minute in: far from the outage)
    pq.write_table(table.set_column(table.schema.get_field_index("price"), "price", [prices]), stream_file)
    altered = json.loads(coverage(tmp_path, "--parity", "--format", "json").output)
    assert altered["trades"]["matched"] == result["trades"]["matched"] - 1
    assert 0.99 < altered["trades"]["share"] < 1.0


def test_a_silence_that_rest_agrees_was_quiet_is_classified_quiet(tmp_path: Path) -> None:
    silent = (START_MS + 22 * MINUTE_MS, START_MS + 24 * MINUTE_MS)  # two minutes without a trade frame
    with Simulator(symbols=SYMBOLS, seed=5, trades_per_second=1e-6) as sim:  # nothing trades
        record(Lake(tmp_path / "lake"), sim.market, Recording(SYMBOLS, START_MS, END_MS, GAP, silent))
        heal(sim, tmp_path)
    gaps = json.loads(coverage(tmp_path, "--format", "json").output)["gaps"]
    trade = sorted((g["class"], g["cause"]) for g in gaps if g["channel"] == "trade")
    assert trade == sorted([("healed", "disconnect"), ("quiet", "silence")] * len(SYMBOLS)), trade


def test_gaps_while_the_contract_was_paused_are_not_listed(sim: Simulator, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from schemas import DATASETS

    lake = Lake(tmp_path / "lake")
    record(lake, sim.market, RECORDING)
    sim.market.pause(SYMBOLS[0])
    rows = DATASETS["contracts"].from_rest({"code": 0, "data": [sim.market.contract(SYMBOLS[0])]}, {})  # type: ignore[misc]
    paused_at = datetime.fromtimestamp((GAP[0] - 1000) / 1000, UTC)
    lake.write(DATASETS["contracts"], [{**row, "received_at": paused_at, "source": "poll"} for row in rows])
    gaps = json.loads(coverage(tmp_path, "--format", "json").output)["gaps"]
    assert {g["class"] for g in gaps if g["symbol"] == SYMBOLS[0]} == {"not_listed"}
    assert {g["class"] for g in gaps if g["symbol"] == SYMBOLS[1]} == {"open", "unhealable"}
