"""The only code that writes the Parquet lake. A file never changes once it has its final name.

All access goes through a pyarrow filesystem, so an object store is configuration, not a rewrite.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from schemas.dataset import Dataset, Row
from storage.errors import SchemaMismatch
from storage.validation import conform_table, table_from_rows

REJECTS = "_rejects"  # starts with "_": no dataset is called that, and pyarrow's discovery skips it
REJECT_SCHEMA = pa.schema(
    [
        pa.field("received_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.string(), nullable=False),
    ]
)
_MS_PER_UNIT = {"s": (1000, 1), "ms": (1, 1), "us": (1, 1000), "ns": (1, 1_000_000)}  # (multiply, divide)


class Lake:
    """A folder of immutable Parquet files: `<root>/<dataset>/<partition>=<value>/.../date=<D>/<file>`."""

    def __init__(self, root: str | Path, filesystem: pafs.FileSystem | None = None) -> None:
        self.filesystem = filesystem or pafs.LocalFileSystem()
        self.is_local = isinstance(self.filesystem, pafs.LocalFileSystem)
        text = str(root)
        self.root = os.path.abspath(text) if self.is_local else text.rstrip("/")
        self._made: set[str] = set()  # local folders known to exist: makedirs per file is a syscall storm

    @classmethod
    def from_uri(cls, uri: str) -> Lake:
        """Open a lake by URI ("s3://bucket/lake", "file:///data/lake") or by a plain local path."""
        if "://" not in uri:
            return cls(uri)
        filesystem, path = pafs.FileSystem.from_uri(uri)
        return cls(path, filesystem)

    def write(self, dataset: Dataset, rows: Sequence[Row]) -> list[str]:
        """Append rows (with received_at and source) as new files; return their paths.

        One file per partition (partition columns, UTC day of the event time, source). Each file appears
        atomically under its final name. Raises SchemaMismatch before anything is written.
        """
        if not rows:
            return []
        return self.write_table(dataset, table_from_rows(dataset, rows))

    def write_table(self, dataset: Dataset, table: pa.Table) -> list[str]:
        """Append an Arrow table the way `write` appends rows."""
        table = conform_table(dataset, table)
        if table.num_rows == 0:
            return []
        days = _utc_days(table[dataset.event_time])
        groups = [*dataset.partitions, "source"]
        paths = []
        for values, part in _split(table, days, groups):
            *partition_values, day, source = values
            directory = self._partition_dir(dataset, partition_values, day)
            name = f"{source}-{_first_ms(part[dataset.event_time])}-{uuid.uuid4().hex}.parquet"
            # The path is the one source of truth for partition values, so they are not stored twice.
            paths.append(self._put(directory, name, part.drop_columns(list(dataset.partitions))))
        self._sync_dirs({path.rsplit("/", 1)[0] for path in paths})
        return paths

    def reject(self, dataset_name: str, raw: str, reason: str, source: str, received_at: datetime) -> str:
        """Keep input that failed to convert, verbatim with its reason, under `_rejects/<dataset>/`."""
        row = {"received_at": received_at, "source": source, "reason": reason, "raw": raw}
        table = pa.Table.from_pylist([row], schema=REJECT_SCHEMA)
        day = _utc_days(table["received_at"])[0].as_py()
        directory = f"{self.root}/{REJECTS}/{dataset_name}/date={day.isoformat()}"
        path = self._put(directory, f"{uuid.uuid4().hex}.parquet", table)
        self._sync_dirs({directory})
        return path

    def files(self, dataset_name: str) -> list[str]:
        """List the dataset's finished Parquet files, sorted."""
        selector = pafs.FileSelector(f"{self.root}/{dataset_name}", recursive=True, allow_not_found=True)
        infos = self.filesystem.get_file_info(selector)
        return sorted(info.path for info in infos if info.is_file and info.base_name.endswith(".parquet"))

    def glob(self, dataset_name: str) -> str:
        """The pattern that matches every finished file of a dataset (and never a file being written)."""
        return f"{self.root}/{dataset_name}/**/*.parquet"

    def _partition_dir(self, dataset: Dataset, values: Sequence[Any], day: date) -> str:
        parts = [f"{self.root}/{dataset.name}"]
        for column, value in zip(dataset.partitions, values, strict=True):
            text = str(value)
            if not text or "/" in text or "\\" in text or text.startswith("."):
                raise SchemaMismatch(f"{dataset.name}: {column}={text!r} cannot be a partition folder name")
            parts.append(f"{column}={text}")
        parts.append(f"date={day.isoformat()}")
        return "/".join(parts)

    def _put(self, directory: str, name: str, table: pa.Table) -> str:
        """Write under a hidden temporary name, make it durable, then rename it into place."""
        final = f"{directory}/{name}"
        partial = f"{directory}/.{name}.partial"  # not *.parquet: the views' globs never match it
        try:
            if self.is_local:
                with self._create(directory, partial) as handle:
                    pq.write_table(table, handle, **_writer_options(table.schema))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(partial, final)  # atomic on one filesystem: readers see all of it or nothing
            else:
                self.filesystem.create_dir(directory, recursive=True)
                with self.filesystem.open_output_stream(partial) as stream:
                    pq.write_table(table, stream, **_writer_options(table.schema))
                self.filesystem.move(partial, final)
        except BaseException:
            self._discard(partial)
            raise
        return final

    def _create(self, directory: str, path: str) -> BinaryIO:
        if directory not in self._made:
            os.makedirs(directory, exist_ok=True)
            self._made.add(directory)
        try:
            return open(path, "wb")
        except FileNotFoundError:  # removed since (an emptied partition): make it again
            os.makedirs(directory, exist_ok=True)
            return open(path, "wb")

    def _discard(self, partial: str) -> None:
        with contextlib.suppress(OSError):  # FileNotFoundError included: nothing was created
            self.filesystem.delete_file(partial)

    def _sync_dirs(self, directories: set[str]) -> None:
        """Make the renames durable: without this a power cut can forget a file that was returned."""
        if not self.is_local:
            return
        for directory in directories:
            handle = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(handle)
            finally:
                os.close(handle)


def _writer_options(schema: pa.Schema) -> dict[str, Any]:
    # zstd at its default level; level 9 halves write speed for ~5% (DESIGN.md). Delta-encoded timestamps
    # shrink trades from ~6.5 to ~3.9 bytes/row; delta encoding needs the dictionary off for those columns.
    times = [field.name for field in schema if pa.types.is_timestamp(field.type)]
    others = [field.name for field in schema if field.name not in times]
    return {
        "compression": "zstd",
        "use_dictionary": others,
        "column_encoding": dict.fromkeys(times, "DELTA_BINARY_PACKED"),
    }


def _utc_days(times: pa.ChunkedArray) -> pa.ChunkedArray:
    """The UTC calendar day of each timestamp, whatever time zone the column is labelled with."""
    unit = times.type.unit if pa.types.is_timestamp(times.type) else "us"
    return times.cast(pa.timestamp(unit, tz="UTC")).cast(pa.date32())


def _first_ms(times: pa.ChunkedArray) -> int:
    multiply, divide = _MS_PER_UNIT[times.type.unit]
    first: int = pc.min(times.cast(pa.int64())).as_py()
    return first * multiply // divide


def _split(
    table: pa.Table, days: pa.ChunkedArray, columns: list[str]
) -> list[tuple[tuple[Any, ...], pa.Table]]:
    """Split the table by the values of `columns` plus the day, in sorted order of those values.

    One group_by listing each group's row numbers (in their order), then one take per group: a compute call
    with a Python scalar costs ~0.1 ms in pyarrow's wrappers, so per-group filters are avoided.
    """
    order = [*columns[:-1], "__day", columns[-1]]  # partition values, day, source: the path's order
    keys = {**{column: table[column] for column in columns}, "__day": days}
    if all(pc.count_distinct(keys[name], mode="all").as_py() == 1 for name in order):
        return [(tuple(keys[name][0].as_py() for name in order), table)]  # the usual case: one file
    keys["__row"] = pa.chunked_array([pa.array(range(table.num_rows), pa.int64())])
    groups = pa.table(keys).group_by(order, use_threads=False).aggregate([("__row", "list")])
    combos = list(zip(*(groups[name].to_pylist() for name in order), strict=True))
    rows = groups["__row_list"]
    return [
        (combos[index], table.take(rows[index].values))
        for index in sorted(range(len(combos)), key=combos.__getitem__)
    ]
