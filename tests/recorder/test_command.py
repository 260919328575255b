"""`bingx-recorder record`: one-line errors for bad arguments, config files, clean exit on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from simulator import Simulator
from tests.recorder.conftest import query, wait_for

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(symbols=["BTC-USDT", "ETH-USDT"], seed=9, ping_interval_s=0.5) as sim:
        yield sim


def _invoke(sim: Simulator, tmp_path: Path, *args: str) -> tuple[int, str]:
    urls = ["--data-dir", str(tmp_path), "--ws-url", sim.ws_url, "--rest-url", str(sim.rest_url)]
    result = CliRunner().invoke(main, [*urls, "record", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--symbols", "BTC-USDT", "--channels", "trade,nope"], "Error: unknown channel 'nope'"),
        (["--symbols", "BTC-USDT", "--channels", "depth7"], "Error: unknown channel 'depth7'"),
        (["--symbols", "BTC-USDT,NOPE-USDT", "--channels", "trade"], "Error: unknown symbol(s) NOPE-USDT"),
        (["--channels", "trade"], "Error: record needs --symbols and --channels"),
        (
            ["--symbols", "BTC-USDT", "--channels", "trade", "--topics-per-connection", "201"],
            "Error: topics per connection must be 1..200",
        ),
        (
            ["--symbols", "BTC-USDT", "--channels", "trade", "--lake-interval", "0"],
            "Error: lake interval must be in (0, 3600] seconds, got 0",
        ),
    ],
)
def test_bad_arguments_exit_1_with_one_line(
    sim: Simulator, tmp_path: Path, args: list[str], message: str
) -> None:
    code, output = _invoke(sim, tmp_path, *args)
    assert code == 1
    assert output.startswith(message) and output.count("\n") == 1, output
    assert not (tmp_path / "journal").exists()  # nothing started


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('symbols = "BTC-USDT"\nchannels = [trade', "not valid TOML"),
        ('symbols = "BTC-USDT"\nchanels = ["trade"]', "unknown key 'chanels'"),
        ('symbols = "BTC-USDT"\nchannels = ["trade"]\nduration = "soon"', "duration must be a float"),
    ],
)
def test_a_bad_config_file_is_one_line(sim: Simulator, tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "record.toml"
    config.write_text(text)
    code, output = _invoke(sim, tmp_path, "--config", str(config))
    assert code == 1 and message in output and output.count("\n") == 1, output


def test_a_missing_config_file_is_one_line(sim: Simulator, tmp_path: Path) -> None:
    code, output = _invoke(sim, tmp_path, "--config", str(tmp_path / "absent.toml"))
    assert code == 1 and "cannot read it" in output and output.count("\n") == 1, output


@pytest.mark.slow
def test_sigterm_stops_cleanly_with_exit_0_and_config_file_keys_apply(sim: Simulator, tmp_path: Path) -> None:
    config = tmp_path / "record.toml"
    config.write_text('[record]\nsymbols = ["BTC-USDT"]\nchannels = ["bookTicker", "depth5@500ms"]\n')
    argv = [sys.executable, "-m", "cli", "--data-dir", str(tmp_path), "--ws-url", sim.ws_url]
    argv += ["--rest-url", str(sim.rest_url), "record", "--config", str(config)]
    child = subprocess.Popen(argv, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    try:
        wait_for(lambda: sim.ledger.counts.get("BTC-USDT@depth5@500ms", 0) >= 3, 30)
        sent = time.monotonic()
        child.send_signal(signal.SIGTERM)
        assert child.wait(10) == 0
        assert time.monotonic() - sent < 5.0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    depth = query(tmp_path / "lake", "SELECT count(*) AS n FROM depth_snapshots")[0]["n"]
    assert depth >= 3
    events = [r["event"] for r in query(tmp_path / "lake", "SELECT event FROM stream_events ORDER BY seq")]
    assert events[0] == "connect" and events[-1] == "disconnect"
