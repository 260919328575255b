"""Judge depth<N> frames (and REST depth polls) against the incrDepth book of the same instant. Pure.

A frame is compared with the book after the last update whose exchange time is <= the frame's time. The
two feeds tick on separate timers, so a frame that instead equals the book a few pushes earlier or later is
`lag`, not a disagreement. A disagreement that lasts longer than `tolerance_ms` is a lost update that did
not cross the book: the caller resyncs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from books.engine import Book

EXACT, LAG, DISAGREE = "exact", "lag", "disagree"
SKIPPED = "skipped"  # older than every book state kept (just after a snapshot): nothing to compare with
LAG_STATES = 3  # how many pushes either side of the frame's instant still count as lag
_RING = 16
DEFAULT_TOLERANCE_MS = 5_000


@dataclass(frozen=True)
class Frame:
    """One partial book: both sides best first, `levels` deep, taken at `time` (epoch ms)."""

    time: int
    levels: int
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Verdict:
    frame: Frame
    outcome: str  # exact | lag | disagree | skipped
    differing: int  # disagree: levels (both sides) that neither push around the frame's instant explains
    update_id: int  # the update the frame was compared with


def frame_of(time: int, levels: int, bid_prices: Sequence[float], bid_qtys: Sequence[float],
             ask_prices: Sequence[float], ask_qtys: Sequence[float]) -> Frame:  # fmt: skip
    """A Frame from the column lists of a depth_snapshots row (already best first)."""
    bids = tuple(zip(bid_prices, bid_qtys, strict=True))[:levels]
    asks = tuple(zip(ask_prices, ask_qtys, strict=True))[:levels]
    return Frame(time, levels, bids, asks)


class _State:
    __slots__ = ("asks", "bids", "depth", "event_time", "update_id")

    def __init__(self, book: Book, depth: int) -> None:
        self.event_time, self.update_id, self.depth = book.event_time, book.update_id, depth
        self.bids = tuple(book.bids.top(depth))
        self.asks = tuple(book.asks.top(depth))

    def differing(self, frame: Frame) -> int:
        return _differing(self.bids, frame.bids, frame.levels) + _differing(
            self.asks, frame.asks, frame.levels
        )


def _unexplained(before: _State, after: _State, frame: Frame) -> int:
    """Levels of the frame that differ from a level both pushes around its instant agree on.

    The feeds tick on separate timers: a frame taken between two pushes may show any of the changes the
    second one brings, but never a level both pushes agree on with another quantity. Between the best
    prices of the three, levels may have changed sides and back while the mid moved: not judged.
    """
    sides = (before.bids, before.asks, after.bids, after.asks, frame.bids, frame.asks)
    if not all(sides):
        return _differing(before.bids, frame.bids, frame.levels) + _differing(
            before.asks, frame.asks, frame.levels
        )
    low = min(before.bids[0][0], after.bids[0][0], frame.bids[0][0])
    high = max(before.asks[0][0], after.asks[0][0], frame.asks[0][0])
    band = (low, high)
    bids = _side_unexplained(before.bids, after.bids, frame.bids, before.depth, frame.levels, True, band)
    asks = _side_unexplained(before.asks, after.asks, frame.asks, before.depth, frame.levels, False, band)
    return bids + asks


Side = tuple[tuple[float, float], ...]


def _side_unexplained(
    a: Side, b: Side, f: Side, depth: int, levels: int, descending: bool, band: tuple[float, float]
) -> int:
    # Judge only prices all three lists reach: a full list ends at its worst price, a short one is the book.
    edges = [side[-1][0] for side, n in ((a, depth), (b, depth), (f, levels)) if len(side) >= n and side]
    before, after, shown = dict(a), dict(b), dict(f)
    count = 0
    for price in before.keys() | after.keys() | shown.keys():
        if edges and (price < max(edges) if descending else price > min(edges)):
            continue
        if band[0] <= price <= band[1]:
            continue
        qty = before.get(price, 0.0)
        if qty == after.get(price, 0.0) and shown.get(price, 0.0) != qty:
            count += 1
    return count


def _differing(book: tuple[tuple[float, float], ...], frame: tuple[tuple[float, float], ...], n: int) -> int:
    # A frame shorter than N (a thin book) must be matched by an equally thin book.
    mine = book[:n]
    count = sum(1 for a, b in zip(mine, frame, strict=False) if a != b)
    return count + abs(len(mine) - len(frame))


class DepthCheck:
    """The recent book states of one symbol and the frames still waiting for theirs."""

    def __init__(self, tolerance_ms: int = DEFAULT_TOLERANCE_MS) -> None:
        self.tolerance_ms = tolerance_ms
        self.levels = 0  # depth kept per state: the deepest frame seen so far
        self._ring: deque[_State] = deque(maxlen=_RING)
        self._pending: list[Frame] = []
        self._since: int | None = None  # time of the first frame of the current disagreement

    def reset(self) -> None:
        """Forget the states (the book was resynced); pending frames cannot be judged any more."""
        self._ring.clear()
        self._pending.clear()
        self._since = None

    def state(self, book: Book) -> list[Verdict]:
        """Note the book after an applied update; return the verdicts this settles."""
        if not self.levels:
            return []
        self._ring.append(_State(book, 2 * self.levels))
        return self._settle()

    def frame(self, frame: Frame, book: Book | None) -> list[Verdict]:
        """Take a depth frame (book: the current valid book, or None); return verdicts it settles."""
        if book is None:
            return []
        if frame.levels > self.levels:  # deeper than the states kept: start keeping that depth
            self.levels = frame.levels
            self._ring.clear()
            self._pending.clear()
            self._ring.append(_State(book, 2 * self.levels))
        self._pending.append(frame)
        return self._settle()

    def is_lasting(self, verdicts: Sequence[Verdict]) -> Verdict | None:
        """Track disagreement over time; return the verdict that makes one last longer than the tolerance."""
        for verdict in verdicts:
            if verdict.outcome in (EXACT, LAG):
                self._since = None
            if verdict.outcome != DISAGREE:
                continue
            if self._since is None:
                self._since = verdict.frame.time
            if verdict.frame.time - self._since >= self.tolerance_ms:
                self._since = None
                return verdict
        return None

    def _settle(self) -> list[Verdict]:
        settled: list[Verdict] = []
        waiting: list[Frame] = []
        for frame in self._pending:
            verdict = self._judge(frame)
            if verdict is None:
                waiting.append(frame)
            else:
                settled.append(verdict)
        self._pending = waiting
        return settled

    def _judge(self, frame: Frame) -> Verdict | None:
        """Exact: the book at the frame's instant. Lag: a push nearby, or between the two around it."""
        ring = self._ring
        at = -1
        for index, state in enumerate(ring):  # the last state with a time <= the frame's
            if state.event_time <= frame.time:
                at = index
            else:
                break
        if at < 0:
            return Verdict(frame, SKIPPED, 0, 0) if ring else None
        if ring[at].differing(frame) == 0:
            return Verdict(frame, EXACT, 0, ring[at].update_id)
        for index in range(max(0, at - LAG_STATES), min(len(ring), at + LAG_STATES + 1)):
            if ring[index].differing(frame) == 0:
                return Verdict(frame, LAG, 0, ring[index].update_id)
        if at + 1 == len(ring):
            return None  # the next push decides
        unexplained = _unexplained(ring[at], ring[at + 1], frame)
        if unexplained == 0:
            return Verdict(frame, LAG, 0, ring[at].update_id)
        if len(ring) - 1 - at >= LAG_STATES:
            return Verdict(frame, DISAGREE, unexplained, ring[at].update_id)
        return None
