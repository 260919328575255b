"""`books --validate`: how often the incrDepth book equals the depth<N> frames and REST depth polls.

Each frame is compared with the book after the last update whose exchange time is <= the frame's time
(books/depthcheck.py); a frame that equals the book a few pushes earlier or later is lag, not disagreement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from books.depthcheck import DEFAULT_TOLERANCE_MS, DISAGREE, EXACT, LAG, Verdict
from books.rebuild import derive, iso
from books.tracker import SnapshotOptions
from storage.lake import Lake


@dataclass(frozen=True)
class Report:
    symbol: str
    exact: int
    lag: int
    disagree: int
    worst: Verdict | None
    resyncs: dict[str, int]

    @property
    def judged(self) -> int:
        return self.exact + self.lag + self.disagree

    @property
    def exact_share(self) -> float | None:
        """Exact matches among the frames that are not lag (lag pairs are counted apart)."""
        compared = self.exact + self.disagree
        return self.exact / compared if compared else None

    def line(self) -> str:
        share = "-" if self.exact_share is None else f"{100 * self.exact_share:.3f}%"
        worst = "none"
        if self.worst is not None:
            levels = self.worst.frame.levels
            worst = f"{self.worst.differing}/{2 * levels} levels at {iso(self.worst.frame.time)}"
        resyncs = ", ".join(f"{kind} {n}" for kind, n in sorted(self.resyncs.items())) or "0"
        return (
            f"{self.symbol}: exact {share} of {self.exact + self.disagree} frames "
            f"(+{self.lag} lag); worst disagreement {worst}; resyncs {resyncs}"
        )


def validate(
    lake: Lake,
    symbols: Sequence[str] | None,
    since_ms: int | None,
    until_ms: int | None,
    tolerance_ms: int = DEFAULT_TOLERANCE_MS,
) -> list[Report]:
    """Replay the lake's books and judge every depth frame and poll in the window; one Report per symbol."""
    options = SnapshotOptions(levels=0, interval_ms=0, checkpoint_ms=0, tolerance_ms=tolerance_ms)
    reports = []
    for symbol, tracker in derive(lake, symbols, since_ms, until_ms, options, polls=True):
        figures = tracker.figures.get(symbol)
        if figures is None:
            reports.append(Report(symbol, 0, 0, 0, None, {}))
            continue
        verdicts = figures.verdicts
        reports.append(
            Report(
                symbol,
                verdicts[EXACT],
                verdicts[LAG],
                verdicts[DISAGREE],
                figures.worst,
                dict(figures.resyncs),
            )
        )
    return reports
