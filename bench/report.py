"""Print figures as a table and render the README performance snippet."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.harness import Figure

README = Path(__file__).parent / "README.md"


def number(value: float | None) -> str:
    """Format a figure with three significant digits and thousands separators."""
    if value is None:
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def table(figures: list[Figure], console: Console) -> None:
    """Print every figure: median, min-max, runs and the target or the reason it is unavailable."""
    grid = Table(title="bingx-recorder benchmarks", show_lines=False)
    for column in ("section", "figure", "median", "min – max", "unit", "runs", "target / note"):
        grid.add_column(column, overflow="fold")
    for item in figures:
        spread = f"{number(item.low)} – {number(item.high)}" if item.available and item.runs > 1 else ""
        remark = " · ".join(
            part for part in (f"target {item.target}" if item.target else "", item.note) if part
        )
        grid.add_row(
            item.section, item.name, number(item.median), spread, item.unit, str(item.runs or ""), remark
        )
    console.print(grid)


def snippet(figures: list[Figure], sections: dict[str, str], machine: dict[str, object]) -> str:
    """Markdown for the README's performance section: the figures and how to reproduce them."""
    lines = [
        "## Performance",
        "",
        f"Measured by `make bench` on {machine.get('cpu_count')} cores ({machine.get('cpu_model')}), "
        f"Python {machine.get('python')}. Medians of repeated runs (min–max); the machine is noisy, so "
        "ratios measured in the same run are the headline. Raw figures: `bench/results/<timestamp>.json`.",
        "",
        "| section | figure | median | min–max | unit | target / note |",
        "|---|---|---:|---|---|---|",
    ]
    for item in figures:
        spread = f"{number(item.low)}–{number(item.high)}" if item.available and item.runs > 1 else ""
        remark = "; ".join(
            part for part in (f"target {item.target}" if item.target else "", item.note) if part
        )
        lines.append(
            f"| {item.section} | {item.name} | {number(item.median)} | {spread} | {item.unit} | {remark} |"
        )
    skipped = [f"{name} ({status})" for name, status in sections.items() if status != "ran"]
    if skipped:
        lines += ["", "Not measured in this run: " + "; ".join(skipped) + "."]
    lines += [
        "",
        "Reproduce: `make bench` (about 10 minutes on 2 cores; the generated 50M-trade lake is cached in",
        "`bench/results/.cache/`), `.venv/bin/python -m bench --quick` for small sizes, or",
        "`.venv/bin/python -m bench --only query`. ccxt is installed into the bench cache on first use;",
        "it is never a dependency of the recorder.",
    ]
    return "\n".join(lines) + "\n"


def write_readme(text: str, path: Path = README) -> None:
    """Replace bench/README.md's figures block, keeping what surrounds it."""
    start, end = "<!-- bench:figures -->", "<!-- /bench:figures -->"
    block = f"{start}\n{text}{end}\n"
    current = path.read_text() if path.exists() else ""
    if start in current and end in current:
        before, rest = current.split(start, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        path.write_text(before + block + after)
        return
    path.write_text(current + ("\n" if current else "") + block)
