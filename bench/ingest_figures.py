"""Ingest figures: what one recorder run measured, and the table rows it becomes."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import schemas
from bench.harness import Figure, figure, unavailable

SECTION = "ingest"
CHANNELS = schemas.CHANNELS
FIXED_RATE = 15_000  # frames/s: the whole BingX USDT-M market on eight channels (issue 4)
PREPARE_S = 240.0  # the firehose builds its frames first (~0.1 s per topic on this box)
BOOKS = "25@100ms"  # --book-snapshots of the third run: the default top-N and cadence
POOL = 16  # pre-encoded frames per topic that the simulator's firehose cycles through


@dataclass
class Run:
    """What one recorder run produced; `problem` says why figures are missing."""

    window_s: float = 0.0
    pushed: int = 0  # frames the simulator sent in the measured window
    sent: int = 0  # every data frame the simulator sent, subscription snapshots included
    landed: int = 0
    cpu_s: float = 0.0  # recorder tree CPU during the window
    cpu_receive_s: float = 0.0  # of which the main process's (receive + journal); the rest is the converter
    cpu_to_exit_s: float = 0.0  # from the window's start to the recorder's exit: includes the final flush
    cpu_total_s: float = 0.0  # the recorder's whole life: start-up, subscribing, the window, the flush
    landed_at_exit: int = 0  # frames in Parquet when the recorder exited (the rest was journaled)
    recovery_cpu_s: float = 0.0  # a second start converting the journal left behind
    recovery_s: float = 0.0
    peak_rss_mb: float = 0.0
    stop_s: float = 0.0  # SIGINT to exit: the last seal of up to one lake interval included
    window_start_us: float = 0.0
    profile: str = ""  # the cProfile report of the recorder's main process, when asked for
    journal_ms: list[float] = field(default_factory=list)
    visible_ms: list[float] = field(default_factory=list)
    problem: str = ""


def throughput_figures(result: Run, symbols: int) -> list[Figure]:
    """Frames/s sent and landed with the simulator flat out, and frames per recorder CPU-second."""
    topics = symbols * len(CHANNELS)
    name = f"max rate, {topics} topics"
    if result.problem or not result.landed:
        return [unavailable(SECTION, f"{name}: frames/s", "frames/s", result.problem or "nothing landed")]
    note = f"{result.pushed:,} frames in {result.window_s:.1f} s; landed {result.landed:,} of {result.sent:,}"
    return [
        figure(
            SECTION, f"{name}: frames/s end to end", "frames/s", [result.pushed / result.window_s], note=note
        ),
        figure(
            SECTION,
            f"{name}: frames landed per recorder CPU-second",
            "frames/s/core",
            [result.landed / (result.cpu_total_s + result.recovery_cpu_s)],
            target=">= 30,000",
            note="frames in Parquet / the recorder's CPU over its whole life (start-up and flush included)"
            + f"; receiving took {1e6 * result.cpu_receive_s / max(result.pushed, 1):.1f} µs a frame"
            + (
                f" and the restarts that converted the journal left ({result.recovery_cpu_s:.1f} s CPU)"
                if result.recovery_s
                else ""
            )
            + (f"; profile: {result.profile}" if result.profile else ""),
        ),
        *landed_figures(name, result),
        *latency_figures("max rate", result),
    ]


def fixed_figures(result: Run, symbols: int, per_s: float) -> list[Figure]:
    """CPU% of one core and peak RSS at the whole market's frame rate."""
    name = f"{per_s:,.0f} frames/s, {symbols * len(CHANNELS)} topics"
    if result.problem or not result.landed:
        return [unavailable(SECTION, f"{name}: CPU", "% of a core", result.problem or "nothing landed")]
    note = (
        f"pushed {result.pushed / result.window_s:,.0f} frames/s; landed {result.landed:,} of {result.sent:,}"
        f"; receive+journal {100 * result.cpu_receive_s / result.window_s:.0f}%,"
        f" converter {100 * (result.cpu_s - result.cpu_receive_s) / result.window_s:.0f}%"
    )
    return [
        figure(
            SECTION,
            f"{name}: CPU during the window",
            "% of a core",
            [100 * result.cpu_s / result.window_s],
            target="<= 60",
            note=note,
        ),
        figure(
            SECTION,
            f"{name}: CPU incl. final flush",
            "% of a core",
            [100 * result.cpu_to_exit_s / result.window_s],
            note="CPU to exit / window length",
        ),
        figure(
            SECTION,
            f"{name}: peak RSS",
            "MiB",
            [result.peak_rss_mb],
            target="<= 300",
            note="largest VmHWM in the recorder's process tree",
        ),
        figure(
            SECTION,
            f"{name}: SIGINT to exit",
            "s",
            [result.stop_s],
            target="< 5",
            note="stop reading, seal what was converted, exit (what is left converts on the next start)",
        ),
        *landed_figures(name, result),
        *latency_figures(name, result),
    ]


def books_figures(off: Run, on: Run, symbols: int, per_s: float, rates: str) -> list[Figure]:
    """The recorder's CPU at the whole market's rate with book snapshots on, against the same run off."""
    name = f"{per_s:,.0f} frames/s, {symbols * len(CHANNELS)} topics, book snapshots {BOOKS}"
    if on.problem or not on.landed:
        return [unavailable(SECTION, f"{name}: CPU", "% of a core", on.problem or "nothing landed")]
    cpu = 100 * on.cpu_s / on.window_s
    note = (
        f"top 25 every 100 ms, checkpoints every 5 min ({rates}); landed {on.landed:,} of"
        f" {on.sent:,}; receive+journal {100 * on.cpu_receive_s / on.window_s:.0f}%,"
        f" converter {100 * (on.cpu_s - on.cpu_receive_s) / on.window_s:.0f}%"
    )
    figures = [figure(SECTION, f"{name}: CPU during the window", "% of a core", [cpu], note=note)]
    if off.window_s and off.cpu_s and not off.problem:
        ratio = cpu / (100 * off.cpu_s / off.window_s)
        figures.append(figure(SECTION, f"{name}: CPU on / off", "x", [ratio], note="back-to-back runs"))
    figures.append(
        figure(SECTION, f"{name}: peak RSS", "MiB", [on.peak_rss_mb], note="largest VmHWM in the tree")
    )
    return figures + landed_figures(name, on)


def landed_figures(name: str, result: Run) -> list[Figure]:
    """Share of the sent frames in Parquet when the recorder exited, and after it converted its journal."""
    at_exit = figure(
        SECTION,
        f"{name}: landed at exit / sent",
        "%",
        [100 * result.landed_at_exit / max(result.sent, 1)],
        note="the rest was journaled, not lost: the recorder converts it first on its next start",
    )
    if not result.recovery_s:
        return [at_exit]
    recovered = figure(
        SECTION,
        f"{name}: landed after journal recovery / sent",
        "%",
        [100 * result.landed / max(result.sent, 1)],
        target="100",
        note=f"restarts (up to 3 x 20 s) converted the journal left in {result.recovery_s:.1f} s",
    )
    return [at_exit, recovered]


def latency_figures(label: str, result: Run) -> list[Figure]:
    """p50/p99 from receipt to the journal and to the views; unavailable when nothing was sampled."""
    figures = []
    for name, values, how in (
        ("received -> journaled", result.journal_ms, "seen by a 20 ms journal poller: includes up to 20 ms"),
        ("received -> visible in views", result.visible_ms, "Parquet file mtime minus received_at"),
    ):
        if len(values) < 2:
            figures.append(unavailable(SECTION, f"{label}: {name} p50/p99", "ms", f"no samples ({how})"))
            continue
        cuts = statistics.quantiles(values, n=100)
        figures.append(figure(SECTION, f"{label}: {name} p50", "ms", [cuts[49]], note=how))
        figures.append(figure(SECTION, f"{label}: {name} p99", "ms", [cuts[98]], note=how))
    return figures
