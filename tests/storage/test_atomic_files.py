"""A reader looping over the lake's glob while the writer adds files never sees a partial file."""

from __future__ import annotations

import glob
import threading
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from storage.lake import Lake
from tests.storage.samples import FILLS, fill

FILES = 200
ROWS_PER_FILE = 2_000
HANDSHAKE_EVERY = 10  # files; the writer then waits for a complete reader pass, so reads overlap writes


class _Reader(threading.Thread):
    """Counts rows through DuckDB and reads every newly listed file fully through pyarrow, in a loop."""

    def __init__(self, pattern: str) -> None:
        super().__init__(name="lake-reader")
        self.pattern = pattern
        self.stop = threading.Event()
        self.passes = 0
        self.progress = threading.Condition()
        self.counts: list[int] = []
        self.errors: list[str] = []
        self.checked: set[str] = set()

    def run(self) -> None:
        with duckdb.connect() as con:
            while not self.stop.is_set():
                try:
                    self._one_pass(con)
                except Exception as error:  # recorded and asserted on by the test: any failure is a finding
                    self.errors.append(f"{type(error).__name__}: {error}")
                with self.progress:
                    self.passes += 1
                    self.progress.notify_all()

    def _one_pass(self, con: duckdb.DuckDBPyConnection) -> None:
        query = f"SELECT count(*) FROM read_parquet('{self.pattern}', allow_empty = true)"
        self.counts.append(con.execute(query).fetchall()[0][0])
        for path in sorted(set(glob.glob(self.pattern, recursive=True)) - self.checked):
            rows = pq.read_table(path).num_rows
            if rows != ROWS_PER_FILE:
                self.errors.append(f"{path}: {rows} rows")
            self.checked.add(path)

    def wait_for_a_pass_after(self, passes: int) -> None:
        with self.progress:
            assert self.progress.wait_for(
                lambda: self.passes >= passes + 2 or not self.is_alive(), timeout=60
            )


def _table() -> pa.Table:
    rows = [
        fill(
            100.0 + i / 100,
            "backfill",
            2,
            trade_id=str(i),
            trade_time=fill(0, "backfill", 0)["trade_time"] + timedelta(milliseconds=i),
        )
        for i in range(ROWS_PER_FILE)
    ]
    return pa.Table.from_pylist(rows, schema=FILLS.schema)


def test_a_reader_never_sees_a_partial_file_while_200_files_are_written(lake: Path) -> None:
    writer, table = Lake(lake), _table()
    reader = _Reader(writer.glob("fills"))
    reader.start()
    try:
        for number in range(1, FILES + 1):
            writer.write_table(FILLS, table)
            if number % HANDSHAKE_EVERY == 0:
                reader.wait_for_a_pass_after(reader.passes)
    finally:
        reader.stop.set()
        reader.join()
    assert reader.errors == []
    assert reader.passes >= FILES // HANDSHAKE_EVERY
    assert all(count % ROWS_PER_FILE == 0 for count in reader.counts), "a pass counted part of a file"
    assert reader.counts == sorted(reader.counts), "a pass lost rows another pass had seen"
    assert len(reader.checked) == FILES
    assert len(writer.files("fills")) == FILES
    with duckdb.connect() as con:
        assert con.execute(f"SELECT count(*) FROM read_parquet('{writer.glob('fills')}')").fetchall() == [
            (FILES * ROWS_PER_FILE,)
        ]
