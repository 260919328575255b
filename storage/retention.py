"""Retention: delete raw_messages, superseded rows and journal archive segments older than N days.

Normalized datasets are never touched unless named. Whole day folders go at once (their date is in the
path), under the lake's maintenance lease so that no compaction is reading them meanwhile.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.fs as pafs

from storage import layout
from storage.lake import Lake
from storage.lease import Lease

KEEP_RAW_DAYS = 7  # raw frames cost ~110 GB a day for the whole market


@dataclass
class Pruned:
    """What prune deleted (or, dry, would delete): folders and files with their bytes."""

    paths: list[str] = field(default_factory=list)
    bytes: int = 0


def cutoff(keep_days: int, today: date | None = None) -> date:
    """The first day kept: days before it are deleted."""
    return (today or datetime.now(UTC).date()) - timedelta(days=keep_days)


def prune(
    lake: Lake,
    keep_raw_days: int = KEEP_RAW_DAYS,
    archive: Path | None = None,
    datasets: Iterable[str] = (),
    keep_data_days: int | None = None,
    dry_run: bool = False,
    today: date | None = None,
    clock: Callable[[], float] = time.time,
) -> Pruned:
    """Delete day folders of raw_messages and `_superseded/` (and of `datasets`, if named, older than
    `keep_data_days`) before the cut-off, and archived journal segments older than it."""
    pruned = Pruned()
    raw_before = cutoff(keep_raw_days, today).isoformat()
    targets = [(f"{lake.root}/raw_messages", raw_before), (f"{lake.root}/{layout.SUPERSEDED}", raw_before)]
    if keep_data_days is not None:
        data_before = cutoff(keep_data_days, today).isoformat()
        targets += [(f"{lake.root}/{name}", data_before) for name in datasets]
    with Lease(lake, clock=clock):
        for folder, before in targets:
            for day_folder, size in _old_days(lake, folder, before):
                pruned.paths.append(day_folder)
                pruned.bytes += size
                if not dry_run:
                    lake.filesystem.delete_dir(day_folder)
    if archive is not None:
        _prune_archive(archive, raw_before, dry_run, pruned)
    return pruned


def _old_days(lake: Lake, folder: str, before: str) -> list[tuple[str, int]]:
    """`date=<D>` folders under `folder` with D before `before`, and the bytes of the files in each."""
    selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
    sizes: dict[str, int] = {}
    for info in lake.filesystem.get_file_info(selector):
        if info.type == pafs.FileType.Directory and info.base_name.startswith("date="):
            if info.base_name.removeprefix("date=") < before:
                sizes.setdefault(info.path, 0)
        elif info.is_file:
            parent = info.path.rsplit("/", 1)[0]
            if parent.rsplit("/", 1)[-1].removeprefix("date=") < before and "/date=" in parent:
                sizes[parent] = sizes.get(parent, 0) + (info.size or 0)
    return sorted(sizes.items())


def _prune_archive(archive: Path, before: str, dry_run: bool, pruned: Pruned) -> None:
    """Archived journal segments whose last change is before the cut-off day (UTC)."""
    if not archive.is_dir():
        return
    limit = datetime.fromisoformat(before).replace(tzinfo=UTC).timestamp()
    for path in sorted(archive.rglob("*")):
        if path.is_file() and path.stat().st_mtime < limit:
            pruned.paths.append(str(path))
            pruned.bytes += path.stat().st_size
            if not dry_run:
                os.unlink(path)
