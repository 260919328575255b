"""The converter loop on a disk that fills up: it abandons the batch (no hidden file left), says so once,
retries, and once the disk has room lands every journaled record exactly once."""

from __future__ import annotations

import errno
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from recorder.convert import Converter
from recorder.process import convert_until
from tests.recorder.conftest import wait_for
from tests.recorder.procs import partials
from tests.recorder.test_convert import _count, _journal


class FillingDisk(Converter):
    """A converter whose first seals meet a full disk after half of the batch's files appeared."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refusals = 3

    def seal(self) -> None:
        if self._batch is not None and self.refusals:
            self.refusals -= 1
            self._batch.abandon()  # what LakeBatch.close does when a write fails
            self._batch = None
            raise OSError(errno.ENOSPC, "No space left on device")
        super().seal()


def test_a_full_disk_on_the_lake_side_is_retried_and_nothing_is_lost_or_doubled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _journal(tmp_path, 500)
    finish = threading.Event()
    made: list[FillingDisk] = []

    def make(*args: Any, **kwargs: Any) -> FillingDisk:
        made.append(FillingDisk(*args, **kwargs))
        return made[-1]

    with caplog.at_level(logging.WARNING):
        thread = threading.Thread(
            target=convert_until,
            args=(tmp_path, finish),
            kwargs={"seal_interval_s": 0.01, "retry_s": 0.01, "make": make},
        )
        thread.start()
        try:
            wait_for(lambda: bool(made) and made[0].records == 500, 20)
        finally:
            finish.set()
            thread.join(10)
    assert not thread.is_alive() and made[0].refusals == 0
    assert _count(tmp_path, "SELECT count(*) FROM mark_prices") == 500
    assert _count(tmp_path, "SELECT count(DISTINCT mark_price) FROM mark_prices") == 500
    assert not partials(tmp_path)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot write the lake (disk full" in m for m in messages) == 1
    assert any("writing the lake again" in m for m in messages)


def test_an_error_other_than_a_full_disk_still_ends_the_converter(tmp_path: Path) -> None:
    _journal(tmp_path, 10)

    class Broken(Converter):
        def seal(self) -> None:
            raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(OSError, match="Input/output"):
        convert_until(tmp_path, threading.Event(), seal_interval_s=0.0, make=Broken)
