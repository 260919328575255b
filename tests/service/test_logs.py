"""`--log-format json` reaches every process: the command's lines and its converter child's parse as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulator import Simulator

ROOT = Path(__file__).parents[2]
SECRET = "never-in-a-log-0123456789"


def _cli(sim: Simulator, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "cli", "--data-dir", str(data_dir), "--ws-url", sim.ws_url]
    argv += ["--rest-url", str(sim.rest_url), "--log-format", "json", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BINGX_API_SECRET": SECRET}
    return subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def _lines(stderr: str) -> list[dict[str, str]]:
    lines = [json.loads(line) for line in stderr.splitlines()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines), lines
    assert SECRET not in stderr
    return lines


@pytest.mark.slow
def test_record_and_its_converter_process_log_json_lines(tmp_path: Path) -> None:
    with Simulator(symbols=["BTC-USDT"], seed=3, trades_per_second=5.0) as sim:
        done = _cli(
            sim, tmp_path, "record", "--symbols", "BTC-USDT", "--channels", "trade", "--duration", "3"
        )
        done.check_returncode()
        polled = _cli(sim, tmp_path, "--log-level", "DEBUG", "poll", "contracts")
        polled.check_returncode()
    loggers = {line["logger"] for line in _lines(done.stderr)}
    assert {"recorder.runner", "__main__"} <= loggers, loggers  # __main__: python -m recorder.process
    assert any(line["logger"] == "poll" for line in _lines(polled.stderr)), polled.stderr
