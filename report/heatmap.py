"""The coverage heatmap: symbols × buckets, colour = share covered, a letter for the worst gap class.

A PNG (matplotlib's Agg backend: no display needed) and a self-contained HTML page (inline CSS, no URL).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from report.coverage import BUCKETS, Report, iso

# Worst first: the mark a cell shows is the first of these among its gaps.
MARKS = {
    "open": "O",
    "beyond_history": "B",
    "unhealable": "U",
    "not_listed": "N",
    "quiet": "Q",
    "healed": "H",
}


@dataclass(frozen=True)
class Grid:
    """One row per symbol, one column per bucket of the report's span."""

    symbols: list[str]
    buckets: list[datetime]
    shares: list[list[float]]  # covered / recorded seconds, 1.0 where nothing was recorded
    marks: list[list[str]]  # MARKS letter of the worst gap class, "" for none


def grid(report: Report) -> Grid:
    """Fold the report's cells (every dataset and channel) into symbol × bucket."""
    bucket = BUCKETS[report.by]
    symbols = sorted({cell.symbol for cell in report.cells})
    starts = sorted({cell.start for cell in report.cells})
    buckets = (
        [starts[0] + bucket * n for n in range(int((starts[-1] - starts[0]) / bucket) + 1)] if starts else []
    )
    column = {start: index for index, start in enumerate(buckets)}
    row = {symbol: index for index, symbol in enumerate(symbols)}
    spanned = [[0.0] * len(buckets) for _ in symbols]
    covered = [[0.0] * len(buckets) for _ in symbols]
    classes: list[list[set[str]]] = [[set() for _ in buckets] for _ in symbols]
    for cell in report.cells:
        r, c = row[cell.symbol], column[cell.start]
        spanned[r][c] += cell.seconds
        covered[r][c] += cell.covered_seconds
        classes[r][c].update(name for name, seconds in cell.gap_seconds.items() if seconds > 0)
    shares = [
        [covered[r][c] / spanned[r][c] if spanned[r][c] else 1.0 for c in range(len(buckets))]
        for r in row.values()
    ]
    marks = [
        [next((MARKS[n] for n in MARKS if n in classes[r][c]), "") for c in range(len(buckets))]
        for r in row.values()
    ]
    return Grid(symbols, buckets, shares, marks)


def write_png(report: Report, path: Path) -> None:
    """Draw the heatmap into a PNG; its text chunk "grid" names the rows and columns (JSON)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    found = grid(report)
    rows, columns = max(1, len(found.symbols)), max(1, len(found.buckets))
    size = (min(40.0, max(8.0, 3.0 + 0.45 * columns)), 2.2 + 0.4 * rows)
    figure, axes = plt.subplots(figsize=size, dpi=100)
    try:
        image = axes.imshow(
            found.shares or [[1.0]], cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest"
        )
        for r, marks in enumerate(found.marks):
            for c, mark in enumerate(marks):
                if mark:
                    axes.text(c, r, mark, ha="center", va="center", fontsize=8, color="black")
        axes.set_yticks(range(len(found.symbols)), found.symbols)
        labels = [moment.strftime("%m-%d %H:%M") for moment in found.buckets]
        axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        axes.set_title(f"coverage by {report.by}\n{iso(report.since)} to {iso(report.until)}", fontsize=9)
        figure.colorbar(image, ax=axes, fraction=0.03, label="share covered")
        legend = "  ".join(f"{mark} {name}" for name, mark in MARKS.items())
        figure.text(0.01, 0.01, legend, fontsize=7)
        figure.tight_layout(rect=(0, 0.05, 1, 1))
        grid_text = json.dumps({"symbols": found.symbols, "buckets": [iso(b) for b in found.buckets]})
        figure.savefig(path, format="png", metadata={"Title": "bingx-recorder coverage", "grid": grid_text})
    finally:
        plt.close(figure)


def write_html(report: Report, path: Path) -> None:
    """Write a page that needs no network: one table, inline CSS, a title on every cell."""
    found = grid(report)
    head = "".join(f"<th>{html.escape(moment.strftime('%m-%d %H:%M'))}</th>" for moment in found.buckets)
    body = []
    for r, symbol in enumerate(found.symbols):
        cells = []
        for c, moment in enumerate(found.buckets):
            share, mark = found.shares[r][c], found.marks[r][c]
            title = f"{symbol} {iso(moment)}: {share:.1%} covered" + (f", worst gap {mark}" if mark else "")
            cells.append(f'<td style="background:{_colour(share)}" title="{html.escape(title)}">{mark}</td>')
        body.append(f"<tr><th>{html.escape(symbol)}</th>{''.join(cells)}</tr>")
    totals = report.totals()
    gaps = "".join(
        f"<tr><td>{g.cls}</td><td>{g.dataset}</td><td>{g.symbol}</td><td>{html.escape(g.channel)}</td>"
        f"<td>{iso(g.start)}</td><td>{iso(g.end)}</td><td>{g.seconds:.1f}</td><td>{g.cause}</td></tr>"
        for g in report.gaps
    )
    legend = ", ".join(f"{mark} = {name}" for name, mark in MARKS.items())
    page = _PAGE.format(
        since=iso(report.since),
        until=iso(report.until),
        by=report.by,
        coverage=f"{totals['coverage']:.2%}",
        head=head,
        rows="\n".join(body),
        legend=legend,
        gaps=gaps,
    )
    path.write_text(page)


def _colour(share: float) -> str:
    """Red (0) through yellow to green (1), as an inline CSS colour."""
    share = min(1.0, max(0.0, share))
    red, green = (255, int(510 * share)) if share < 0.5 else (int(510 * (1 - share)), 200)
    return f"rgb({red},{green},80)"


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>coverage {since} to {until}</title>
<style>
body {{ font-family: sans-serif; font-size: 13px; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ddd; padding: 2px 4px; text-align: center; }}
.map td {{ min-width: 1.6em; }}
</style></head><body>
<h1>Coverage by {by}</h1>
<p>{since} to {until}: {coverage} covered. {legend}.</p>
<table class="map"><tr><th>symbol</th>{head}</tr>
{rows}
</table>
<h2>Gaps</h2>
<table><tr><th>class</th><th>dataset</th><th>symbol</th><th>channel</th><th>start</th><th>end</th><th>seconds</th>
<th>cause</th></tr>{gaps}</table>
</body></html>
"""
