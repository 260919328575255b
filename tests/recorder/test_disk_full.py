"""A real recorder on a real 20 MB file system that fills up: it says so at once, holds a bounded buffer,
drops past it as stream_events gaps, never writes a torn record, resumes when space returns, and loses
nothing it had journaled; the converter rides out ENOSPC too and leaves no hidden file."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from simulator import Simulator
from tests.recorder.conftest import query, wait_for
from tests.recorder.procs import ROOT, landed, partials, sent_texts

SYMBOLS = ["BTC-USDT", "ETH-USDT"]
CHANNELS = ["trade", "bookTicker", "depth20@500ms"]
BUFFER_BYTES = 20_000  # a few seconds of these channels: the test sees frames held, then dropped

# The recorder as `record` runs it, with a small buffer so the drop path is reached in seconds.
CHILD = textwrap.dedent(
    f"""
    import logging, signal, sys, threading
    from pathlib import Path
    from recorder.connection import ConnectionOptions
    from recorder.runner import Recorder, RecordOptions

    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
    options = RecordOptions(
        channels={CHANNELS!r},
        symbols={SYMBOLS!r},
        connection=ConnectionOptions(url=sys.argv[2], silence_timeout_s=10.0),
        journal={{"buffer_bytes": {BUFFER_BYTES}, "retry_s": 0.2}},
        lake_interval_s=0.5,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    Recorder(Path(sys.argv[1]), options).run(stop)
    """
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 20 MB file system: tmpfs, else a loop-mounted ext4 image; skipped only where neither can exist."""
    mount = tmp_path / "fs"
    mount.mkdir()
    tried = []
    for argv in (
        ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)],
        [
            "sh",
            "-c",
            f"truncate -s 20M {tmp_path}/fs.img && mkfs.ext4 -q {tmp_path}/fs.img && "
            f"mount -o loop {tmp_path}/fs.img {mount}",
        ],
    ):
        result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode == 0:
            break
        tried.append(f"{argv[0]}: {result.stderr.strip()}")
    else:
        pytest.skip(f"cannot mount a small file system here (needs root and CAP_SYS_ADMIN): {tried}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(path: Path) -> None:
    """Write zeros until the file system refuses (ENOSPC)."""
    block = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as handle, contextlib.suppress(OSError):
        while True:
            handle.write(block)
    with open(path, "ab", buffering=0) as handle:  # the last partial megabyte
        with pytest.raises(OSError) as refused:
            for _ in range(4096):
                handle.write(b"\0" * 4096)
        assert refused.value.errno == errno.ENOSPC


class Lines:
    """A child's stderr, collected by a thread, so the test can wait for a log line."""

    def __init__(self, child: subprocess.Popen[bytes]) -> None:
        self.lines: list[str] = []
        assert child.stderr is not None
        self._stream = child.stderr
        self._thread = threading.Thread(target=self._read, args=(child.stderr,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        """After the child exited: take the last lines and close the pipe."""
        self._thread.join(10)
        self._stream.close()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line.decode(errors="replace").rstrip())

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)


@pytest.mark.slow
def test_a_full_disk_is_held_then_dropped_as_gaps_and_writing_resumes_when_space_returns(
    small_disk: Path,
) -> None:
    data_dir = small_disk / "data"
    topics = [f"{s}@{c}" for s in SYMBOLS for c in CHANNELS]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with Simulator(symbols=SYMBOLS, seed=9, trades_per_second=20.0, ping_interval_s=0.5) as sim:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(data_dir), sim.ws_url],
            env=env,
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        log = Lines(child)
        try:
            wait_for(lambda: all(sim.ledger.counts.get(t, 0) >= 5 for t in topics), 30)
            wait_for(lambda: any((data_dir / "lake" / "raw_messages").rglob("*.parquet")), 30)
            _fill(small_disk / "filler")
            wait_for(lambda: log.has("journal: cannot write"), 10)
            wait_for(lambda: log.has("dropping frames"), 30)
            wait_for(
                lambda: log.has("converter: cannot write the lake"), 60
            )  # it must first have rows to seal
            (small_disk / "filler").unlink()
            wait_for(lambda: log.has("journal: writing again"), 10)
            wait_for(lambda: log.has("converter: writing the lake again"), 30)
            resumed = {t: sim.ledger.counts.get(t, 0) for t in topics}
            wait_for(lambda: all(sim.ledger.counts.get(t, 0) >= resumed[t] + 3 for t in topics), 30)
            stopped_ms = int(time.time() * 1000)
            child.send_signal(signal.SIGTERM)
            assert child.wait(15) == 0, log.lines
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            log.close()
        before = sent_texts(sim, topics, stopped_ms - 1000)
        every = set(sent_texts(sim, topics))
    assert sum("journal: cannot write" in line for line in log.lines) == 1  # one clear line, not a flood
    assert not log.has("converter died") and not log.has("Traceback"), log.lines
    assert not partials(data_dir)
    events = query(data_dir / "lake", "SELECT event, detail FROM stream_events")
    assert not [e for e in events if e["event"] == "corrupt"]  # no torn record was ever written
    assert [e for e in events if e["event"] == "journal_error"]
    spans = [_span(e["detail"]) for e in events if e["event"] == "gap"]
    assert spans
    counts = landed(data_dir)
    assert set(counts) <= every and max(counts.values()) == 1  # nothing doubled
    missing = [f for t in topics for f in sim.ledger.frames(t) if f.text in before and counts[f.text] == 0]
    assert missing  # the buffer overflowed: some frames were not journaled...
    assert all(any(a - 1000 <= f.sent_ms <= b + 1000 for a, b in spans) for f in missing)  # ...only in gaps
    after = max(b for _, b in spans) + 1000
    assert any(counts[f.text] for t in topics for f in sim.ledger.frames(t) if f.sent_ms > after)


def _span(detail: str) -> tuple[int, int]:
    found = re.search(r"from (\S+) to (\S+) \(seq", detail)
    assert found, detail
    first, last = (int(datetime.fromisoformat(t).timestamp() * 1000) for t in found.groups())
    return first, last
