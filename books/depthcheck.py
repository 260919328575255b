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
    outcome: str  # exact | lag | disagree
    differing: int  # levels (of both sides) that differ from the book at the frame's instant
    update_id: int  # the update the frame was compared with


def frame_of(time: int, levels: int, bid_prices: Sequence[float], bid_qtys: Sequence[float],
             ask_prices: Sequence[float], ask_qtys: Sequence[float]) -> Frame:  # fmt: skip
    """A Frame from the column lists of a depth_snapshots row (already best first)."""
    bids = tuple(zip(bid_prices, bid_qtys, strict=True))[:levels]
    asks = tuple(zip(ask_prices, ask_qtys, strict=True))[:levels]
    return Frame(time, levels, bids, asks)


class _State:
    __slots__ = ("asks", "bids", "event_time", "update_id")

    def __init__(self, book: Book, levels: int) -> None:
        self.event_time, self.update_id = book.event_time, book.update_id
        self.bids = tuple(book.bids.top(levels))
        self.asks = tuple(book.asks.top(levels))

    def differing(self, frame: Frame) -> int:
        return _differing(self.bids, frame.bids, frame.levels) + _differing(
            self.asks, frame.asks, frame.levels
        )


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
        self._ring.append(_State(book, self.levels))
        return self._settle()

    def frame(self, frame: Frame, book: Book | None) -> list[Verdict]:
        """Take a depth frame (book: the current valid book, or None); return verdicts it settles."""
        if book is None:
            return []
        if frame.levels > self.levels:  # deeper than the states kept: start keeping that depth
            self.levels = frame.levels
            self._ring.clear()
            self._pending.clear()
            self._ring.append(_State(book, self.levels))
        self._pending.append(frame)
        return self._settle()

    def is_lasting(self, verdicts: Sequence[Verdict]) -> Verdict | None:
        """Track disagreement over time; return the verdict that makes one last longer than the tolerance."""
        for verdict in verdicts:
            if verdict.outcome != DISAGREE:
                self._since = None
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
        ring = self._ring
        at = -1
        for index, state in enumerate(ring):  # the last state with a time <= the frame's
            if state.event_time <= frame.time:
                at = index
            else:
                break
        if at >= 0:
            differing = ring[at].differing(frame)
            if differing == 0:
                return Verdict(frame, EXACT, 0, ring[at].update_id)
        else:
            differing = ring[0].differing(frame) if ring else 2 * frame.levels
        later = len(ring) - 1 - at
        for index in range(max(0, at - LAG_STATES), min(len(ring), at + LAG_STATES + 1)):
            if ring[index].differing(frame) == 0:
                return Verdict(frame, LAG, 0, ring[index].update_id)
        if later >= LAG_STATES:
            return Verdict(frame, DISAGREE, differing, ring[max(at, 0)].update_id)
        return None
