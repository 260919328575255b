"""The journal: round-trip, torn tails ignored, kill -9 loses nothing reported written, offsets survive."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from storage.journal import BINARY, DATA, EVENT, JournalReader, JournalWriter, Offset, encode, segments
from storage.state import State


def _reader(tmp_path: Path) -> JournalReader:
    return JournalReader(tmp_path / "journal", State(tmp_path / "state"))


def _write(tmp_path: Path, count: int, **options: float) -> list[tuple[int, str, int, int, bytes]]:
    expected = []
    with JournalWriter(tmp_path / "journal", **options) as writer:  # type: ignore[arg-type]
        for seq in range(count):
            kind = (DATA, BINARY, EVENT)[seq % 3]
            payload: str | bytes = (
                bytes([seq % 256, 0x1F, 0x8B]) if kind == BINARY else f'{{"n":{seq},"é":1}}'
            )
            writer.append(1_700_000_000_000_000 + seq, f"c{seq % 4}", seq, kind, payload)
            data = payload if isinstance(payload, bytes) else payload.encode()
            expected.append((1_700_000_000_000_000 + seq, f"c{seq % 4}", seq, kind, data))
    return expected


def _fields(reader: JournalReader, start: Offset | None = None) -> list[tuple[int, str, int, int, bytes]]:
    records = list(reader) if start is None else reader.read(start, max_records=10**9)
    return [(r.received_at_us, r.connection, r.seq, r.kind, r.payload) for r in records]


def test_round_trip_keeps_every_field_in_order(tmp_path: Path) -> None:
    expected = _write(tmp_path, 1000)
    assert _fields(_reader(tmp_path)) == expected


def test_rotation_splits_segments_and_reads_across_them(tmp_path: Path) -> None:
    expected = []
    with JournalWriter(tmp_path / "journal", segment_bytes=2000) as writer:
        for seq in range(300):
            writer.append(seq, "c", seq, DATA, f"payload {seq}")
            expected.append(seq)
            if seq % 10 == 0:
                writer.flush()
    assert len(segments(tmp_path / "journal")) > 5
    assert [r.seq for r in _reader(tmp_path)] == expected


def test_bounded_batches_resume_from_their_end_offsets(tmp_path: Path) -> None:
    expected = _write(tmp_path, 500)
    reader = _reader(tmp_path)
    seen: list[int] = []
    offset = Offset()
    while batch := reader.read(offset, max_records=37):
        assert len(batch) <= 37
        seen += [r.seq for r in batch]
        offset = batch[-1].end
    assert seen == [e[2] for e in expected]


def test_a_record_larger_than_the_read_window_is_read_whole(tmp_path: Path) -> None:
    big = "x" * (3 << 20)
    with JournalWriter(tmp_path / "journal") as writer:
        writer.append(1, "c", 0, DATA, "small")
        writer.append(2, "c", 1, DATA, big)
        writer.append(3, "c", 2, DATA, "after")
    payloads = [r.payload for r in _reader(tmp_path).read(Offset(), max_bytes=1000)]
    assert payloads[0] == b"small"
    records = list(_reader(tmp_path))
    assert [r.payload for r in records] == [b"small", big.encode(), b"after"]


def test_a_torn_tail_at_every_byte_is_ignored_and_earlier_records_survive(tmp_path: Path) -> None:
    expected = _write(tmp_path, 20)
    root = tmp_path / "journal"
    (name,) = segments(root)
    whole = (root / name).read_bytes()
    last = encode(*expected[-1])
    assert whole.endswith(last)
    for cut in range(len(whole) - len(last), len(whole)):
        (root / name).write_bytes(whole[:cut])
        # as the active segment (writer may still be writing) and as a finished one (a later segment exists)
        assert _fields(_reader(tmp_path)) == expected[:-1]
        (root / "999999999999.wal").write_bytes(encode(5, "next", 0, DATA, b"later"))
        reader = _reader(tmp_path)
        assert _fields(reader) == [*expected[:-1], (5, "next", 0, DATA, b"later")]
        assert reader.torn_tails == (1 if cut > len(whole) - len(last) else 0)
        (root / "999999999999.wal").unlink()


def test_a_flipped_byte_stops_that_segment_without_raising(tmp_path: Path) -> None:
    expected = _write(tmp_path, 10)
    root = tmp_path / "journal"
    (name,) = segments(root)
    data = bytearray((root / name).read_bytes())
    data[len(encode(*expected[0])) + 30] ^= 0xFF  # inside the second record's body
    (root / name).write_bytes(bytes(data))
    assert _fields(_reader(tmp_path)) == expected[:1]


def test_commit_survives_a_restart_and_deletes_converted_segments(tmp_path: Path) -> None:
    with JournalWriter(tmp_path / "journal") as writer:
        for seq in range(10):
            writer.append(seq, "c", seq, DATA, f"first run {seq}")
    reader = _reader(tmp_path)
    batch = reader.read(reader.committed(), max_records=4)
    reader.commit(batch[-1].end)
    with JournalWriter(tmp_path / "journal") as writer:  # a restart opens a new segment
        for seq in range(10, 15):
            writer.append(seq, "c", seq, DATA, f"second run {seq}")
    reader = _reader(tmp_path)  # a new process: the offset comes from state/
    assert [r.seq for r in reader] == list(range(4, 15))
    rest = reader.read(reader.committed(), max_records=100)
    reader.commit(rest[-1].end)
    assert len(segments(tmp_path / "journal")) == 1  # the first run's segment is fully converted
    assert reader.read(reader.committed()) == []


def test_archive_option_moves_converted_segments(tmp_path: Path) -> None:
    for run in range(2):
        with JournalWriter(tmp_path / "journal") as writer:
            writer.append(run, "c", run, DATA, "x")
    reader = JournalReader(tmp_path / "journal", State(tmp_path / "state"), archive=tmp_path / "archive")
    records = reader.read(Offset())
    reader.commit(records[-1].end)
    assert segments(tmp_path / "archive") == ["000000000000.wal"]


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from storage.journal import DATA, JournalWriter

    writer = JournalWriter(Path(sys.argv[1]), flush_interval_s=0.01)
    seq = 0
    while True:
        for _ in range(50):
            writer.append(seq, "child", seq, DATA, "frame %d " % seq + "x" * (seq % 300))
            seq += 1
        writer.flush()
        print(seq - 1, flush=True)  # everything up to here has been write()n to the OS
    """
)


@pytest.mark.slow
def test_kill_9_while_appending_loses_nothing_reported_written(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "journal")], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    reported = -1
    deadline = time.monotonic() + random.uniform(0.3, 0.8)
    while time.monotonic() < deadline:
        reported = int(child.stdout.readline())
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    seqs = [r.seq for r in _reader(tmp_path)]
    assert reported > 0
    assert seqs[: reported + 1] == list(range(reported + 1))
    assert seqs == list(range(len(seqs)))  # nothing after a torn point, no duplicates
