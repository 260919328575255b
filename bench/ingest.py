"""Ingest: the simulator into `bingx-recorder record` (a subprocess): frames landed, CPU, RSS, latency.

The recorder subscribes to every channel of N symbols; once every topic is acked, a window is measured
while the simulator's firehose (pre-encoded frames) pushes flat out or at a fixed rate; then the recorder
gets SIGINT (flush and exit) and the lake is compared with what the simulator sent.
"""

from __future__ import annotations

import resource
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from bench import exchange_sim, landed, sampling
from bench.harness import Config, Figure, unavailable
from bench.ingest_figures import (
    BOOKS,
    CHANNELS,
    FIXED_RATE,
    POOL,
    PREPARE_S,
    SECTION,
    Run,
    books_figures,
    fixed_figures,
    throughput_figures,
)
from bench.journal_tail import JournalTail
from bench.proc import TreeSampler

RECOVERY_STARTS = 3


def run(config: Config) -> list[Figure]:
    """Three runs: the simulator flat out (frames per CPU-second), then 15,000 frames/s over 1,000 topics with
    book snapshots off (the default) and on (issue 15: what keeping every book costs at the market's rate)."""
    missing = exchange_sim.has_command("record")
    if missing:
        return [unavailable(SECTION, "end-to-end ingest", "frames/s", missing)]
    window = 8.0 if config.quick else 20.0
    symbols = symbol_names(25 if config.quick else 125)  # x 8 channels = 200 / 1,000 topics
    flat = record_run(config.work / "ingest-max", symbols, None, window, config.quick, config.profile)
    per_s = FIXED_RATE * len(symbols) / 125  # quick mode keeps the per-topic rate of the full run
    # Twice the recorder's lake interval (30 s), so the steady state's seals are inside the window.
    steady = 8.0 if config.quick else 60.0
    fixed = record_run(config.work / "ingest-fixed", symbols, per_s, steady, config.quick)
    books = record_run(
        config.work / "ingest-books", symbols, per_s, steady, config.quick, extra=("--book-snapshots", BOOKS)
    )
    return (
        throughput_figures(flat, len(symbols))
        + fixed_figures(fixed, len(symbols), per_s)
        + books_figures(fixed, books, len(symbols), per_s, _book_rates(config.work / "ingest-books" / "lake"))
    )


def _book_rates(lake: Path) -> str:
    """incrDepth updates and book_snapshots rows a second over the run (the simulator's live books cost it
    ~2.5 ms a push, which caps the incrDepth rate it can feed below the real exchange's)."""
    import duckdb

    rates = []
    for name in ("book_updates", "book_snapshots"):
        files = sorted(str(path) for path in (lake / name).rglob("*.parquet"))
        if not files:
            return f"no {name} landed"
        query = "SELECT count(*), epoch(max(received_at) - min(received_at)) FROM read_parquet($files)"
        count, span = duckdb.connect().execute(query, {"files": files}).fetchall()[0]
        rates.append(f"{count / max(span, 1):,.0f} {name} rows/s")
    return " and ".join(rates)


def symbol_names(count: int) -> list[str]:
    return ["BTC-USDT", "ETH-USDT", *(f"S{index:03d}-USDT" for index in range(count - 2))]


def record_run(
    work: Path,
    symbols: list[str],
    rate: float | None,
    window: float,
    quick: bool,
    profile: bool = False,
    extra: tuple[str, ...] = (),
) -> Run:
    """Record every channel of `symbols` for a measured `window`, the feed at cadence multiplier `rate`;
    `extra`: more `record` options."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # The firehose builds its frames inside the simulator's event loop, which sends no Ping meanwhile.
    sim, _ = exchange_sim.simulator(symbols=symbols, seed=0, bounded_ledger=True, pong_timeout_s=3600.0)
    if hasattr(sim.ws.options, "max_buffer_bytes"):
        # Measure what the recorder can read: back-pressure instead of cutting it off as a slow consumer.
        sim.ws.options.max_buffer_bytes = 1 << 30
    subscribe_s = 60.0 if quick else 150.0
    with sim, (work / "recorder.log").open("w") as log:
        words = ("record", "--symbols", ",".join(symbols), "--channels", ",".join(CHANNELS))
        # --duration is a safety net (SIGINT ends the run); the firehose prepares its frames inside the
        # simulator's event loop, silencing Pings for a while: a long silence timeout keeps the sockets
        duration = ("--duration", str(int(subscribe_s + 2 * PREPARE_S + window)), "--silence-timeout", "600")
        process = subprocess.Popen(
            exchange_sim.cli(work, sim, *words, *duration, *extra),
            cwd=exchange_sim.ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        children_before = _children_cpu()
        try:
            topics = len(symbols) * len(CHANNELS)
            result = _measure(sim, process, work, topics, rate, window, subscribe_s, profile)
        finally:
            stop_s = _stop(process)
            sim.faults.stall(False)  # the restarts that convert the journal subscribe again
        result.stop_s = stop_s
        result.cpu_total_s = _children_cpu() - children_before
        result.cpu_to_exit_s = result.cpu_total_s - result.cpu_to_exit_s
        result.sent = sum(sim.ledger.counts.values())
        stopped_us = time.time() * 1e6  # frames the restarts receive themselves are not counted
        result.landed_at_exit = landed.frames(work / "lake", until_us=stopped_us)[0]
        if not result.problem and result.landed_at_exit < result.sent:
            result.recovery_cpu_s, result.recovery_s = _recover(
                work, sim, symbols[0], result.sent, stopped_us
            )
    if process.returncode not in (0, -signal.SIGINT) and not result.problem:
        result.problem = f"recorder exited {process.returncode}: {_tail_text(work / 'recorder.log')}"
    result.landed, result.visible_ms, problem = landed.frames(
        work / "lake", result.window_start_us, stopped_us
    )
    result.problem = result.problem or problem
    return result


def _recover(work: Path, sim: Any, symbol: str, sent: int, until_us: float) -> tuple[float, float]:
    """Start the recorder again (it converts the journal it left first) until the lake holds what was sent,
    at most RECOVERY_STARTS times; return the CPU and wall seconds spent. Without this, frames received
    faster than converted never reach Parquet within the run and end to end could not be measured."""
    before, started = _children_cpu(), time.monotonic()
    words = ("record", "--symbols", symbol, "--channels", "trade", "--duration", "20")
    with (work / "recovery.log").open("w") as log:
        for _ in range(RECOVERY_STARTS):
            subprocess.run(
                exchange_sim.cli(work, sim, *words),
                cwd=exchange_sim.ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=600,
                check=False,
            )
            if landed.frames(work / "lake", until_us=until_us)[0] >= sent * 0.999:
                break
    return _children_cpu() - before, time.monotonic() - started


def _measure(
    sim: Any,
    process: subprocess.Popen[Any],
    work: Path,
    topics: int,
    rate: float | None,
    window: float,
    subscribe_s: float,
    profile: bool,
) -> Run:
    sampler, tail = TreeSampler(process.pid), JournalTail(work / "journal")
    sampler.start()
    try:
        acked = _wait_for_acks(sim, process, topics, subscribe_s)
        if acked < topics:
            return Run(problem=f"only {acked} of {topics} topics acked after {subscribe_s:.0f} s")
        firehose = _Firehose(sim, rate)
        if not firehose.flowing(PREPARE_S):
            return Run(problem=f"the simulator's firehose sent nothing within {PREPARE_S:.0f} s")
        tail.start()
        spy = sampling.start(process.pid, window, work / "profile.raw") if profile else None
        cpu_before, started, started_us = sampler.sample(), time.monotonic(), time.time() * 1e6
        receive_before = sampler.cpu.get(process.pid, 0.0)
        sent_before = sum(sim.ledger.counts.values())
        time.sleep(window)
        pushed = sum(sim.ledger.counts.values()) - sent_before
        elapsed = time.monotonic() - started
        cpu = sampler.sample() - cpu_before
        receive = sampler.cpu.get(process.pid, 0.0) - receive_before
        firehose.stop()
        # Freeze the simulator (the feeds keep pushing otherwise): frames still in flight when the recorder
        # stops reading were sent but could never land, which made "landed / sent" miss by a few dozen.
        sim.faults.stall()
        report = _profile_report(spy, work / "profile.raw")
        time.sleep(1.0)  # let the last frames reach the journal before the poller stops
        tail.stop()
        # cpu_to_exit_s holds the CPU spent before the window until record_run subtracts it from the total
        return Run(
            window_s=elapsed,
            window_start_us=started_us,
            pushed=pushed,
            cpu_s=cpu,
            cpu_receive_s=receive,
            cpu_to_exit_s=cpu_before,
            peak_rss_mb=sampler.peak_rss_mb,
            journal_ms=tail.latencies_ms,
            profile=report,
            problem="" if pushed else "the simulator sent nothing in the window",
        )
    finally:
        sampler.stop()


def _wait_for_acks(sim: Any, process: subprocess.Popen[Any], topics: int, limit_s: float) -> int:
    deadline = time.monotonic() + limit_s
    acked = 0
    while time.monotonic() < deadline and process.poll() is None:
        acked = sum(len(record.topics) for record in sim.ledger.connections if record.closed_ms is None)
        if acked >= topics:
            break
        time.sleep(0.25)
    return acked


class _Firehose:
    """The simulator's benchmark mode: pre-encoded frames through every subscription, paced or flat out."""

    def __init__(self, sim: Any, rate: float | None) -> None:
        self._sim = sim
        self._before = sum(sim.ledger.counts.values())
        self._thread = threading.Thread(
            target=sim.ws.firehose.run, args=(10**9, rate, POOL), name="bench-firehose", daemon=True
        )
        self._thread.start()

    def flowing(self, limit_s: float) -> bool:
        """Wait until the first replayed frames are out (the frames are built first)."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and self._thread.is_alive():
            if sum(self._sim.ledger.counts.values()) - self._before > 1_000:
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        self._sim.ws.firehose.cancel()
        self._thread.join(10)


def _profile_report(spy: subprocess.Popen[bytes] | None, raw: Path) -> str:
    """Wait for py-spy and write its summary next to the raw stacks; return the summary's path."""
    if spy is None:
        return ""
    try:
        spy.wait(timeout=30)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()
    if not raw.exists():
        return ""
    report = raw.with_name("profile.txt")
    report.write_text(sampling.summarise(raw))
    return str(report)


def _children_cpu() -> float:
    """CPU seconds of this process's reaped children: exact for the recorder once it has exited."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _stop(process: subprocess.Popen[Any]) -> float:
    """SIGINT, the recorder's documented stop (flush, exit 0 within 5 s); return the seconds to its exit."""
    started = time.monotonic()
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return time.monotonic() - started


def _tail_text(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines()
    return " | ".join(lines[-2:])[:300] if lines else "no output"
