"""`bingx-recorder backfill` and `poll` as a user runs them: real processes, kill -9, one-line errors."""

from __future__ import annotations

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

from cli import main
from tests.backfill.conftest import SINCE_MS, SYMBOLS, UNTIL_MS, lake_files, query

ROOT = Path(__file__).resolve().parents[2]
KLINES_SQL = "SELECT symbol, epoch_ms(open_time), open, close, volume FROM klines WHERE \"interval\" = '1m'"


def command(rest_url: str, data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "cli", "--data-dir", str(data_dir), "--rest-url", rest_url, *args]


def klines_command(rest_url: str, data_dir: Path) -> list[str]:
    window = ["--since", str(SINCE_MS), "--until", str(UNTIL_MS)]
    # --flush-rows 500: every page (999 bars) is its own write, so a kill can land between any two pages
    return command(
        rest_url,
        data_dir,
        "backfill",
        "klines",
        "--symbols",
        ",".join(SYMBOLS),
        *window,
        "--flush-rows",
        "500",
    )


def start(argv: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def kill_after_new_files(process: subprocess.Popen[bytes], data_dir: Path, files: int) -> bool:
    """SIGKILL the process once `files` more lake files exist; False if it finished first."""
    before = len(lake_files(data_dir)) if (data_dir / "lake").exists() else 0
    while process.poll() is None:
        if (data_dir / "lake").exists() and len(lake_files(data_dir)) >= before + files:
            process.send_signal(signal.SIGKILL)
            process.communicate()
            return True
        time.sleep(0.005)
    process.communicate()
    return False


def test_killed_at_random_pages_then_rerun_gives_exactly_the_uninterrupted_result(
    sim: Any, tmp_path: Path
) -> None:
    rng = random.Random(11)
    argv = klines_command(sim.rest_url, tmp_path)
    kills = 0
    while kills < 10 and kill_after_new_files(start(argv), tmp_path, rng.randint(1, 2)):
        kills += 1
    assert kills >= 5  # most runs were killed mid-way, between two random pages
    finished = start(argv)
    out, err = finished.communicate(timeout=60)
    assert finished.returncode == 0, err.decode()
    truth = sorted(
        (s, b.open_ms, float(b.open), float(b.close), float(b.volume))
        for s in SYMBOLS
        for b in sim.market.klines(s, "1m", SINCE_MS, UNTIL_MS)
    )
    assert sorted(query(tmp_path, KLINES_SQL)) == truth
    raw = query(tmp_path, f"SELECT count(*) FROM read_parquet('{tmp_path}/lake/klines/**/*.parquet')")
    assert raw == [(len(truth),)]  # not even the batch in flight at a kill was written twice
    before = lake_files(tmp_path)
    again = start(argv)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err.decode()
    assert lake_files(tmp_path) == before
    assert "0 rows written in 0 files" in out.decode()


def test_an_injected_418_exits_non_zero_with_one_line(sim: Any, tmp_path: Path) -> None:
    sim.rest.faults.ban_next(50, path="/openApi/swap/v3/quote/klines")
    try:
        process = start(klines_command(sim.rest_url, tmp_path))
        _, err = process.communicate(timeout=60)
    finally:
        sim.rest.faults.clear()
    assert process.returncode == 1
    lines = [line for line in err.decode().splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "418" in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--symbols", "NOPE-USDT"], "Error: unknown symbol(s) NOPE-USDT: not in /quote/contracts"),
        (["--symbols", "BTC-USDT", "--interval", "2m"], "Error: unknown interval 2m: choose from 1m"),
        (
            ["--symbols", "BTC-USDT", "--since", "2024-06-02", "--until", "2024-06-01"],
            "is not before --until",
        ),
        (["--symbols", "BTC-USDT", "--since", "June"], "Error: --since 'June': expected YYYY-MM-DD"),
    ],
)
def test_bad_arguments_give_one_line_errors(sim: Any, tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(
        main, ["--data-dir", str(tmp_path), "--rest-url", sim.rest_url, "backfill", "klines", *args]
    )
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_poll_writes_each_snapshot_with_source_poll(sim: Any, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path), "--rest-url", sim.rest_url, "poll"]
    for snapshot, view in [
        ("contracts", "contracts"),
        ("premium-index", "premium_index"),
        ("open-interest", "open_interest"),
        ("tickers", "tickers"),
        ("depth", "depth_snapshots"),
        ("book-tickers", "book_tickers"),
        ("prices", "last_prices"),
    ]:
        result = runner.invoke(
            main, [*base, snapshot, "--symbols", "BTC-USDT,ETH-USDT", "--every", "0.1", "--count", "2"]
        )
        assert result.exit_code == 0, result.output
        rows = query(tmp_path, f"SELECT symbol, source, count(*) FROM {view} GROUP BY ALL ORDER BY 1")
        assert [row[:2] for row in rows] == [("BTC-USDT", "poll"), ("ETH-USDT", "poll")], view
        assert all(row[2] >= 1 for row in rows), view


def test_poll_takes_a_dataset_name_as_well_as_its_short_alias(sim: Any, tmp_path: Path) -> None:
    base = ["--data-dir", str(tmp_path), "--rest-url", sim.rest_url, "poll"]
    result = CliRunner().invoke(main, [*base, "last_prices", "--symbols", "BTC-USDT"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("poll prices:"), result.output
    assert query(tmp_path, "SELECT symbol, source FROM last_prices") == [("BTC-USDT", "poll")]


def test_poll_stops_cleanly_on_sigterm(sim: Any, tmp_path: Path) -> None:
    process = start(command(sim.rest_url, tmp_path, "poll", "prices", "--every", "0.2"))
    deadline = time.monotonic() + 30
    while not (tmp_path / "lake" / "last_prices").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err.decode()
    assert out.decode().startswith("poll prices:")
