"""SeriesLock: one holder per series, released on exit even on an error; a dead owner's lock is taken over."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backfill.lock import SeriesLock


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_first_holder_gets_the_lock_and_its_pid_is_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "klines.BTC-USDT.1m.lock"
    with SeriesLock(path) as lock:
        assert lock.acquired is True
        assert path.read_text() == str(os.getpid())


def test_a_second_holder_is_refused_and_told_the_owner(tmp_path: Path) -> None:
    path = tmp_path / "series.lock"
    with SeriesLock(path) as first, SeriesLock(path) as second:
        assert (first.acquired, second.acquired) == (True, False)
        assert second.owner == os.getpid()
    assert not path.exists()  # the refused one did not remove the holder's file


def test_the_lock_is_released_on_exit_and_can_be_taken_again(tmp_path: Path) -> None:
    path = tmp_path / "series.lock"
    with SeriesLock(path) as lock:
        pass
    assert lock.acquired is False
    assert not path.exists()
    with SeriesLock(path) as again:
        assert again.acquired is True


def test_the_lock_is_released_when_the_walk_raises(tmp_path: Path) -> None:
    path = tmp_path / "series.lock"
    with pytest.raises(OSError, match="disk full"), SeriesLock(path):
        raise OSError("disk full")
    assert not path.exists()


def test_a_lock_whose_owner_is_dead_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "series.lock"
    path.write_text(str(dead_pid()))
    with SeriesLock(path) as lock:
        assert lock.acquired is True
        assert path.read_text() == str(os.getpid())
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no .stale-<pid> file left behind


def test_a_lock_held_by_a_live_process_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "series.lock"
    with subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    ) as other:
        try:
            path.write_text(str(other.pid))
            with SeriesLock(path) as lock:
                assert (lock.acquired, lock.owner) == (False, other.pid)
            assert path.read_text() == str(other.pid)
        finally:
            assert other.stdin is not None
            other.stdin.close()


def test_a_fresh_empty_lock_is_being_written_and_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "series.lock"
    path.write_text("")
    with SeriesLock(path) as lock:
        assert (lock.acquired, lock.owner) == (False, None)
    assert path.exists()


def test_an_empty_lock_older_than_30_seconds_was_abandoned_and_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "series.lock"
    path.write_text("")
    old = time.time() - 31
    os.utime(path, (old, old))
    with SeriesLock(path) as lock:
        assert lock.acquired is True
        assert path.read_text() == str(os.getpid())
