"""state/service.json: what `run` is running, for `status` and for people. Small, replaced atomically."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

STATE_FILE = "state/service.json"
LOCK_FILE = "state/service.lock"


class ServiceRunning(Exception):
    """Another `run` holds this data dir: two supervisors would start two recorders and fight over state."""


@contextlib.contextmanager
def service_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data dir's service lock (an flock: the kernel drops it when we die) for the block."""
    path = data_dir / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # O_CLOEXEC by default: children do not hold it
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise ServiceRunning(
                f"{data_dir} is in use by another `run` (pid {holder}): stop it first, or give this one "
                "its own data_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def write_state(
    path: Path, pid: int, config: Path, started_at: float, children: dict[str, Any], stopped: bool
) -> None:
    """Replace the state file (temp + rename on one filesystem: a reader sees the old file or the new)."""
    document = {
        "pid": pid,
        "config": str(config),
        "started_at": round(started_at, 3),
        "updated_at": round(time.time(), 3),
        "stopped": stopped,
        "children": children,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{pid}.partial")
    partial.write_text(json.dumps(document, indent=1) + "\n")
    os.replace(partial, path)


def read_state(path: Path) -> dict[str, Any] | None:
    """The last state a service wrote there, or None if there is none (or it is not JSON)."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None
