"""`python -m bench`: run the benchmark sections, print a table, write bench/results/<timestamp>.json."""

from __future__ import annotations

import argparse
import traceback
from collections.abc import Callable
from datetime import UTC, datetime

from rich.console import Console

from bench import backfill_rate, books, heal_rate, ingest, lake, parsing, query, report, storage_size
from bench.harness import Config, Figure, Section, machine, unavailable, write_results

SECTIONS: dict[str, Section] = {
    "parsing": parsing.run,
    "storage": storage_size.run,
    "query": query.run,
    "lake": lake.run,
    "backfill": backfill_rate.run,
    "heal": heal_rate.run,
    "ingest": ingest.run,
    "books": books.run,
}


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections; a section that fails is reported as such and the others still run."""
    options = _parser().parse_args(argv)
    config = Config(
        quick=options.quick, repeats=options.repeats or (3 if options.quick else 5), profile=options.profile
    )
    console = Console()
    started = datetime.now(UTC)
    chosen = options.only or list(SECTIONS)
    figures, status = run_sections({name: SECTIONS[name] for name in chosen}, config, console.log)
    path = write_results(figures, status, started)
    report.table(figures, console)
    text = report.snippet(figures, status, machine())
    if not options.quick and not options.only:
        report.write_readme(text)
    print(text)
    for name, state in status.items():
        print(f"section {name}: {state}")
    print(f"results: {path}")
    return 0


def run_sections(
    sections: dict[str, Section], config: Config, log: Callable[[str], object]
) -> tuple[list[Figure], dict[str, str]]:
    """Run each section once, in order; return all figures and each section's status."""
    figures: list[Figure] = []
    status: dict[str, str] = {}
    for name, section in sections.items():
        log(f"section {name} …")
        start = datetime.now(UTC)
        try:
            produced = section(config)
        except Exception as error:  # one broken section must not hide the others' figures
            log(traceback.format_exc())
            first_line = (str(error).strip().splitlines() or [""])[0]
            produced = [unavailable(name, "section", "", f"failed: {type(error).__name__}: {first_line}")]
        figures.extend(produced)
        ran = any(item.available for item in produced)
        reasons = "; ".join(item.note for item in produced if not item.available)
        status[name] = (
            "ran" if ran and not reasons else ("partial: " + reasons if ran else "skipped: " + reasons)
        )
        log(f"section {name}: {status[name][:200]} ({(datetime.now(UTC) - start).total_seconds():.1f} s)")
    return figures, status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    parser.add_argument(
        "--only", action="append", choices=list(SECTIONS), help="run only this section (repeatable)"
    )
    parser.add_argument("--profile", action="store_true", help="run the recorder under cProfile (ingest)")
    parser.add_argument("--repeats", type=int, default=0, help="runs per figure (default 5, quick 3)")
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
