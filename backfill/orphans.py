"""Rows a killed run wrote but had not yet recorded in its cursor, so that a resumed run skips them.

The cursor is saved after the files are written; a kill in between leaves "orphan" files beyond the
cursor. Their rows are still correct facts, so rather than deleting them we read their keys and do not
write those rows a second time. Orphans are recognised by the lake's file names (storage.lake layout:
`<source>-<first-event-ms>-<uuid>.parquet`): backfill files whose first event lies inside a gap.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from storage.lake import Lake


def orphan_keys(
    lake: Lake, dataset: str, symbol: str, interval: str | None, gaps: list[tuple[int, int]], column: str
) -> set[int]:
    """Return the values of `column` (a timestamp as epoch ms, or an integer-like id) in orphan files."""
    folder = f"{lake.root}/{dataset}/symbol={symbol}" + (f"/interval={interval}" if interval else "")
    selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
    keys: set[int] = set()
    for info in lake.filesystem.get_file_info(selector):
        first_ms = _first_ms(info.base_name) if info.is_file else None
        if first_ms is None or not any(low <= first_ms < high for low, high in gaps):
            continue
        values = pq.read_table(info.path, columns=[column], filesystem=lake.filesystem)[column]
        if pa.types.is_timestamp(values.type):
            values = pc.cast(pc.cast(values, pa.timestamp("ms", tz="UTC")), pa.int64())
        keys.update(int(value) for value in values.to_pylist() if value is not None)
    return keys


def _first_ms(name: str) -> int | None:
    """Read the first-event ms of a backfill file name; None for other sources and unfinished files."""
    parts = name.split("-")
    if len(parts) < 3 or parts[0] != "backfill" or not name.endswith(".parquet") or not parts[1].isdigit():
        return None
    return int(parts[1])
