"""`make demo` runs the same code as this test, so the README's first command cannot rot."""

from __future__ import annotations

from pathlib import Path

import pytest

import demo
from storage.views import connect

STREAM_DATASETS = (
    "trades",
    "klines",
    "depth_snapshots",
    "book_updates",
    "tickers",
    "book_tickers",
    "mark_prices",
    "last_prices",
)


@pytest.mark.slow
def test_demo_records_every_channel_and_unifies_stream_and_backfill_bars(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    demo.run(tmp_path / "data", seconds=4)
    out = capfd.readouterr().out
    assert "1m bars: stream and backfill unified" in out
    summary = next(line for line in out.splitlines() if line.startswith("coverage "))
    assert " healed" in summary and " unhealable" in summary and "0.0 s open" in summary, summary
    assert (tmp_path / "data" / "coverage.png").stat().st_size > 0

    con = connect(tmp_path / "data" / "lake")
    for name in STREAM_DATASETS:
        [(rows,)] = con.execute(f"SELECT count(*) FROM {name} WHERE source = 'stream'").fetchall()
        assert rows > 0, f"the demo recorded no {name}"
    [(rows, bars, backfilled)] = con.execute(
        'SELECT count(*), count(DISTINCT (symbol, "interval", open_time)),'
        " count(*) FILTER (source = 'backfill') FROM klines"
    ).fetchall()
    assert rows == bars, "a bar appears twice in the klines view"
    assert backfilled >= 2 * 9, "ten minutes of two symbols' closed bars were backfilled"
    # The stream's bars may all be superseded by settled REST bars in the view; the files keep them.
    assert list((tmp_path / "data" / "lake" / "klines").rglob("stream-*.parquet"))
    con.close()
