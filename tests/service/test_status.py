"""`bingx-recorder status` from the status file (a live or gone process) and from --url; --metrics errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from cli import main
from service.metrics import serve
from service.status import SERVICE, STATUS, write_file


def status_document(pid: int, written_ago_s: float = 0.5) -> dict[str, Any]:
    now = time.time()
    return {
        "version": 1,
        "process": "record",
        "pid": pid,
        "started_at": now - 600,
        "written_at": now - written_ago_s,
        "connections": [{"name": "r-00", "connected": True, "reconnects": 2, "silences": 1, "refusals": 0}],
        "topics": {
            "BTC-USDT@trade": {"channel": "trade", "frames": 90, "last_frame_at": now - 2, "lag_s": 0.04},
            "BTC-USDT@depth20@500ms": {"channel": "depth20@500ms", "frames": 1200, "last_frame_at": now - 30},
        },
        "channels": {
            "trade": {"topics": 1, "frames": 90, "lag_s": 0.04, "rate": 1.5},
            "depth20@500ms": {"topics": 1, "frames": 1200, "lag_s": None, "rate": 0.0},
        },
        "journal": {"backlog_bytes": 3 << 20, "backlog_s": 4.0},
        "datasets": {"trades": {"rows": {"stream": 270, "heal": 12}, "last_written_at": now - 20}},
        "heal": {"passes": 9, "rows": 12, "failures": 0, "last_at": now - 50, "last_rows": 12},
        "compaction": {"rounds": 1, "rows": 5000, "files_removed": 40, "failures": 0, "last_at": now - 300},
        "rest": {
            "requests": {"market": 31},
            "throttled": {"market": 1},
            "budget_used": {"market group": 0.12},
        },
    }


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def gone_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid  # exited and reaped: no such process (a reuse this soon is not plausible)


def test_status_draws_one_screen_from_the_status_file_and_the_services(tmp_path: Path) -> None:
    write_file(tmp_path / STATUS, status_document(os.getpid()))
    write_file(
        tmp_path / SERVICE, {"state": "running", "parts": {"record": {"pid": 7, "restarts": 1}}, "x": [1]}
    )
    result = invoke("--data-dir", str(tmp_path), "status")
    assert result.exit_code == 0, result.output
    screen = result.output
    assert "STALE" not in screen
    assert "connections: 1/1 up, 2 topics (1 stale); reconnects 2, silences 1" in screen
    assert "stale: BTC-USDT@depth20@500ms" in screen
    assert "journal backlog: 3.0 MiB, 4 s" in screen
    assert "trades" in screen and "heal 12, stream 270" in screen
    assert (
        "heal: 9 passes, 12 rows" in screen and "compaction: 1 rounds, 5000 rows, 40 files removed" in screen
    )
    assert "rest: market 31 (1 throttled); budget used: market group 12%" in screen
    assert "parts: name=record, pid=7, restarts=1" in screen and "state: running" in screen


def test_status_says_when_the_process_behind_the_file_is_gone_or_stuck(tmp_path: Path) -> None:
    write_file(tmp_path / STATUS, status_document(gone_pid()))
    assert "STALE: that process is gone" in invoke("--data-dir", str(tmp_path), "status").output
    write_file(tmp_path / STATUS, status_document(os.getpid(), written_ago_s=60))
    assert "STALE: not updated for 60 s" in invoke("--data-dir", str(tmp_path), "status").output


def test_status_reads_a_running_process_over_its_url(tmp_path: Path) -> None:
    document = status_document(os.getpid())
    server = serve("127.0.0.1:0", tmp_path, document=lambda: document)
    try:
        result = invoke(
            "--data-dir", str(tmp_path / "elsewhere"), "status", "--url", f"http://{server.address}"
        )
        assert result.exit_code == 0, result.output
        assert f"status from http://{server.address}" in result.output
        assert "trade" in result.output and "1.5" in result.output
        as_json = invoke("status", "--url", f"http://{server.address}/metrics", "--json")
        assert '"backlog_bytes": 3145728' in as_json.output
    finally:
        server.close()


def test_status_without_a_file_or_server_is_one_line(tmp_path: Path) -> None:
    for args in (
        ("--data-dir", str(tmp_path), "status"),
        ("status", "--url", f"http://127.0.0.1:{free_port()}"),
    ):
        result = invoke(*args)
        assert result.exit_code == 1 and result.output.count("\n") == 1, result.output


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_bad_or_taken_metrics_address_is_one_line_and_exit_1(tmp_path: Path) -> None:
    record = ("--data-dir", str(tmp_path), "--rest-url", "http://127.0.0.1:9", "record")
    record += ("--symbols", "BTC-USDT", "--channels", "trade", "--metrics")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args in (
            (*record, "nonsense"),
            (*record, "127.0.0.1:99999"),
            (*record, f"127.0.0.1:{port}"),
            ("--data-dir", str(tmp_path), "poll", "contracts", "--metrics", f"127.0.0.1:{port}"),
        ):
            result = invoke(*args)
            assert result.exit_code == 1, result.output
            assert result.output.count("\n") == 1 and "--metrics" in result.output, result.output
    assert "expected HOST:PORT" in invoke(*record, "nonsense").output


def test_record_writes_its_status_file_with_metrics_off(tmp_path: Path) -> None:
    from service.status import read
    from service.watch import Watch
    from simulator import Simulator
    from tests.recorder.conftest import FAST, options, recording, wait_for

    with Simulator(symbols=["BTC-USDT"], **FAST) as sim:  # type: ignore[arg-type]
        watch = Watch(tmp_path, None, "record")
        assert watch.exporter is None and watch.server is None  # nothing Prometheus without --metrics
        with recording(tmp_path, options(sim, ["BTC-USDT"], ["depth20@500ms"])) as recorder:
            observer = watch.observe_recorder(recorder)
            wait_for(
                lambda: (
                    ((read(tmp_path) or {}).get("topics") or {})
                    .get("BTC-USDT@depth20@500ms", {})
                    .get("frames", 0)
                    > 2
                )
            )
            observer.stop()
        watch.close()
    document = read(tmp_path)
    assert document is not None and document["pid"] == os.getpid() and "metrics_url" not in document
    assert document["connections"][0]["frames"] > 2
