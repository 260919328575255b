"""LogReporter: one line per finished series, running totals at most every `every_s`, exact across threads."""

from __future__ import annotations

import logging
import threading

import pytest

from backfill.progress import LogReporter, RichReporter

LABEL = "klines BTC-USDT 1m"


def lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "backfill" and r.levelno == level]


def test_a_finish_logs_the_series_totals_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="backfill")
    reporter = LogReporter(every_s=3600)
    reporter.start(LABEL, 7_200_000)
    reporter.advance(LABEL, 3_600_000, 1000, 1)
    reporter.advance(LABEL, 3_600_000, 440, 2)
    reporter.finish(LABEL)
    assert lines(caplog, logging.INFO) == [f"{LABEL}: done, 1440 rows, 3 pages"]
    assert lines(caplog, logging.DEBUG) == [f"{LABEL}: backfilling 2.0 hours"]


def test_a_series_with_no_new_rows_finishes_at_debug_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="backfill")
    reporter = LogReporter()
    reporter.start(LABEL, 60_000)
    reporter.finish(LABEL)
    assert lines(caplog, logging.INFO) == []
    assert lines(caplog, logging.DEBUG) == [
        f"{LABEL}: backfilling 0.0 hours",
        f"{LABEL}: done, 0 rows, 0 pages",
    ]


def test_running_totals_are_logged_when_every_s_has_passed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="backfill")
    reporter = LogReporter(every_s=0.0)
    reporter.start(LABEL, 180_000)
    reporter.advance(LABEL, 60_000, 5, 1)
    reporter.advance(LABEL, 60_000, 7, 1)
    assert lines(caplog, logging.INFO) == [
        f"{LABEL}: 5 rows, 1 pages so far",
        f"{LABEL}: 12 rows, 2 pages so far",
    ]


def test_no_running_totals_before_every_s(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="backfill")
    reporter = LogReporter(every_s=3600)
    reporter.start(LABEL, 180_000)
    for _ in range(3):
        reporter.advance(LABEL, 60_000, 5, 1)
    assert lines(caplog, logging.INFO) == []


def test_totals_from_many_threads_add_up_exactly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="backfill")
    reporter = LogReporter(every_s=3600)
    labels = [f"trades S{index}-USDT" for index in range(4)]
    for label in labels:
        reporter.start(label, 1)

    def advance(label: str) -> None:
        for _ in range(500):
            reporter.advance(label, 1, 3, 1)

    threads = [threading.Thread(target=advance, args=(label,)) for label in labels for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    for label in labels:
        reporter.finish(label)
    assert sorted(lines(caplog, logging.INFO)) == [
        f"{label}: done, 4500 rows, 1500 pages" for label in labels
    ]


def test_the_rich_bar_counts_rows_and_pages_and_ends_complete() -> None:
    with RichReporter() as reporter:
        reporter.start(LABEL, 120_000)
        reporter.advance(LABEL, 60_000, 1000, 1)
        reporter.advance(LABEL, 30_000, 20, 1)
        (task,) = reporter._progress.tasks
        assert (task.completed, task.fields) == (90_000, {"rows": 1020, "pages": 2})
        reporter.finish(LABEL)
        assert (task.completed, task.total, task.finished) == (120_000, 120_000, True)
