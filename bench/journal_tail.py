"""Watch the recorder's journal from outside: when each data record became readable, against its receipt."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path


class JournalTail:
    """Poll <data-dir>/journal every `interval_s` and keep (seen - received_at) per data record, in ms."""

    def __init__(self, root: Path, interval_s: float = 0.02) -> None:
        self.root = root
        self.interval_s = interval_s
        self.latencies_ms: list[float] = []
        self.problem = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-journal-tail", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        try:
            from storage.journal import DATA, JournalReader, Offset
            from storage.state import State
        except ImportError as error:
            self.problem = f"journal reader not importable: {error}"
            return
        with tempfile.TemporaryDirectory() as scratch:
            reader = JournalReader(self.root, State(Path(scratch)))
            offset = Offset()
            started_us = time.time() * 1e6  # frames journaled before the window are not its latency
            while not self._stop.wait(self.interval_s):
                try:
                    records = reader.read(offset, max_records=200_000)
                except OSError:  # a segment converted and removed under us: move on
                    continue
                now_us = time.time() * 1e6
                self.latencies_ms.extend(
                    (now_us - r.received_at_us) / 1000
                    for r in records
                    if r.kind == DATA and r.received_at_us >= started_us
                )
                if records:
                    offset = records[-1].end
