"""Backfill: rows/s and the share of the simulator's rate-limit budget used, with the throttled answers."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from bench import exchange_sim
from bench.harness import Config, Figure, figure, unavailable
from schemas.klines import KLINES

SECTION = "backfill"
SYMBOLS = ("BTC-USDT", "ETH-USDT", "SOL-USDT")
DAY_MS = 86_400_000
START_MS = 1_735_689_600_000  # 2025-01-01
KLINES_PATH = KLINES.rest_path or ""
# The simulator builds every bar from its trade tape: at its default 2 trades/s a page of 1,000 1m bars
# aggregates 120,000 trades, ~0.4 s of Python per answer, and its GIL-bound server tops out near 2.5
# pages/s on this 2-core machine, half the budget: the figure then measured the simulator, not the client.
# A thin tape (3,000 trades a page) answers in milliseconds, like an exchange, so the limiter binds.
TAPE_TRADES_PER_S = 0.05


def run(config: Config) -> list[Figure]:
    """Backfill 1m klines of a long window against a simulator budget of BingX's published size."""
    missing = exchange_sim.has_command("backfill")
    if missing:
        return [unavailable(SECTION, "backfill rows/s", "rows/s", missing)]
    days = 10 if config.quick else 60
    work = config.work / "backfill"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    outcome = _backfill(work, days)
    if isinstance(outcome, str):
        return [unavailable(SECTION, "backfill rows/s", "rows/s", outcome)]
    output, wall, requests, throttled, reason = outcome
    return _figures(work, days, output, wall, requests, throttled, reason)


def _backfill(work: Path, days: int) -> tuple[str, float, int | None, int | None, str] | str:
    """Run the job against a fresh simulator: (stdout, seconds, requests, throttled, reason) or a problem."""
    # BingX's published market-group budget, 100 requests / 10 s per IP (BINGX_API.md §15.2)
    sim, _ = exchange_sim.simulator(
        symbols=list(SYMBOLS),
        seed=0,
        bounded_ledger=True,
        group_budget=100,
        trades_per_second=TAPE_TRADES_PER_S,
    )
    with sim:
        if not sim.rest_url:
            return "the simulator has no REST server yet"
        window = ("--since", str(START_MS), "--until", str(START_MS + days * DAY_MS))
        words = ("backfill", "klines", "--symbols", ",".join(SYMBOLS), "--interval", "1m", *window)
        started = time.monotonic()
        done = subprocess.run(
            exchange_sim.cli(work, sim, *words),
            cwd=exchange_sim.ROOT,
            capture_output=True,
            text=True,
            timeout=540,
        )
        wall = time.monotonic() - started
        requests, throttled, reason = rest_counts(sim)
    if done.returncode != 0:
        last = " | ".join((done.stderr or done.stdout).strip().splitlines()[-2:])[:300]
        return f"backfill exited {done.returncode}: {last}"
    return done.stdout, wall, requests, throttled, reason


def _figures(
    work: Path, days: int, output: str, wall: float, requests: int | None, throttled: int | None, reason: str
) -> list[Figure]:
    """Rows/s, the share of the binding published budget used, and the throttled answers."""
    rows = _rows(work / "lake")
    summary = job_summary(output)
    seconds = summary.get("seconds") or wall
    note = (
        f"{len(SYMBOLS)} symbols x {days} days of 1m klines in {seconds:.1f} s (job), {wall:.1f} s (process)"
    )
    figures = [figure(SECTION, "klines rows/s", "rows/s", [rows / seconds], note=f"{rows:,} rows; {note}")]
    total = float(requests) if requests is not None else summary.get("requests")
    if total is None:
        return [*figures, unavailable(SECTION, "share of request budget used", "%", reason)]
    budget_rate = allowed_rate(KLINES_PATH)
    figures.append(
        figure(
            SECTION,
            "share of request budget used",
            "%",
            [100 * total / seconds / budget_rate],
            target=">= 90",
            note=f"{total:,.0f} requests; {budget_rate:g} requests/s allowed on klines (published; binds)",
        )
    )
    if throttled is None and "throttled" in summary:
        throttled, reason = int(summary["throttled"]), "counted by the client (the job's summary line)"
    if throttled is None:
        figures.append(unavailable(SECTION, "throttled answers (429/100410)", "count", reason))
    else:
        figures.append(
            figure(
                SECTION,
                "throttled answers (429/100410)",
                "count",
                [float(throttled)],
                target="0",
                note=reason or "counted by the simulator",
            )
        )
    return figures


def job_summary(output: str) -> dict[str, float]:
    """Read the job's closing line: "... N requests, N retries, N throttled (X s), X s"."""
    found = re.search(r"(\d+) requests, (\d+) retries, (\d+) throttled \(([\d.]+) s\), ([\d.]+) s", output)
    if found is None:
        return {}
    names = ("requests", "retries", "throttled", "seconds_throttled", "seconds")
    return {name: float(value) for name, value in zip(names, found.groups(), strict=True)}


def allowed_rate(path: str) -> float:
    """Requests/s BingX's published budgets allow on `path` over a long window: the tightest one binds."""
    from exchange.ratelimit import BINGX_BUDGETS

    return min(budget.limit / budget.window_s for budget in BINGX_BUDGETS if budget.applies_to(path))


def rest_counts(sim: Any) -> tuple[int | None, int | None, str]:
    """(requests answered, throttled answers) from the simulator's REST ledger, or why they are unknown."""
    rest = getattr(sim.ledger, "rest", None)
    if rest is None or not callable(getattr(rest, "snapshot", None)):
        return None, None, "the simulator's REST ledger is not available"
    throttled = getattr(rest, "throttled", None)
    count = throttled if isinstance(throttled, int) else None
    return len(rest.snapshot()), count, "counted by the simulator (HTTP 429/418 or code 100410)"


def _rows(lake: Path) -> int:
    import duckdb

    files = [str(path) for path in sorted(lake.glob("klines/**/*.parquet"))]
    if not files:
        return 0
    con = duckdb.connect()
    try:
        row = con.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone()
    finally:
        con.close()
    return int(row[0]) if row else 0
