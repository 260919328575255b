"""Rows a killed run wrote but had not yet recorded in its cursor, so that a resumed run skips them.

The cursor is saved after the files are written; a kill in between leaves "orphan" files beyond the
cursor. Their rows are still correct facts, so rather than deleting them we read their keys and do not
write those rows a second time. Orphans are recognised by the lake's file names (storage.layout.part_name):
backfill files whose first event lies inside a gap.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from schemas import DATASETS
from storage.lake import Lake
from storage.layout import first_event_ms, series_folder


def orphan_keys(
    lake: Lake, dataset: str, symbol: str, interval: str | None, gaps: list[tuple[int, int]], column: str
) -> set[int]:
    """Return the values of `column` (a timestamp as epoch ms, or an integer-like id) in orphan files."""
    values = (symbol, interval) if interval else (symbol,)
    folder = series_folder(lake.root, DATASETS[dataset], values)
    selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
    keys: set[int] = set()
    for info in lake.filesystem.get_file_info(selector):
        first_ms = first_event_ms(info.base_name, "backfill") if info.is_file else None
        if first_ms is None or not any(low <= first_ms < high for low, high in gaps):
            continue
        values = pq.read_table(info.path, columns=[column], filesystem=lake.filesystem)[column]
        if pa.types.is_timestamp(values.type):
            values = pc.cast(pc.cast(values, pa.timestamp("ms", tz="UTC")), pa.int64())
        keys.update(int(value) for value in values.to_pylist() if value is not None)
    return keys
