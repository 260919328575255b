"""The heatmap opened as a person would get it: a PNG with one row per symbol and one column per hour, and
an HTML page that needs nothing outside itself."""

from __future__ import annotations

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


def graded() -> Report:
    """Every cell of the heatmap a different share covered (trades 0-100% of the hour, book updates full)."""
    cells, count = [], len(SYMBOLS) * HOURS
    for index, (symbol, hour) in enumerate((s, h) for s in SYMBOLS for h in range(HOURS)):
        for dataset, channel, covered in (
            ("trades", "trade", 3600.0 * index / (count - 1)),
            ("book_updates", "incrDepth", 3600.0),
        ):
            cell = Cell(dataset, symbol, channel, T0 + timedelta(hours=hour), seconds=3600.0)
            cell.covered_seconds = covered
            cells.append(cell)
    return Report(T0, T0 + timedelta(hours=HOURS), "hour", [], cells)


def test_the_png_has_one_row_per_symbol_and_one_column_per_hour(tmp_path: Path) -> None:
    """Read the picture itself: the coloured block, cut into symbols x hours, has each cell's colour."""
    import numpy as np
    from matplotlib import colormaps

    path = tmp_path / "coverage.png"
    write_png(graded(), path)
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB")).astype(int)
    coloured = (
        pixels.max(axis=2) - pixels.min(axis=2)
    ) > 40  # the colour map's pixels; text and axes are grey
    columns = _longest_run(coloured.sum(axis=0) > 0)  # the heatmap, not the narrow colour bar beside it
    rows = _longest_run(coloured[:, columns[0] : columns[1]].sum(axis=1) > 0)
    width, height = (columns[1] - columns[0]) / HOURS, (rows[1] - rows[0]) / len(SYMBOLS)
    shares = grid(graded()).shares
    wanted = {
        (r, c): np.array(colormaps["RdYlGn"](shares[r][c])[:3]) * 255 for r in range(3) for c in range(HOURS)
    }
    for (r, c), colour in wanted.items():
        x, y = int(columns[0] + (c + 0.5) * width), int(rows[0] + (r + 0.5) * height)
        found = pixels[y, x]
        nearest = min(wanted, key=lambda cell: float(np.abs(wanted[cell] - found).sum()))
        assert nearest == (r, c) and np.abs(colour - found).max() <= 3, f"cell {r},{c}: {found} not {colour}"


def _longest_run(flags: object) -> tuple[int, int]:
    """[start, stop) of the longest run of True."""
    best, start = (0, 0), None
    for index, flag in enumerate([*list(flags), False]):  # type: ignore[call-overload]
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            best, start = max(best, (start, index), key=lambda run: run[1] - run[0]), None
    return best


def test_the_html_page_references_no_url_outside_itself(tmp_path: Path) -> None:
    path = tmp_path / "coverage.html"
    write_html(report(), path)
    page = path.read_text()
    assert all(page.count(f"<tr><th>{symbol}</th>") == 1 for symbol in SYMBOLS)
    assert page.count("<td style=") == len(SYMBOLS) * HOURS
    assert not re.search(r"(https?:|//|src=|href=|@import|url\()", page)
