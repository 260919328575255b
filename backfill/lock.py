"""One writer per backfill series: a lock file created with O_EXCL holding the owner's pid.

Two jobs on the same lake must not walk the same (dataset, symbol, interval) at once: both would write the
same rows (harmless to the views, but wasteful) and both would rewrite its cursor. A lock whose pid is no
longer alive (the owner was killed) is stale and is taken over; the takeover renames the stale file first,
which only one contender can do, so two contenders cannot both win.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from types import TracebackType

_UNWRITTEN_STALE_S = 30.0  # a creator writes its pid right after O_EXCL; an empty file this old was abandoned


class SeriesLock:
    """A context manager; `acquired` says whether this process holds the lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.acquired = False
        self.owner: int | None = None

    def __enter__(self) -> SeriesLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # a lost takeover race is retried, then the other process has it
            if self._create():
                self.acquired = True
                return self
            self.owner = _read_pid(self.path)
            if not _is_stale(self.path, self.owner):
                return self
            self._take_over_stale()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.acquired:
            self.path.unlink(missing_ok=True)
            self.acquired = False

    def _create(self) -> bool:
        try:
            handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(handle, str(os.getpid()).encode())
            os.fsync(handle)
        finally:
            os.close(handle)
        return True

    def _take_over_stale(self) -> None:
        stale = self.path.with_name(f"{self.path.name}.stale-{os.getpid()}")
        try:
            os.rename(self.path, stale)
        except FileNotFoundError:
            return  # someone else took it over first
        if not _is_stale(stale, _read_pid(stale)):
            # We raced a contender and moved its fresh lock: give it back (link fails if a third has one).
            with contextlib.suppress(FileExistsError):
                os.link(stale, self.path)
        stale.unlink(missing_ok=True)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip() or "0") or None
    except (FileNotFoundError, ValueError):
        return None


def _is_stale(path: Path, pid: int | None) -> bool:
    """A lock is stale when its owner is dead; a lock without a pid yet is stale only once it is old."""
    if pid is None:
        try:
            return time.time() - path.stat().st_mtime > _UNWRITTEN_STALE_S
        except FileNotFoundError:
            return True
    return not _is_alive(pid)


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
