"""Multiprocess mode (what `run` uses): two real child processes feed their metrics, one server sums them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from service.metrics import forget, serve
from tests.service.test_metrics import scrape

ROOT = Path(__file__).parents[2]

CHILD = textwrap.dedent(
    """
    import sys, time
    from service.metrics import Exporter

    frames = int(sys.argv[1])
    document = {
        "channels": {"trade": {"frames": frames}},
        "datasets": {"trades": {"rows": {"stream": 3 * frames}}},
        "connections": [{"reconnects": 1, "refusals": 0, "silences": 0, "connected": True}],
        "topics": {},
        "bytes_received": 10 * frames,
        "journal": {"backlog_bytes": 100 * frames, "backlog_s": float(frames)},
    }
    exporter = Exporter()
    exporter.update(document, time.time())
    document["channels"]["trade"]["frames"] += 1  # a second update adds only the growth
    exporter.update(document, time.time())
    print("ready", flush=True)
    sys.stdin.read()  # stay alive (its live gauges count) until the test closes our stdin
    """
)


def child(directory: Path, frames: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(frames)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def test_one_server_sums_the_metrics_of_two_child_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    children = [child(directory, 5), child(directory, 7)]
    server = serve("127.0.0.1:0", tmp_path, multiprocess=True)
    try:
        url = f"http://{server.address}"
        samples = scrape(url)
        assert samples["bingx_recorder_frames_received_total"] == {(("channel", "trade"),): 6 + 8}
        assert samples["bingx_recorder_rows_written_total"] == {
            (("dataset", "trades"), ("source", "stream")): 36
        }
        assert samples["bingx_recorder_reconnects_total"] == {(): 2}
        assert samples["bingx_recorder_connections_up"] == {(): 2}  # livesum: both alive
        assert samples["bingx_recorder_journal_backlog_bytes"] == {(): 1200}
        assert samples["bingx_recorder_journal_backlog_seconds"] == {(): 7}  # livemax

        for process in children:
            assert process.stdin is not None
            process.stdin.close()
            assert process.wait(10) == 0
            forget(process.pid)
        samples = scrape(url)
        assert samples["bingx_recorder_frames_received_total"] == {
            (("channel", "trade"),): 14
        }  # counters stay
        assert not samples.get("bingx_recorder_connections_up")  # a dead child's live gauges go
    finally:
        server.close()
        for process in children:
            process.kill()
            process.wait()
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()
