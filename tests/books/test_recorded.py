"""Books kept while recording the simulator, with faults: live rows, rows derived from the lake, `book --at`.

Three symbols for five minutes of market (the simulator's clock runs 10x), incrDepth + depth20@500ms, the
converter in its own process (resyncs reach the connections over the pipe).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from books.engine import Engine
from books.rebuild import book_at, derive
from books.tracker import SnapshotOptions
from books.validate import validate
from recorder.runner import Recorder
from simulator import Simulator
from storage.lake import Lake
from tests.recorder.conftest import FAST, options, query, recording, wait_for

SYMBOLS = ["BTC-USDT", "ETH-USDT", "SOL-USDT"]
SCALE = 10.0
MARKET_MS = 300_000
BOOKS = SnapshotOptions(levels=25, interval_ms=100, checkpoint_ms=60_000, tolerance_ms=1_500)
# (symbol, knob, resyncs it causes); `early` rides on the resubscribe the crossing update causes
FAULTS = [
    ("BTC-USDT", ("incr_repeat",), 1),
    ("ETH-USDT", ("incr_backward",), 1),
    ("SOL-USDT", ("incr_cross", "incr_early"), 2),
    ("BTC-USDT", ("incr_lose",), 1),
    ("ETH-USDT", ("incr_lose",), 1),
]

Levels = list[tuple[float, float]]


def _truth(sim: Simulator, symbol: str, t_ms: int, levels: int | None = None) -> tuple[Levels, Levels]:
    bids, asks = sim.true_book(symbol, t_ms)
    return (
        [(float(p), float(q)) for p, q in bids[:levels]],
        [(float(p), float(q)) for p, q in asks[:levels]],
    )


def _alls_after(sim: Simulator, symbol: str, since_ms: int) -> list[int]:
    frames = sim.ledger.frames(f"{symbol}@incrDepth")
    return [f.sent_ms for f in frames if f.payload["data"]["action"] == "all" and f.sent_ms > since_ms]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # Seeded, not random: with seed 465554 the wait for a fault's resubscribe timed out in CI (issue 15, not
    # yet explained; likeliest, a silent loss overwritten by a later update of the same level before it could
    # cross the book or outlast the depth20 tolerance, so no resync was due). BOOKS_SEED=N tries another.
    seed = int(os.environ.get("BOOKS_SEED", "189091"))
    print(f"books recording seed {seed}")
    data_dir = tmp_path_factory.mktemp("books")
    sim = Simulator(symbols=SYMBOLS, seed=seed, time_scale=SCALE, **FAST)
    windows: dict[str, list[tuple[int, int]]] = {s: [] for s in SYMBOLS}  # market ms a fault may spoil
    with sim:
        opts = options(
            sim, SYMBOLS, ["incrDepth", "depth20@500ms"], silence_timeout_s=30.0, converter="process",
            lake_interval_s=1.0, book_snapshots=BOOKS, resubscribe_after_s=0.0,
        )  # fmt: skip
        recorder = Recorder(data_dir, opts)
        with recording(data_dir, opts, recorder):
            clock: Callable[[], int] = sim.ws.clock
            start = clock()
            wait_for(lambda: all(_alls_after(sim, s, 0) for s in SYMBOLS))
            for index, (symbol, knobs, resyncs) in enumerate(FAULTS):
                wait_for(lambda i=index: clock() >= start + (i + 1) * MARKET_MS // (len(FAULTS) + 1), 60)
                before, injected = recorder.resubscribes, clock()
                for knob in knobs:
                    getattr(sim.faults, knob)(1, symbol)
                wait_for(lambda b=before, n=resyncs: recorder.resubscribes >= b + n, 30)
                wait_for(lambda s=symbol, t=injected, n=resyncs: len(_alls_after(sim, s, t)) >= n, 30)
                windows[symbol].append((injected, _alls_after(sim, symbol, injected)[resyncs - 1]))
            wait_for(lambda: clock() >= start + MARKET_MS, 60)
        time.sleep(0)  # the recorder converted everything on exit
    return {"seed": seed, "sim": sim, "data_dir": data_dir, "windows": windows, "recorder": recorder}


def _spoiled(windows: list[tuple[int, int]], t_ms: int) -> bool:
    return any(start <= t_ms <= end for start, end in windows)


@pytest.mark.slow
def test_every_fault_is_one_resync_row_and_the_topic_was_resubscribed(recorded: dict[str, Any]) -> None:
    lake = recorded["data_dir"] / "lake"
    rows = query(lake, "SELECT topic, detail FROM stream_events WHERE event = 'resync' ORDER BY received_at")
    kinds = [(r["topic"].split("@")[0], r["detail"].split(":")[0]) for r in rows]
    expected = sum(n for _, _, n in FAULTS)
    assert len(kinds) == expected, f"seed {recorded['seed']}: {kinds}"
    by_symbol = {s: [k for sym, k in kinds if sym == s] for s in SYMBOLS}
    assert by_symbol["BTC-USDT"][0] == "repeated id"
    assert by_symbol["ETH-USDT"][0] in ("backward id", "crossed book")  # a reordered pair may cross first
    assert by_symbol["SOL-USDT"] == ["crossed book", "update before snapshot"]
    for symbol in ("BTC-USDT", "ETH-USDT"):  # a silent loss: crossed, or seen by depth20 within tolerance
        # books/tracker.py's detail: "disagrees with depth20 for <tolerance> ms: <n> of <m> levels"
        second = by_symbol[symbol][1]
        assert second == "crossed book" or second.startswith("disagrees with depth20 for "), kinds
    assert recorded["recorder"].resubscribes == expected


@pytest.mark.slow
def test_the_book_equals_the_true_book_at_every_update_outside_fault_windows(
    recorded: dict[str, Any],
) -> None:
    sim, lake = recorded["sim"], recorded["data_dir"] / "lake"
    for symbol in SYMBOLS:
        updates = query(
            lake,
            "SELECT action, update_id, epoch_ms(event_time) AS t, bid_prices, bid_qtys, ask_prices, ask_qtys "
            f"FROM read_parquet('{lake}/book_updates/**/*.parquet', hive_partitioning = true, "
            f"filename = true, file_row_number = true) WHERE symbol = '{symbol}' "
            "ORDER BY received_at, filename, file_row_number",
        )
        engine, checked = Engine(symbol), 0
        for row in updates:
            engine.apply(
                row["action"], row["update_id"], row["t"],
                row["bid_prices"], row["bid_qtys"], row["ask_prices"], row["ask_qtys"],
            )  # fmt: skip
            if engine.valid and not _spoiled(recorded["windows"][symbol], row["t"]):
                assert engine.book.top(100) == _truth(sim, symbol, row["t"], 100), (
                    recorded["seed"],
                    row["t"],
                )
                checked += 1
        assert checked > 0.9 * len(updates), symbol
        assert engine.book.top() == _truth(sim, symbol, engine.book.event_time)  # whole book, at the end


@pytest.mark.slow
def test_books_derived_from_the_lake_are_the_rows_written_live(recorded: dict[str, Any]) -> None:
    lake_dir = recorded["data_dir"] / "lake"
    live = query(
        lake_dir,
        "SELECT * EXCLUDE (date, snapshot_time, event_time, received_at), epoch_ms(snapshot_time) AS "
        "snapshot_time, epoch_ms(event_time) AS event_time, epoch_us(received_at) AS received_at "
        "FROM book_snapshots",
    )
    assert {r["trigger"] for r in live} == {"interval", "snapshot", "checkpoint"}
    derived = []
    for _, tracker in derive(Lake(lake_dir), SYMBOLS, None, None, BOOKS):
        derived += tracker.take()[0]

    def keyed(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
        return {(r["symbol"], r["snapshot_time"], r["trigger"]): r for r in rows}

    assert len(keyed(derived)) == len(derived) == len(live)
    assert keyed(derived) == keyed(live), f"seed {recorded['seed']}"
    sim = recorded["sim"]
    for row in derived:
        if not _spoiled(recorded["windows"][row["symbol"]], row["event_time"]):
            depth = None if row["trigger"] == "checkpoint" else BOOKS.levels
            bids, asks = _truth(sim, row["symbol"], row["event_time"], depth)
            assert list(zip(row["bid_prices"], row["bid_qtys"], strict=True)) == bids
            assert list(zip(row["ask_prices"], row["ask_qtys"], strict=True)) == asks


@pytest.mark.slow
def test_book_at_twenty_seeded_instants_equals_the_simulators_book(recorded: dict[str, Any]) -> None:
    sim, seed = recorded["sim"], recorded["seed"]
    rng = random.Random(seed)
    checked = 0
    while checked < 20:
        symbol = rng.choice(SYMBOLS)
        sent = [f.payload["data"]["time"] for f in sim.ledger.frames(f"{symbol}@incrDepth")]
        at = rng.randrange(sent[10], sent[-1])
        if _spoiled(recorded["windows"][symbol], at):
            continue
        last = max(t for t in sent if t <= at)  # what the exchange had published by then (`all` included)
        found = book_at(recorded["data_dir"], symbol, at)
        assert (found.bids, found.asks) == _truth(sim, symbol, last), f"seed {seed}: {symbol} at {at}"
        assert found.event_time == last
        checked += 1


@pytest.mark.slow
def test_validate_finds_the_depth20_frames_equal_to_the_book(recorded: dict[str, Any]) -> None:
    lake = Lake(recorded["data_dir"] / "lake")
    for symbol in SYMBOLS:
        # Between the fault windows: a fault is a disagreement until its resync, on purpose.
        edges = [None, *(t for window in recorded["windows"][symbol] for t in window), None]
        exact = disagree = lag = 0
        for since, until in zip(edges[::2], edges[1::2], strict=True):
            (report,) = validate(lake, [symbol], since, until, BOOKS.tolerance_ms)
            print(report.line())
            exact, disagree, lag = exact + report.exact, disagree + report.disagree, lag + report.lag
        assert exact / (exact + disagree) >= 0.999, (symbol, exact, disagree, recorded["seed"])
        # Lag (the two feeds on separate timers) depends on the seeded market (SOL-USDT: 230 of 577 pairs
        # with seed 465554); a validator calling everything lag would still fail this.
        assert exact + disagree > 100 and lag < exact, (symbol, exact, disagree, lag)
    (whole,) = validate(lake, ["BTC-USDT"], None, None, BOOKS.tolerance_ms)
    assert sum(whole.resyncs.values()) == 2  # the repeat and the loss, nothing else
