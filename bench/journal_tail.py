"""Watch the recorder's journal from outside: when each data record became readable, against its receipt.

The watcher is its own process: in a thread of the bench process it shared a GIL with the simulator's
firehose and measured the bench's own delays (seconds at full rate) instead of the recorder's.
`python -m bench.journal_tail JOURNAL OUT [INTERVAL]` polls until its stdin closes, then writes the
latencies (ms, one per line) to OUT.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository: `-m bench.journal_tail` runs from it


class JournalTail:
    """Poll <data-dir>/journal every `interval_s` and keep (seen - received_at) per data record, in ms."""

    def __init__(self, root: Path, interval_s: float = 0.02) -> None:
        self.root = root
        self.interval_s = interval_s
        self.latencies_ms: list[float] = []
        self._out = root.parent / "journal-latency.txt"
        self._child: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "bench.journal_tail",
            str(self.root),
            str(self._out),
            str(self.interval_s),
        ]
        self._child = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE)

    def stop(self) -> None:
        if self._child is None:
            return
        assert self._child.stdin is not None
        self._child.stdin.close()
        self._child.wait(30)
        if self._out.exists():
            self.latencies_ms = [float(line) for line in self._out.read_text().split()]


def watch(root: Path, interval_s: float, stop: threading.Event) -> list[float]:
    from storage.journal import DATA, JournalReader, Offset
    from storage.state import State

    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        reader = JournalReader(root, State(Path(scratch)))
        offset = Offset()
        started_us = time.time() * 1e6  # frames journaled before the window are not its latency
        while not stop.wait(interval_s):
            try:
                records = reader.read(offset, max_records=200_000)
            except OSError:  # a segment converted and removed under us: move on
                continue
            now_us = time.time() * 1e6
            latencies.extend(
                (now_us - r.received_at_us) / 1000
                for r in records
                if r.kind == DATA and r.received_at_us >= started_us
            )
            if records:
                offset = records[-1].end
    return latencies


def _main(argv: list[str]) -> None:
    stop = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.buffer.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    latencies = watch(Path(argv[0]), float(argv[2]) if len(argv) > 2 else 0.02, stop)
    Path(argv[1]).write_text("".join(f"{value:.3f}\n" for value in latencies))


if __name__ == "__main__":
    _main(sys.argv[1:])
