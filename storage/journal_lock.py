"""One writer per journal: an flock'd file holding its pid; the kernel drops the lock when the holder dies."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from storage.errors import JournalLocked

LOCK_NAME = ".writer.lock"


class WriterLock:
    """Held from construction until `release`; raises JournalLocked (naming the holder's pid) if taken."""

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_NAME
        # O_CLOEXEC (Python's default): a converter child never inherits the lock and outlives it with it
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(self._fd)
            self.release()
            raise JournalLocked(
                f"{root} is in use by another recorder (pid {holder}): stop it first, "
                "or give this one its own --data-dir"
            ) from None
        except BaseException:
            self.release()
            raise
        # The pid is only for the message above: the lock itself is the flock, never the file's content.
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        """Let another writer in (idempotent). The file stays: unlinking it would race the next holder."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode().strip()
        if text:
            return str(int(text))
    return "unknown"
