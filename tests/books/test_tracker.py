"""The tracker's rows and the depth-frame checks: pure, rows in and rows out."""

from __future__ import annotations

from typing import Any

from books.depthcheck import DISAGREE, EXACT, LAG, DepthCheck, Frame
from books.engine import DISAGREES, Book, Engine
from books.tracker import BookTracker, SnapshotOptions

T0 = 1_790_000_000_000


def _update(update_id: int, t: int, bids: list[tuple[float, float]], asks: list[tuple[float, float]],
            action: str = "update") -> dict[str, Any]:  # fmt: skip
    return {
        "symbol": "X",
        "action": action,
        "update_id": update_id,
        "event_time": t,
        "bid_prices": [p for p, _ in bids],
        "bid_qtys": [q for _, q in bids],
        "ask_prices": [p for p, _ in asks],
        "ask_qtys": [q for _, q in asks],
        "received_at": t * 1000 + 5,
        "source": "stream",
    }


def _depth(t: int, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> dict[str, Any]:
    row = _update(0, t, bids, asks)
    row["levels"] = 2
    return row


BIDS = [(100.0, 1.0), (99.0, 2.0)]
ASKS = [(101.0, 1.0), (102.0, 2.0)]


def test_a_row_shows_the_book_at_the_first_instant_after_each_change() -> None:
    tracker = BookTracker(SnapshotOptions(levels=1, interval_ms=100, checkpoint_ms=1_000))
    tracker.update(_update(10, T0 + 30, BIDS, ASKS, "all"))
    tracker.update(_update(11, T0 + 60, [(100.0, 5.0)], []))  # same 100 ms slot: no row for the old book
    tracker.update(_update(12, T0 + 450, [(100.0, 6.0)], []))  # the book of 60 held at 100..400
    tracker.update(_update(13, T0 + 1_250, [(100.0, 7.0)], []))  # crosses the 1 s checkpoint
    rows, resyncs = tracker.take()
    assert resyncs == []
    summary = [(r["trigger"], r["snapshot_time"] - T0, r["update_id"], r["bid_qtys"]) for r in rows]
    assert summary == [
        ("snapshot", 30, 10, [1.0]),
        ("interval", 100, 11, [5.0]),
        ("interval", 500, 12, [6.0]),
        ("checkpoint", 1_000, 12, [6.0, 2.0]),  # full depth
    ]
    assert all(r["received_at"] > 0 and r["source"] == "stream" for r in rows)


def test_the_snapshot_after_a_resync_carries_its_reason() -> None:
    tracker = BookTracker(SnapshotOptions(levels=2, interval_ms=100, checkpoint_ms=0))
    tracker.subscribed("X")
    tracker.update(_update(5, T0, BIDS, []))  # before any snapshot
    tracker.update(_update(6, T0 + 10, BIDS, ASKS, "all"))
    rows, resyncs = tracker.take()
    assert [r.reason.split(":")[0] for r in resyncs] == ["update before snapshot"]
    assert [(r["trigger"], r["resync_reason"].split(":")[0]) for r in rows] == [
        ("snapshot", "update before snapshot")
    ]


def test_a_replay_that_starts_mid_stream_waits_quietly_for_a_snapshot() -> None:
    tracker = BookTracker(None)
    tracker.update(_update(5, T0, BIDS, []))
    assert tracker.take() == ([], []) and not tracker.engines["X"].valid


def _book(bids: list[tuple[float, float]], asks: list[tuple[float, float]], t: int, update_id: int) -> Book:
    engine = Engine("X")
    bid_prices, bid_qtys = [p for p, _ in bids], [q for _, q in bids]
    ask_prices, ask_qtys = [p for p, _ in asks], [q for _, q in asks]
    engine.apply("all", update_id, t, bid_prices, bid_qtys, ask_prices, ask_qtys)
    return engine.book


def _frame(t: int, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> Frame:
    return Frame(t, 2, tuple(bids), tuple(asks))


def test_a_frame_is_exact_at_its_instant_lag_between_pushes_and_else_a_disagreement() -> None:
    check = DepthCheck(tolerance_ms=1_000)
    before = _book(BIDS, ASKS, T0, 1)
    after_bids = [(100.0, 3.0), (99.0, 2.0)]
    assert [v.outcome for v in check.frame(_frame(T0 + 10, BIDS, ASKS), before)] == [EXACT]
    # The next push's change, shown early: undecided until that push arrives, then lag.
    assert check.frame(_frame(T0 + 20, [(100.0, 3.0), (99.0, 2.0)], ASKS), before) == []
    assert [v.outcome for v in check.state(_book(after_bids, ASKS, T0 + 50, 2))] == [LAG]
    later = _book(after_bids, ASKS, T0 + 60, 3)
    check.frame(_frame(T0 + 55, [(100.0, 3.0), (99.0, 9.0)], ASKS), later)  # 99.0 never had 9.0
    outcomes: list[str] = []
    for step in range(4):
        outcomes += [v.outcome for v in check.state(_book(after_bids, ASKS, T0 + 70 + step, 4 + step))]
    assert outcomes == [DISAGREE]


def test_a_lost_update_that_does_not_cross_is_a_resync_once_it_lasts_past_the_tolerance() -> None:
    tracker = BookTracker(SnapshotOptions(levels=2, interval_ms=100, checkpoint_ms=0, tolerance_ms=1_000))
    tracker.update(_update(1, T0, BIDS, ASKS, "all"))
    # The exchange changed 99.0 to 4.0 in an update we never got; every later frame shows it.
    shown = [(100.0, 1.0), (99.0, 4.0)]
    t, found = T0, []
    for step in range(1, 40):
        t = T0 + step * 100
        tracker.update(_update(1 + step, t, [(100.0, 1.0)], []))  # repeats a level: no change
        if step % 3 == 0:
            tracker.depth(_depth(t + 1, shown, ASKS))
        found += tracker.take()[1]
    assert len(found) == 1 and found[0].reason.startswith(DISAGREES + "2 for 1000 ms"), found
    assert not tracker.engines["X"].valid and tracker.figures["X"].resyncs[DISAGREES + "2 for 1000 ms"] == 1
