"""`bingx-recorder simulate` as a real process: prints URLs, serves HTTP and WebSocket, exits 0 on SIGINT."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import requests
import websocket
from click.testing import CliRunner

from cli import main

ROOT = Path(__file__).parent.parent


def test_simulate_prints_urls_serves_both_protocols_and_stops_on_sigint() -> None:
    command = [sys.executable, "-m", "cli", "simulate", "--symbols", "BTC-USDT", "--admin-port", "0"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    started = time.monotonic()
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        export = process.stdout.readline()
        startup_s = time.monotonic() - started
        notes = process.stdout.readline() + process.stdout.readline()
        found = re.fullmatch(r"export BINGX_WS_URL=(\S+) BINGX_REST_URL=(\S+)\n", export)
        assert found, export
        ws_url, rest_url = found.groups()
        body = requests.get(f"{rest_url}/openApi/swap/v2/server/time", timeout=5).json()
        assert body["code"] == 0
        client = websocket.create_connection(ws_url, timeout=5)
        try:
            client.send(json.dumps({"id": "1", "reqType": "sub", "dataType": "BTC-USDT@markPrice"}))
            frame = client.recv()
            assert isinstance(frame, bytes), "every server frame must be binary"
            ack = json.loads(zlib.decompress(frame, 31))
            assert ack == {"id": "1", "code": 0, "msg": "", "dataType": "", "data": None}
        finally:
            client.close()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "/faults/drop" in notes
    print(f"simulate printed its URLs {startup_s:.2f}s after launch")  # the acceptance wants < 2 s


def test_simulate_help_has_a_worked_example() -> None:
    result = CliRunner().invoke(main, ["simulate", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "export BINGX_WS_URL=" in result.output
