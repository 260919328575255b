"""Every row the lake stored for a dataset, each once: for readers that need the rows as received (book
replays, stream-vs-REST parity), repeats and superseded copies included, not the views' choice."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow.fs as pafs

from schemas.dataset import Dataset
from storage import layout
from storage.compact import redundant
from storage.lake import Lake


def stored_files(lake: Lake, dataset: Dataset) -> list[str]:
    """The dataset's files in both areas and in _superseded/, less those a compaction made redundant."""
    selector = pafs.FileSelector(
        f"{lake.root}/{layout.SUPERSEDED}/{dataset.name}", recursive=True, allow_not_found=True
    )
    aside = [
        info.path
        for info in lake.filesystem.get_file_info(selector)
        if info.is_file and info.base_name.endswith(".parquet")
    ]
    retired, unfinished = redundant(lake, dataset)
    return sorted(
        path
        for path in [*lake.files(dataset.name), *aside]
        if path not in retired and not any(f"-{output}." in path.rsplit("/", 1)[-1] for output in unfinished)
    )


def scan_sql(files: Sequence[str], options: str) -> str:
    """One relation over files whose hive keys differ (DuckDB refuses one read_parquet over two schemes):
    a read_parquet per scheme, UNION ALL BY NAME. `files` must not be empty."""
    schemes: dict[tuple[str, ...], list[str]] = {}
    for path in files:
        schemes.setdefault(tuple(layout.hive_values(path)), []).append(path)
    scans = [
        "SELECT * FROM read_parquet([{}], {})".format(", ".join(_literal(path) for path in group), options)
        for group in schemes.values()
    ]
    return "(" + "\n    UNION ALL BY NAME\n".join(scans) + ")"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
