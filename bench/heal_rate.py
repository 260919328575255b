"""Healing: rows/s and the share of the published REST budget used, healing a 1-hour outage of 20 symbols."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import exchange_sim
from bench.backfill_rate import allowed_rate, rest_counts
from bench.harness import Config, Figure, figure, unavailable
from schemas.trades import TRADES

SECTION = "heal"
TRADES_PATH = TRADES.rest_path or ""
MINUTE_MS = 60_000


def run(config: Config) -> list[Figure]:
    """Build a recording of 20 symbols × trade, kline_1m with a 1-hour outage, then time `heal` on it."""
    missing = exchange_sim.has_command("heal")
    if missing:
        return [unavailable(SECTION, "heal rows/s", "rows/s", missing)]
    symbols = [f"S{index:02d}-USDT" for index in range(5 if config.smoke else 20)]
    outage_min = 5 if config.smoke else (20 if config.quick else 60)
    work = config.work / "heal"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # BingX's published budgets, enforced by the simulator (market group 100/10 s and 500/min, klines 5/s).
    sim, _ = exchange_sim.simulator(symbols=symbols, seed=0, bounded_ledger=True, bingx_budgets=True)
    with sim:
        if not sim.rest_url:
            return [unavailable(SECTION, "heal rows/s", "rows/s", "the simulator has no REST server yet")]
        end_ms = int(time.time() * 1000) // MINUTE_MS * MINUTE_MS - 5 * MINUTE_MS
        gap = (end_ms - outage_min * MINUTE_MS, end_ms)
        _recording(work, symbols, gap)
        started = time.monotonic()
        done = subprocess.run(
            exchange_sim.cli(work, sim, "heal", "--datasets", "trades,klines"),
            cwd=exchange_sim.ROOT,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        wall = time.monotonic() - started
        requests, throttled, reason = rest_counts(sim)
    if done.returncode != 0:
        last = " | ".join((done.stderr or done.stdout).strip().splitlines()[-2:])[:300]
        return [unavailable(SECTION, "heal rows/s", "rows/s", f"heal exited {done.returncode}: {last}")]
    found = re.search(r"(\d+) rows written, (\d+) requests", done.stdout)
    rows = int(found.group(1)) if found else 0
    note = (
        f"{len(symbols)} symbols x {outage_min} min outage (trades, 1m klines), {rows:,} rows in {wall:.1f} s"
    )
    figures = [figure(SECTION, "heal rows/s", "rows/s", [rows / wall], note=note)]
    total = requests if requests is not None else (int(found.group(2)) if found else None)
    if total is not None:
        budget = allowed_rate(TRADES_PATH)
        figures.append(
            figure(
                SECTION,
                "share of REST budget used while healing",
                "%",
                [100 * total / wall / budget],
                note=f"{total:,} requests; {budget:.2f} requests/s allowed (market group, published; binds)",
            )
        )
    if throttled is not None:
        figures.append(
            figure(SECTION, "heal: throttled answers", "count", [float(throttled)], target="0", note=reason)
        )
    return figures


def _recording(data_dir: Path, symbols: list[str], gap: tuple[int, int]) -> None:
    """A minute of frames per topic on each side of the outage, with its disconnect and reconnect events."""
    from schemas import DATASETS
    from storage.lake import Lake

    lake = Lake(data_dir / "lake")
    frames: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    seq = 0

    def row(ms: int) -> dict[str, Any]:
        nonlocal seq
        seq += 1
        return {"connection": "bench-00", "seq": seq, "received_at": _at(ms), "source": "stream"}

    events.append(row(gap[0] - MINUTE_MS - 1000) | _event("connect"))
    for side in (range(gap[0] - MINUTE_MS, gap[0], 1000), range(gap[1], gap[1] + MINUTE_MS, 1000)):
        if side.start == gap[1]:
            events.append(row(gap[1] - 1) | _event("reconnect"))
        for ms in side:
            for symbol in symbols:
                for channel in ("trade", "kline_1m"):
                    frames.append(row(ms) | {"topic": f"{symbol}@{channel}", "text": "{}"})
        if side.start != gap[1]:
            events.append(row(gap[0]) | _event("disconnect"))
    lake.write(DATASETS["stream_events"], events)
    lake.write(DATASETS["raw_messages"], frames)


def _event(name: str) -> dict[str, Any]:
    return {"event": name, "topic": None, "code": None, "detail": None}


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
