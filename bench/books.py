"""Books: incrDepth updates applied per second per core, and `book_at` latency over a day of one busy symbol.

The day comes from the simulator's incrDepth feed (BTC-USDT, a push every 200 ms: 432,000 updates; half
an hour generated and repeated), converted by the real converter, written with `Lake.write_table` one
file per hour, with full-depth checkpoints every 5 minutes derived by `books.rebuild.derive`; cached in
bench/results/.cache/.
"""

from __future__ import annotations

import gc
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.harness import Config, Figure, figure, rates, seconds, unavailable

SECTION = "books"
SYMBOL = "BTC-USDT"
PUSH_MS = 200
DAY_START_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
HOUR_MS = 3_600_000
COPY_MS = HOUR_MS // 2


def shape(config: Config) -> tuple[int, int]:
    """(hours of the generated day, updates timed for the apply rate)."""
    if config.smoke:
        return 1, 2_000
    return (2, 20_000) if config.quick else (24, 100_000)


def run(config: Config) -> list[Figure]:
    try:
        from books.engine import Engine
        from books.rebuild import book_at
        from books.tracker import BookTracker, SnapshotOptions
    except ImportError as error:
        return [unavailable(SECTION, "books", "updates/s", f"books not importable: {error}")]
    hours, timed = shape(config)
    rows = _updates(DAY_START_MS, timed * PUSH_MS)
    levels = sum(len(row["bid_prices"]) + len(row["ask_prices"]) for row in rows) / len(rows)
    note = f"{len(rows):,} simulator BTC-USDT updates of {levels:.0f} levels (1,000-level book), one core"

    def apply() -> None:
        engine = Engine(SYMBOL)
        for row in rows:
            engine.apply(row["action"], row["update_id"], row["event_time"], row["bid_prices"],
                         row["bid_qtys"], row["ask_prices"], row["ask_qtys"])  # fmt: skip

    def track() -> None:
        tracker = BookTracker(SnapshotOptions(25, 100, 300_000))
        for index, row in enumerate(rows):
            tracker.update(row)
            if index % 4096 == 0:
                tracker.take()  # as the converter does per chunk: rows do not pile up

    with _converter_gc():
        applied, tracked = rates(apply, len(rows), config.repeats), rates(track, len(rows), config.repeats)
    figures = [
        figure(SECTION, "updates applied (engine)", "updates/s", applied,
               note=note),
        figure(SECTION, "updates applied + book_snapshots 25@100ms", "updates/s",
               tracked, note=note),
    ]  # fmt: skip
    data_dir, built_s = _ensure_day(config.cache, hours)
    day_note = (
        f"{hours} h of {SYMBOL} book_updates at {PUSH_MS} ms (a generated half hour repeated), one file an"
        " hour, checkpoints every 5 min"
    )
    if built_s:
        figures.append(figure(SECTION, "generate the day", "s", [built_s], note=day_note))
    rng = random.Random(7)
    instants = [
        DAY_START_MS + rng.randrange(60_000, hours * HOUR_MS) for _ in range(max(5, config.repeats * 4))
    ]
    book_at(data_dir, SYMBOL, instants[0], 25)  # warm: imports, DuckDB, the OS page cache
    samples = []
    for at in instants:
        samples += seconds(lambda at=at: book_at(data_dir, SYMBOL, at, 25), 1)
    figures.append(
        figure(SECTION, "book_at (Python, warm process)", "ms", [s * 1000 for s in samples],
               note=day_note + f"; {len(instants)} random instants", target="<= 200")
    )  # fmt: skip
    figures.append(_cli(data_dir, instants[:3], day_note))
    figures += _converter_cpu(config)
    return figures


def _converter_cpu(config: Config) -> list[Figure]:
    """The converter's CPU per frame over the same journal of incrDepth + depth20 frames, snapshots off/on.

    Not the whole recorder at the whole market's rate (the ingest section's harness): the part the books
    add, measured in one process back to back, so the ratio is the figure to read.
    """
    from books.tracker import SnapshotOptions
    from recorder.convert import Converter
    from storage.journal import DATA, JournalWriter

    symbols, seconds_of_market = (2, 10) if config.smoke else (20, 60 if config.quick else 240)
    frames = _market_frames(symbols, seconds_of_market)
    work = config.work / "books-converter"
    shutil.rmtree(work, ignore_errors=True)
    journal = JournalWriter(work / "template" / "journal")
    for seq, (received_us, kind, payload) in enumerate(frames):
        journal.append(received_us, "bench-00", seq, kind, payload)
    journal.close()
    updates = [p for _, kind, p in frames if kind == DATA and b'"action":"update"' in p]
    levels = sum(p.count(b'",') for p in updates) / max(1, len(updates)) / 2  # ~ levels per update
    note = (
        f"{len(frames):,} frames: incrDepth (~{levels:.0f} levels an update) + depth20@500ms of {symbols}"
        " simulator symbols; journal to Parquet, seals included"
    )
    samples: dict[str, list[float]] = {"off": [], "on": []}
    for run in range(config.repeats):
        for mode, options in (("off", None), ("on", SnapshotOptions(25, 100, 300_000))):
            data_dir = work / f"{mode}-{run}"
            shutil.copytree(work / "template", data_dir)
            converter = Converter(data_dir, book_snapshots=options)
            started = time.process_time()
            converter.drain()
            samples[mode].append((time.process_time() - started) / len(frames) * 1e6)
            shutil.rmtree(data_dir)
    ratio = [on / off for on, off in zip(samples["on"], samples["off"], strict=True)]
    return [
        figure(SECTION, "converter CPU per frame, book_snapshots off", "µs/frame", samples["off"], note=note),
        figure(
            SECTION, "converter CPU per frame, book_snapshots 25@100ms", "µs/frame", samples["on"], note=note
        ),
        figure(SECTION, "converter CPU, snapshots on / off", "x", ratio, note="same-run pairs"),
    ]


def _market_frames(symbols: int, seconds_of_market: int) -> list[tuple[int, int, bytes]]:
    """(received µs, journal kind, payload) of a `subscribed` event and the frames of each topic, by time."""
    import orjson

    from recorder.connection import event_payload
    from simulator import ws_topics as wt
    from simulator.market import Market
    from simulator.ws_feed import FeedOptions, IncrDepthFeed, feed_for
    from storage.journal import DATA, EVENT

    names = ["BTC-USDT", "ETH-USDT", *(f"S{i:03d}-USDT" for i in range(symbols - 2))][:symbols]
    market = Market(symbols=names, seed=11)
    start = DAY_START_MS
    out: list[tuple[int, int, bytes]] = []
    feeds = []
    for name in names:
        for channel in ("incrDepth", "depth20@500ms"):
            topic = wt.parse_topic(f"{name}@{channel}", market)
            assert topic is not None
            feed = feed_for(topic, market, FeedOptions(seed=11), start)
            feeds.append(feed)
            if isinstance(feed, IncrDepthFeed):
                out.append((start * 1000, EVENT, event_payload("subscribed", topic.name, 0)))
                feed.build(start)
                out.append((start * 1000 + 1, DATA, orjson.dumps(feed.snapshot(start))))
    for now in range(start + 10, start + seconds_of_market * 1000, 10):
        for feed in feeds:
            if feed.is_due(now):
                out += [(now * 1000 + 2, DATA, orjson.dumps(message)) for message in feed.tick(now)]
    return out


@contextmanager
def _converter_gc() -> Iterator[None]:
    """The converter process's collector settings (recorder/process.py): rows are dicts, cycles rare."""
    threshold = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _cli(data_dir: Path, instants: list[int], note: str) -> Figure:
    """`bingx-recorder book` end to end: the CLI's start-up is in this figure, not in book_at's."""
    samples = []
    for at in instants:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "cli", "--data-dir", str(data_dir), "book", SYMBOL, "--at", str(at),
             "--levels", "25", "--format", "json"],
            check=True, capture_output=True, cwd=Path(__file__).resolve().parents[1],
        )  # fmt: skip
        samples.append((time.perf_counter() - start) * 1000)
    return figure(
        SECTION, "bingx-recorder book --at (new process)", "ms", samples, note=note + "; start-up included"
    )


def _updates(start_ms: int, span_ms: int) -> list[dict[str, Any]]:
    """The simulator's incrDepth frames for [start, start + span) as book_updates rows (the `all` first)."""
    return [row for hour in _hours(start_ms, span_ms) for row in hour]


def _hours(start_ms: int, span_ms: int) -> Iterator[list[dict[str, Any]]]:
    """The same rows an hour at a time (a day of them does not fit in memory as dicts)."""
    from schemas.depth import update_from_stream
    from simulator import ws_topics as wt
    from simulator.market import Market
    from simulator.ws_feed import FeedOptions, IncrDepthFeed, feed_for

    market = Market(symbols=[SYMBOL], seed=7)
    topic = wt.parse_topic(f"{SYMBOL}@incrDepth", market)
    assert topic is not None
    feed = feed_for(topic, market, FeedOptions(seed=7), start_ms)
    assert isinstance(feed, IncrDepthFeed)
    feed.build(start_ms)
    rows: list[dict[str, Any]] = []

    def add(message: dict[str, Any]) -> None:
        for row in update_from_stream(message):
            row["received_at"] = (row["event_time"] + 3) * 1000 + len(rows) % 1000
            row["source"] = "stream"
            rows.append(row)

    add(feed.snapshot(start_ms))
    hour_end = start_ms + HOUR_MS
    for now in range(start_ms + PUSH_MS, start_ms + span_ms, PUSH_MS):
        if now >= hour_end:
            yield rows
            rows, hour_end = [], hour_end + HOUR_MS
        for message in feed.build(now):
            add(message)
    yield rows


def _shifted(row: dict[str, Any], copy: int, id_span: int) -> dict[str, Any]:
    shift = copy * COPY_MS
    return {
        **row,
        "event_time": row["event_time"] + shift,
        "received_at": row["received_at"] + shift * 1000,
        "update_id": row["update_id"] + copy * id_span,
    }


def _ensure_day(cache: Path, hours: int) -> tuple[Path, float]:
    """The cached day's data dir, and the seconds spent building it now (0 when it was cached)."""
    from books.rebuild import derive
    from books.tracker import SnapshotOptions
    from schemas import DATASETS
    from storage.lake import Lake
    from storage.validation import table_from_rows

    data_dir = cache / f"books-day-{hours}h"
    if (data_dir / "ready").exists():
        return data_dir, 0.0
    shutil.rmtree(data_dir, ignore_errors=True)
    started = time.perf_counter()
    lake = Lake(data_dir / "lake")
    dataset = DATASETS["book_updates"]
    # The simulator's live book costs ~2.5 ms a push, so half an hour of it is generated and repeated, ids
    # and times shifted, each copy opening with its `all` (a resubscribe): a day's rows, levels and files.
    base = _updates(DAY_START_MS, COPY_MS if hours > 1 else 60_000)  # smoke: a minute
    id_span = base[-1]["update_id"] - base[0]["update_id"] + 10
    for hour in range(hours):  # one file an hour: what compaction leaves of the recorder's files
        part = [_shifted(row, copy, id_span) for copy in (2 * hour, 2 * hour + 1) for row in base]
        lake.write_table(dataset, table_from_rows(dataset, part))
    for _, tracker in derive(lake, [SYMBOL], None, None, SnapshotOptions(1, 300_000, 300_000)):
        checkpoints = [row for row in tracker.take()[0] if row["trigger"] == "checkpoint"]
        lake.write(DATASETS["book_snapshots"], checkpoints)
    (data_dir / "ready").write_text("")
    return data_dir, time.perf_counter() - started
