"""Small JSON state documents (journal offsets, backfill cursors) replaced atomically. No network."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


class State:
    """A folder of named JSON documents; a write is all-or-nothing and survives kill -9 once it returns."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, name: str) -> dict[str, Any] | None:
        """Return the document called `name`, or None if it was never written."""
        try:
            return json.loads((self.root / f"{name}.json").read_text())  # type: ignore[no-any-return]
        except FileNotFoundError:
            return None

    def write(self, name: str, document: dict[str, Any]) -> None:
        """Replace the document called `name`: temp file, fsync, rename, fsync the folder."""
        final = self.root / f"{name}.json"
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(f".{final.name}.{os.getpid()}.partial")
        try:
            with open(partial, "w") as handle:
                json.dump(document, handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, final)  # atomic on one filesystem
        except BaseException:  # a full disk: the old document stays, and no temp file is left behind
            with contextlib.suppress(OSError):
                partial.unlink()
            raise
        directory = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
