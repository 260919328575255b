"""Compaction: rewrite a closed day of a dataset into one file per partition holding exactly the view's rows.

The rows the view does not show (stream copies REST settled, earlier updates of a bar, replayed copies)
move to `_superseded/` (storage.layout), so nothing recorded is lost. Each day's work is a manifest under
`_compaction/` written before any output: outputs have names derived from it and appear atomically, and the
inputs are deleted only once every output is durable and `grace_s` has passed. A kill at any moment leaves
inputs and outputs that dedupe to the same rows; the next run finishes the manifest (same inputs, same
outputs: it is idempotent) before starting new work. Late rows land as new files and make the next run
compact the day again, its compacted and superseded files included.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from schemas import DATASETS
from schemas.dataset import Dataset
from storage import layout
from storage.errors import LeaseHeld
from storage.lake import Lake, _Part
from storage.lease import Lease
from storage.objectstore import register_filesystems
from storage.views import ranked_body, rows_sql

log = logging.getLogger(__name__)

GRACE_S = 300.0  # a reader that listed the old files before the swap has this long to finish its query
ROW_GROUP = 131_072  # rows per batch read from DuckDB
# Rows per row group of a compacted file: one dictionary per column per row group, so a busy symbol-day's
# price and qty take fewer bytes than in 131,072-row groups (trades on 5M rows: 7.12 -> 6.77 B/row; 1Mi rows
# gave 6.75 for twice the buffer). The rows of one group are buffered: ~40 MB of trades, +40 MiB peak RSS.
FILE_ROW_GROUP = 524_288
# Written once, read for months: zstd 9 costs compaction time, not the recorder's, for ~4% fewer bytes
# (trades 5.37 -> 5.21 B/row on the storage bench's rows; 19 gave 5.11 at several times the CPU).
ZSTD_LEVEL = 9
UNCOMPACTED = ("raw_messages",)  # one file per seal already; kept for rebuild, deleted by prune


@dataclass
class Summary:
    """What a compaction run did (or, dry, would do)."""

    days: list[str] = field(default_factory=list)  # "<dataset> <date>: <n> files -> <m> partitions"
    rows: int = 0
    files_removed: int = 0
    pending: list[str] = field(default_factory=list)  # days whose old files wait for their grace period


def compactable(names: Iterable[str] | None = None) -> list[Dataset]:
    """The datasets compaction handles (default: every one but raw_messages)."""
    if names is None:
        return [dataset for name, dataset in DATASETS.items() if name not in UNCOMPACTED]
    return [DATASETS[name] for name in names]


def compact(
    lake: Lake,
    datasets: Iterable[Dataset],
    before: date,
    grace_s: float = GRACE_S,
    dry_run: bool = False,
    clock: Callable[[], float] = time.time,
) -> Summary:
    """Compact every day before `before` that has files besides one compacted file per partition.

    Takes the lake's lease (raises LeaseHeld if another process has it). Finishes earlier runs' manifests
    first. With `dry_run`, only lists what it would do.
    """
    summary = Summary()
    chosen = list(datasets)
    if dry_run:
        for dataset in chosen:
            for day, files in _days(lake, dataset, before).items():
                summary.days.append(f"{dataset.name} {day}: {len(files)} files")
        return summary
    with Lease(lake, clock=clock) as lease:
        compact_held(lake, lease, chosen, before, grace_s, clock, summary)
    return summary


def compact_held(
    lake: Lake,
    lease: Lease,
    datasets: list[Dataset],
    before: date,
    grace_s: float,
    clock: Callable[[], float],
    summary: Summary,
    since: date | None = None,
) -> None:
    """`compact` for a caller that holds the lease already (rebuild), optionally from day `since` on."""
    pending = finish(lake, grace_s, clock, summary, lease, datasets)
    for dataset in datasets:
        for day, files in _days(lake, dataset, before, since).items():
            if (dataset.name, day) in pending:
                continue
            superseded = superseded_files(lake, dataset, day)
            manifest = _Manifest(dataset.name, day, generation(), files, superseded)
            manifest.save(lake)
            _run(lake, dataset, manifest, summary)
            lease.renew()
            _after_written(lake, manifest, grace_s, clock, summary)


def generation() -> str:
    """A new output id that sorts after every earlier one: the view reads a partition's greatest name."""
    return f"{time.time_ns():020d}{uuid.uuid4().hex[:8]}"


def retire(
    lake: Lake, dataset: Dataset, day: str, files: list[str], grace_s: float, clock: Callable[[], float]
) -> None:
    """Delete files the views no longer read once `grace_s` has passed (now, or in a later run)."""
    manifest = _Manifest(dataset.name, day, generation(), files, [], written_at=clock())
    manifest.save(lake)
    _after_written(lake, manifest, grace_s, clock, Summary())


def finish(
    lake: Lake,
    grace_s: float,
    clock: Callable[[], float],
    summary: Summary,
    lease: Lease | None = None,
    datasets: Iterable[Dataset] = (),
) -> set[tuple[str, str]]:
    """Complete the manifests a previous run left; return the (dataset, day) pairs still in their grace."""
    known = {**DATASETS, **{dataset.name: dataset for dataset in datasets}}
    waiting = set()
    for manifest in _Manifest.all(lake):
        if manifest.written_at is None:  # killed while writing: same inputs, so the same outputs
            _run(lake, known[manifest.dataset], manifest, summary)
        if lease is not None:
            lease.renew()
        if not _after_written(lake, manifest, grace_s, clock, summary):
            waiting.add((manifest.dataset, manifest.day))
    return waiting


def _after_written(
    lake: Lake, manifest: _Manifest, grace_s: float, clock: Callable[[], float], summary: Summary
) -> bool:
    """Mark the manifest written; delete its inputs once the grace has passed. Say whether it is done."""
    if manifest.written_at is None:
        manifest.written_at = clock()
        manifest.save(lake)
    if clock() < manifest.written_at + grace_s:
        summary.pending.append(f"{manifest.dataset} {manifest.day}")
        return False
    for path in [*manifest.inputs, *manifest.superseded]:
        with contextlib.suppress(FileNotFoundError):
            lake.filesystem.delete_file(path)
            summary.files_removed += 1
    lake.filesystem.delete_file(manifest.path(lake))
    return True


def _days(lake: Lake, dataset: Dataset, before: date, since: date | None = None) -> dict[str, list[str]]:
    """Days in [since, before) whose files are not already one compacted file per partition."""
    by_day: dict[str, list[str]] = {}
    first = since.isoformat() if since else ""
    for path in lake.files(dataset.name):
        day = layout.hive_values(path).get("date")
        if day is not None and first <= day < before.isoformat():
            by_day.setdefault(day, []).append(path)
    return {day: files for day, files in sorted(by_day.items()) if _needs_work(files)}


def _needs_work(files: list[str]) -> bool:
    folders = [path.rsplit("/", 1)[0] for path in files]
    return not all(layout.is_compacted(path) for path in files) or len(set(folders)) < len(folders)


def redundant(lake: Lake, dataset: Dataset) -> tuple[set[str], set[str]]:
    """(files, output ids) a reader of every stored row must skip so that it sees each row once.

    The inputs of a compaction whose outputs are complete (they wait out the grace), and the outputs of one
    still being written (a killed run: its inputs hold every row).
    """
    retired: set[str] = set()
    unfinished: set[str] = set()
    for manifest in _Manifest.all(lake):
        if manifest.dataset != dataset.name:
            continue
        if manifest.written_at is None:
            unfinished.add(manifest.id)
        else:
            retired.update(manifest.inputs, manifest.superseded)
    return retired, unfinished


def superseded_files(lake: Lake, dataset: Dataset, day: str) -> list[str]:
    """The `_superseded/` files of a dataset's day."""
    return _files(lake, f"{lake.root}/{layout.SUPERSEDED}/{dataset.name}", day)


def _files(lake: Lake, folder: str, day: str) -> list[str]:
    selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
    return sorted(
        info.path
        for info in lake.filesystem.get_file_info(selector)
        if info.is_file and info.base_name.endswith(".parquet") and f"/date={day}/" in info.path
    )


@dataclass
class _Manifest:
    """One day's compaction: its inputs (deleted at the end) and the id its outputs are named after."""

    dataset: str
    day: str
    id: str
    inputs: list[str]
    superseded: list[str]
    written_at: float | None = None

    def path(self, lake: Lake) -> str:
        return f"{lake.root}/{layout.CONTROL}/{self.dataset}-{self.day}.json"

    def save(self, lake: Lake) -> None:
        """Write the manifest atomically (temporary name, then rename)."""
        lake.filesystem.create_dir(f"{lake.root}/{layout.CONTROL}", recursive=True)
        final = self.path(lake)
        if lake.store is not None:  # an object store has no rename; one PUT replaces an object atomically
            body = json.dumps(self.__dict__).encode()  # made first: a failing close would PUT a stub
            with lake.filesystem.open_output_stream(final) as out:
                out.write(body)
            return
        temporary = f"{final}.{uuid.uuid4().hex}.partial"
        with lake.filesystem.open_output_stream(temporary) as out:
            out.write(json.dumps(self.__dict__).encode())
        lake.filesystem.move(temporary, final)

    @classmethod
    def all(cls, lake: Lake) -> list[_Manifest]:
        selector = pafs.FileSelector(f"{lake.root}/{layout.CONTROL}", allow_not_found=True)
        found = []
        for info in lake.filesystem.get_file_info(selector):
            if info.is_file and info.base_name.endswith(".json") and info.base_name != "lease.json":
                with lake.filesystem.open_input_stream(info.path) as handle:
                    found.append(cls(**json.loads(handle.read())))
        return sorted(found, key=lambda manifest: (manifest.dataset, manifest.day))


def _run(lake: Lake, dataset: Dataset, manifest: _Manifest, summary: Summary) -> None:
    """Write the manifest's outputs (skipping those that already appeared): same inputs, same outputs."""

    def target(values: tuple[Any, ...], kept: bool) -> str | None:
        *partition_values, day = values
        folder = layout.partition_folder(lake.root, dataset, partition_values, day)
        compacted = f"{folder}/{layout.COMPACTED}-{manifest.id}.parquet"
        if lake.filesystem.get_file_info(compacted).is_file:
            return None  # this partition was done before a kill
        if kept:
            return compacted
        # Written (again) before its partition's compacted file: a rerun replaces it whole.
        aside = layout.superseded_folder(lake.root, dataset, partition_values, day)
        return f"{aside}/superseded-{manifest.id}.parquet"

    sql = compaction_sql(dataset, lake.root, manifest.inputs, manifest.superseded)
    with connection() as con:
        counts = write_runs(lake, dataset, con.sql(sql).to_arrow_reader(ROW_GROUP), target)
    kept = [rows for (_, is_kept), rows in counts.items() if is_kept]
    summary.rows += sum(kept)
    summary.days.append(
        f"{manifest.dataset} {manifest.day}: {len(manifest.inputs)} files -> {len(kept)} partitions"
    )


def compaction_sql(dataset: Dataset, root: str, inputs: list[str], superseded: list[str]) -> str:
    """Every input row with `__kept` (the view's choice), sorted by partition, then kept, then time."""
    places = [*dataset.partitions, "date"]
    prefix = f"{root}/{dataset.name}/"
    partitioned = [path for path in inputs if dataset.partitions and "=" in _folder_of(path, prefix)]
    combined = [path for path in inputs if path not in set(partitioned)]
    branches = [rows_sql(dataset, partitioned)] if partitioned else []
    if combined:
        branches.append(rows_sql(dataset, combined, () if dataset.partitions else None))
    if superseded:
        branches.append(rows_sql(dataset, superseded))
    order = [*places, "__kept", dataset.event_time, *dataset.key, "received_at", "source"]
    return (
        "WITH lake_rows AS (\n" + "\n    UNION ALL\n".join(branches) + "\n),\n" + ranked_body(dataset) + "\n"
        f"SELECT {', '.join(_quoted(c) for c in (*dataset.columns, 'date'))}, __rank = 1 AS __kept\n"
        f"FROM ranked ORDER BY {', '.join(_quoted(c) for c in dict.fromkeys(order))}"
    )


def _folder_of(path: str, prefix: str) -> str:
    """The part of a file's path between the dataset folder and its date folder ("symbol=X/" or "")."""
    return path.removeprefix(prefix).split("date=", 1)[0]


@contextlib.contextmanager
def connection() -> Iterator[duckdb.DuckDBPyConnection]:
    with tempfile.TemporaryDirectory(prefix="bingx-compact-") as spill:
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET enable_progress_bar = false")  # it prints to stdout: not in a CLI's output
            con.execute("SET memory_limit = '256MB'")  # sorts spill to disk: ~510 MiB peak RSS on 5M rows
            con.execute("SET threads = 2")  # off the hot path: a background job, not the box's owner
            con.execute(f"SET temp_directory = '{spill}'")
            register_filesystems(con)  # the inputs of a lake on an object store
            yield con
        finally:
            con.close()


def write_runs(
    lake: Lake,
    dataset: Dataset,
    reader: pa.RecordBatchReader,
    target: Callable[[tuple[Any, ...], bool], str | None],
) -> dict[tuple[tuple[Any, ...], bool], int]:
    """Stream a result sorted by partition, day and `__kept` into one file per run; return rows per run.

    `target` names a run's file from its (partition values + day, kept), or None to skip the run. Memory
    holds one batch, not a partition: a whole-market day of trades goes through in bounded RSS.
    """
    places = [*dataset.partitions, "date"]
    schema = pa.schema([field for field in dataset.schema if field.name not in dataset.partitions])
    counts: dict[tuple[tuple[Any, ...], bool], int] = {}
    current: tuple[tuple[Any, ...], bool] | None = None
    part: _Part | None = None
    group: list[pa.RecordBatch] = []  # the rows of the current file's next row group
    grouped = 0  # rows in `group`
    try:
        for batch in reader:
            for start, stop in _runs([batch.column(name) for name in (*places, "__kept")]):
                run = batch.slice(start, stop - start)
                *values, kept = (run.column(name)[0].as_py() for name in (*places, "__kept"))
                values[-1] = values[-1].isoformat()
                key = (tuple(values), bool(kept))
                if key != current:
                    _write_group(part, group, schema)
                    grouped = 0
                    _finish(lake, part)
                    part, current = None, key
                    path = target(*key)
                    if path is not None:
                        folder, name = path.rsplit("/", 1)
                        part = lake._open(folder, name, schema, ZSTD_LEVEL)
                counts[key] = counts.get(key, 0) + run.num_rows
                if part is not None:
                    group.append(run)
                    grouped += run.num_rows
                    if grouped >= FILE_ROW_GROUP:
                        _write_group(part, group, schema)
                        grouped = 0
        _write_group(part, group, schema)
        _finish(lake, part)
    except BaseException:
        if part is not None:
            lake._abandon(part)
        raise
    return counts


def _write_group(part: _Part | None, group: list[pa.RecordBatch], schema: pa.Schema) -> None:
    """Write the buffered rows as one row group of `part` (none: nothing to write) and empty the buffer."""
    if part is not None and group:
        table = pa.Table.from_batches(group).select(schema.names).cast(schema)
        part.writer.write_table(table, row_group_size=table.num_rows)  # one group, not one and a remainder
    group.clear()


def _finish(lake: Lake, part: _Part | None) -> None:
    """Footer, fsync, rename into place (atomic, replacing a file of that name), folder synced."""
    if part is not None:
        lake._finish(part)
        lake._sync_dirs({part.final.rsplit("/", 1)[0]})


def _runs(columns: list[pa.Array]) -> list[tuple[int, int]]:
    """Start and stop of each run of rows equal in every one of `columns` (non-null partition values)."""
    size = len(columns[0])
    if size == 0:
        return []
    starts = [0]
    if size > 1:
        differs = pa.array([False] * (size - 1))
        for column in columns:
            differs = pc.or_(differs, pc.not_equal(column.slice(1), column.slice(0, size - 1)))
        starts += [index + 1 for index in pc.indices_nonzero(differs).to_pylist()]
    return list(zip(starts, [*starts[1:], size], strict=True))


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class Compactor:
    """Compaction of closed days every `every_s` in a thread of a long-running process (`record`).

    Off the hot path: the thread runs at a lower CPU priority (Linux nice, inherited by DuckDB's workers),
    a round that finds the lease taken waits for the next, and a failing round is logged, never fatal.
    """

    def __init__(
        self, lake: Lake, every_s: float, older_than_s: float = 3600.0, grace_s: float = GRACE_S
    ) -> None:
        self.lake, self.every_s, self.older_than_s, self.grace_s = lake, every_s, older_than_s, grace_s
        self.rounds = 0
        self.rows = 0  # rows rewritten into compacted files, over every round
        self.files_removed = 0
        self.failures = 0  # rounds that raised
        self.last_at: float | None = None  # wall clock of the last round that finished
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="compactor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the thread to stop after the current day; wait up to `timeout_s` (a kill is safe too)."""
        self._stop.set()
        self._thread.join(timeout_s)

    def _loop(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        while not self._stop.wait(self.every_s):
            before = (datetime.now(UTC) - timedelta(seconds=self.older_than_s)).date()
            try:
                summary = compact(self.lake, compactable(), before, self.grace_s)
            except LeaseHeld:
                log.debug("compactor: another process holds the lease; next round in %.0fs", self.every_s)
                continue
            except Exception:  # one bad round never stops the recorder; the next one retries
                self.failures += 1
                log.exception("compactor: round failed; retrying in %.0fs", self.every_s)
                continue
            self.rounds += 1
            self.rows += summary.rows
            self.files_removed += summary.files_removed
            self.last_at = time.time()
            if summary.days:
                log.info("compactor: %s", "; ".join(summary.days))
