"""state/service.json: what `run` is running, for `status` and for people. Small, replaced atomically."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

STATE_FILE = "state/service.json"


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
