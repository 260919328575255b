"""The heatmap opened as a person would get it: a PNG with one row per symbol and one column per hour, and
an HTML page that needs nothing outside itself."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image

from report.coverage import Cell, Gap, Report
from report.heatmap import grid, write_html, write_png

T0 = datetime(2024, 6, 1, 10, tzinfo=UTC)
SYMBOLS = ["BTC-USDT", "ETH-USDT", "SOL-USDT"]
HOURS = 5


def report() -> Report:
    cells = []
    for symbol in SYMBOLS:
        for hour in range(HOURS):
            for channel, dataset in (("trade", "trades"), ("incrDepth", "book_updates")):
                cell = Cell(dataset, symbol, channel, T0 + timedelta(hours=hour), seconds=3600.0)
                cell.covered_seconds = 3600.0
                cells.append(cell)
    open_cell = cells[2 * HOURS * 2 + 2]  # SOL-USDT, an hour in, trades: 15 min missing
    open_cell.covered_seconds, open_cell.gap_seconds = 2700.0, {"open": 900.0}
    start = T0 + timedelta(hours=2, minutes=10)
    gap = Gap("trades", "SOL-USDT", "trade", start, start + timedelta(minutes=15), "open", "disconnect")
    return Report(T0, T0 + timedelta(hours=HOURS), "hour", [gap], cells)


def test_the_grid_has_one_row_per_symbol_and_one_column_per_hour_with_the_class_marked() -> None:
    found = grid(report())
    assert found.symbols == SYMBOLS and len(found.buckets) == HOURS
    assert found.marks[2][1] == "O" and sum(mark != "" for row in found.marks for mark in row) == 1
    assert found.shares[2][1] == (2700 + 3600) / 7200 and found.shares[0][0] == 1.0


def test_the_png_has_one_row_per_symbol_and_one_column_per_hour(tmp_path: Path) -> None:
    path = tmp_path / "coverage.png"
    write_png(report(), path)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 100 and image.height > 100
        layout = json.loads(image.text["grid"])  # type: ignore[attr-defined]
    assert layout["symbols"] == SYMBOLS
    assert layout["buckets"] == [f"2024-06-01T{10 + h}:00:00.000Z" for h in range(HOURS)]


def test_the_html_page_references_no_url_outside_itself(tmp_path: Path) -> None:
    path = tmp_path / "coverage.html"
    write_html(report(), path)
    page = path.read_text()
    assert all(page.count(f"<tr><th>{symbol}</th>") == 1 for symbol in SYMBOLS)
    assert page.count("<td style=") == len(SYMBOLS) * HOURS
    assert not re.search(r"(https?:|//|src=|href=|@import|url\()", page)
