"""The recorder restarts a converter that dies, with backoff, and ends the run (exit 1, one line) if it keeps
dying, rather than recording on with a lake that stopped updating."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from recorder.connection import event_payload
from recorder.errors import ConverterFailed
from recorder.process import ConverterThread
from recorder.supervision import MAX_RESTART_S, Supervisor
from simulator import Simulator
from storage.journal import EVENT, JournalWriter
from tests.recorder.conftest import wait_for
from tests.recorder.procs import record


class FakeConverter:
    def __init__(self) -> None:
        self.cause: str | None = None
        self.finished = False

    def finish(self, timeout_s: float) -> None:
        self.finished = True

    def death(self) -> str | None:
        return self.cause


def _started(started: list[FakeConverter]) -> FakeConverter:
    started.append(FakeConverter())
    return started[-1]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_dead_converter_is_restarted_only_after_its_backoff() -> None:
    started: list[FakeConverter] = []
    clock = Clock()
    supervisor = Supervisor(lambda: _started(started), clock, max_deaths=3)
    supervisor.check()
    assert len(started) == 1
    started[0].cause = "exit code 1"
    supervisor.check()
    assert supervisor.converter is None and len(started) == 1
    clock.now += MAX_RESTART_S
    supervisor.check()
    assert supervisor.converter is started[1] and supervisor.restarts == 1
    supervisor.finish(1.0)
    assert started[1].finished and not started[0].finished


def test_a_converter_that_keeps_dying_ends_the_run_but_old_deaths_are_forgiven() -> None:
    started: list[FakeConverter] = []
    clock = Clock()
    supervisor = Supervisor(lambda: _started(started), clock, max_deaths=3, window_s=100)

    def die(cause: str) -> None:
        started[-1].cause = cause
        supervisor.check()
        clock.now += MAX_RESTART_S
        supervisor.check()

    die("exit code 1")
    clock.now += 200  # a long healthy life: the first death no longer counts
    die("exit code 1")
    started[-1].cause = "killed by signal 9"
    supervisor.check()  # two deaths within the window: restarted later
    clock.now += MAX_RESTART_S
    supervisor.check()
    started[-1].cause = "exit code 2"
    with pytest.raises(ConverterFailed, match=r"died 3 times within 100 s \(last: exit code 2"):
        supervisor.check()


@pytest.mark.slow
def test_a_journal_archive_that_is_a_file_ends_the_recorder_with_exit_1_and_one_line(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    archive.write_text("a file where a folder should be\n")
    with JournalWriter(tmp_path / "journal") as journal:  # an earlier run's segment: moved at the first seal
        journal.append(time.time_ns() // 1000, "earlier-00", 0, EVENT, event_payload("connect"))
    with Simulator(symbols=["BTC-USDT"], seed=3, trades_per_second=5.0, ping_interval_s=0.5) as sim:
        child = record(
            sim,
            tmp_path,
            ["BTC-USDT"],
            ["trade"],
            *("--journal-archive", str(archive), "--lake-interval", "0.2", "--duration", "40"),
            stderr=subprocess.PIPE,
        )
        _, err = child.communicate(timeout=60)
    lines = err.decode().splitlines()
    assert child.returncode == 1, lines
    assert lines[-1].startswith("Error: the journal converter died 4 times"), lines[-1]
    assert sum("converter died (exit code 1); restarting it" in line for line in lines) == 3, lines
    assert any("FileExistsError" in line for line in lines)  # the cause is there to read


def test_a_converter_thread_that_raised_reports_why(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    archive.write_text("a file\n")
    for run in range(2):  # two segments: the first is moved to the archive at the first seal
        with JournalWriter(tmp_path / "journal") as journal:
            journal.append(time.time_ns() // 1000, f"earlier-{run}", 0, EVENT, event_payload("connect"))
    converter = ConverterThread(tmp_path, archive=archive, seal_interval_s=0.0)
    wait_for(lambda: converter.death() is not None, 20)
    assert (converter.death() or "").startswith("FileExistsError")
