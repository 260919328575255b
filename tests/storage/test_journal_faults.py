"""The journal writer under faults: a second writer refused, a full disk held and resumed, nothing torn."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from storage.errors import JournalLocked
from storage.journal import DATA, EVENT, JournalReader, JournalWriter, segments
from storage.state import State


def _records(root: Path) -> list[tuple[str, int, int, bytes]]:
    reader = JournalReader(root, State(root.parent / "state"))
    records = [(r.connection, r.seq, r.kind, r.payload) for r in reader]
    assert reader.torn_tails == reader.corrupt_spans == 0  # never a torn record
    return records


def test_a_second_writer_on_the_same_journal_is_refused_naming_the_holder(tmp_path: Path) -> None:
    with JournalWriter(tmp_path / "journal"):
        with pytest.raises(
            JournalLocked, match=rf"pid {os.getpid()}\b.*another --data-dir|pid {os.getpid()}\b"
        ):
            JournalWriter(tmp_path / "journal")
        assert segments(tmp_path / "journal") == ["000000000000.wal"]  # the refused one opened nothing
    with JournalWriter(tmp_path / "journal"):  # released on close
        pass


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from storage.journal import JournalWriter

    writer = JournalWriter(Path(sys.argv[1]))
    print("locked", flush=True)
    time.sleep(60)
    """
)


def test_the_lock_of_a_writer_killed_with_sigkill_is_free_at_once(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "journal")], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(JournalLocked, match=f"pid {child.pid}"):
            JournalWriter(tmp_path / "journal")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    with JournalWriter(tmp_path / "journal"):
        pass


class Disk:
    """A filesystem with room for `free` more bytes: a write past it writes what fits, then ENOSPC."""

    def __init__(self, free: int) -> None:
        self.free = free
        self.refused = 0

    def open(self, path: Path) -> FullFile:
        return FullFile(path, self)


class FullFile:
    def __init__(self, path: Path, disk: Disk) -> None:
        self._file = io.FileIO(path, "ab")
        self._disk = disk

    def write(self, data: memoryview, /) -> int | None:
        if self._disk.free <= 0:
            self._disk.refused += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = self._file.write(data[: self._disk.free])
        self._disk.free -= written or 0
        return written

    def tell(self) -> int:
        return self._file.tell()

    def truncate(self, size: int, /) -> int:
        self._disk.free += self._file.tell() - size
        return self._file.truncate(size)

    def seek(self, position: int, /) -> int:
        return self._file.seek(position)

    def fileno(self) -> int:
        return self._file.fileno()

    def close(self) -> None:
        self._file.close()


def _frame(seq: int) -> bytes:
    return f'{{"dataType":"BTC-USDT@trade","n":{seq}}}'.encode() + b"x" * 100


def test_a_full_disk_holds_records_in_order_and_writes_them_once_it_has_room(tmp_path: Path) -> None:
    disk = Disk(free=5_000)
    root = tmp_path / "journal"
    writer = JournalWriter(root, opener=disk.open, retry_s=0.0, flush_interval_s=3600)
    for seq in range(200):  # ~30 KB: the disk takes ~5 KB of it
        writer.append(1_700_000_000_000_000 + seq, "c1", seq, DATA, _frame(seq))
        if seq % 10 == 9:
            writer.flush()
    assert disk.refused and writer.records_written < 200
    written = _records(root)
    assert [r[1] for r in written] == list(range(len(written)))  # whole records only, cut back, in order
    disk.free = 1 << 20
    writer.flush()
    writer.close()
    records = _records(root)
    data = [r for r in records if r[2] == DATA]
    assert [r[1] for r in data] == list(range(200)) and writer.lost == 0
    (notice,) = [json.loads(r[3]) for r in records if r[0] == writer.name]
    assert notice["event"] == "journal_error" and "No space left on device" in notice["detail"]


def test_past_the_buffer_frames_are_dropped_and_each_connection_gets_a_gap_row(tmp_path: Path) -> None:
    disk = Disk(free=0)
    root = tmp_path / "journal"
    writer = JournalWriter(root, opener=disk.open, retry_s=0.0, flush_interval_s=3600, buffer_bytes=2_000)
    for seq in range(100):
        for connection in ("c1", "c2"):
            writer.append(1_700_000_000_000_000 + seq * 1000, connection, seq, DATA, _frame(seq))
        writer.flush()
    disk.free = 1 << 20
    writer.flush()
    for seq in range(100, 110):  # after the disk has room again: written, no gap
        writer.append(1_700_000_000_000_000 + seq * 1000, "c1", seq, DATA, _frame(seq))
    writer.flush()
    writer.close()
    records = _records(root)
    held = [r[1] for r in records if r[0] == "c1" and r[2] == DATA]
    assert held and held == list(range(len(held) - 10)) + list(range(100, 110))
    gaps = {r[0]: (r[1], json.loads(r[3])) for r in records if r[2] == EVENT and r[0] != writer.name}
    assert set(gaps) == {"c1", "c2"}
    seq, event = gaps["c1"]
    assert event["event"] == "gap" and seq == len(held) - 10  # the first dropped seq: a key nobody else has
    assert f"{100 - seq} frames received" in event["detail"]
    assert "1970" not in event["detail"] and "2023-11-14T22:13:20" in event["detail"]


def test_records_the_disk_never_takes_are_counted_lost_at_close(tmp_path: Path) -> None:
    disk = Disk(free=0)
    writer = JournalWriter(tmp_path / "journal", opener=disk.open, retry_s=0.0, flush_interval_s=3600)
    for seq in range(5):
        writer.append(seq, "c1", seq, DATA, _frame(seq))
    writer.close()
    assert writer.lost == 6  # five frames and the writer's own journal_error event
    assert (tmp_path / "journal" / "000000000000.wal").stat().st_size == 0  # nothing torn
