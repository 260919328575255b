"""Coverage as text: a table for people; CSV (one row per cell) and JSON (gaps, cells, totals) for tools."""

from __future__ import annotations

import csv
import io
import json

from report.coverage import CLASSES, Report, iso


def as_json(report: Report) -> str:
    return json.dumps(report.as_json(), indent=2)


def as_csv(report: Report) -> str:
    """One row per dataset × symbol × channel × bucket; the seconds of each gap class as columns."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "dataset",
            "symbol",
            "channel",
            "start",
            "seconds",
            "covered_seconds",
            "coverage",
            "rows",
            "expected_rows",
            *(f"{name}_seconds" for name in CLASSES),
        ]
    )
    for cell in report.cells:
        writer.writerow(
            [
                cell.dataset,
                cell.symbol,
                cell.channel,
                iso(cell.start),
                f"{cell.seconds:.3f}",
                f"{cell.covered_seconds:.3f}",
                f"{cell.share:.6f}",
                cell.rows,
                "" if cell.expected_rows is None else cell.expected_rows,
                *(f"{cell.gap_seconds.get(name, 0.0):.3f}" for name in CLASSES),
            ]
        )
    return out.getvalue()


def as_table(report: Report) -> str:
    """Cells, then every gap, then the totals line."""
    lines = [
        f"{'dataset':<16} {'symbol':<12} {'channel':<16} {'start':<24} {'cover':>7} {'rows':>8} {'exp':>6}"
    ]
    for cell in report.cells:
        expected = "" if cell.expected_rows is None else str(cell.expected_rows)
        lines.append(
            f"{cell.dataset:<16} {cell.symbol:<12} {cell.channel:<16} {iso(cell.start):<24} "
            f"{cell.share:>7.1%} {cell.rows:>8} {expected:>6}"
        )
    lines.append("")
    lines.append(f"{'gap class':<15} {'dataset':<16} {'symbol':<12} {'channel':<16} {'start':<24} seconds")
    for gap in report.gaps:
        lines.append(
            f"{gap.cls:<15} {gap.dataset:<16} {gap.symbol:<12} {gap.channel:<16} {iso(gap.start):<24} "
            f"{gap.seconds:.1f} ({gap.cause})"
        )
    totals = report.totals()
    counts = ", ".join(f"{totals['gaps'][name]} {name}" for name in CLASSES if totals["gaps"][name])
    lines.append("")
    lines.append(
        f"coverage {totals['coverage']:.2%} over {len(report.cells)} cells (by {report.by}); "
        f"gaps: {counts or 'none'}; {totals['gap_seconds']['open']:.1f} s open"
    )
    return "\n".join(lines)
