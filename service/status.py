"""The status file (`<data-dir>/state/status.json`) and `bingx-recorder status`: one screen for a person.

A running `record` (and `run`'s record child) rewrites the file every 2 s, atomically, metrics on or off.
`status` reads it, or a running process's /status over HTTP, plus `state/service.json` if `run` wrote one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STATUS = "state/status.json"
SERVICE = "state/service.json"  # written by `run` (service/run.py); read tolerantly
WRITE_EVERY_S = 2.0


def now() -> float:
    return time.time()


def read(data_dir: Path, name: str = STATUS) -> dict[str, Any] | None:
    """The document at `<data_dir>/<name>`, or None when it is absent or not a JSON object."""
    try:
        document = json.loads((data_dir / name).read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def write_file(path: Path, document: dict[str, Any]) -> None:
    """Replace the file atomically (temp + rename in its folder): a reader sees the old or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(json.dumps(document, sort_keys=True))
        os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise


def with_rates(document: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """Add frames/s per channel (and rows/s per dataset) measured since the previous document."""
    if previous is None:
        return document
    seconds = float(document["written_at"]) - float(previous["written_at"])
    if seconds <= 0:
        return document
    before = previous.get("channels") or {}
    for channel, entry in (document.get("channels") or {}).items():
        then = before.get(channel, {}).get("frames", entry["frames"])
        entry["rate"] = round(max(0, entry["frames"] - then) / seconds, 2)
    return document


class Observer:
    """A thread that, every second, builds the process's status document, feeds the metrics exporter and
    (every WRITE_EVERY_S) rewrites the status file. `latest()` is the document a server shows."""

    def __init__(
        self,
        build: Callable[[], dict[str, Any]],
        path: Path | None,
        exporter: Any = None,  # service.metrics.Exporter, when metrics are on
        every_s: float = 1.0,
    ) -> None:
        self.build, self.path, self.exporter, self.every_s = build, path, exporter, every_s
        self._latest: dict[str, Any] | None = None
        self._previous: dict[str, Any] | None = None
        self._written_at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._failures: set[str] = set()
        self._thread = threading.Thread(target=self._loop, name="status", daemon=True)

    def start(self) -> Observer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread after a last document (so the file says what the process ended with)."""
        self._stop.set()
        self._thread.join(5)
        self.refresh(write=True)

    def latest(self) -> dict[str, Any] | None:
        """A fresh document (built now: a scrape sees every frame counted so far)."""
        return self.refresh()

    def refresh(self, write: bool = False) -> dict[str, Any] | None:
        with self._lock:
            try:
                document = self.build()
                if self.exporter is not None:
                    self.exporter.update(document, document["written_at"])
                self._latest = document
                due = write or document["written_at"] - self._written_at >= WRITE_EVERY_S * 0.9
                if self.path is not None and due:
                    write_document = with_rates(document, self._previous)
                    write_file(self.path, write_document)
                    self._previous, self._written_at = document, document["written_at"]
            except Exception as error:  # the status must never stop the recording; said once per kind
                kind = type(error).__name__
                if kind not in self._failures:
                    self._failures.add(kind)
                    log.warning("status: could not update (%s: %s)", kind, error)
            return self._latest

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.refresh()


def fetch(url: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """GET the /status document of a running process at `url` (http://HOST:PORT, any path on it)."""
    base = url.rstrip("/")
    for suffix in ("/status", "/metrics", "/health"):
        base = base.removesuffix(suffix)
    try:
        with urllib.request.urlopen(base + "/status", timeout=timeout_s) as answer:
            document = json.loads(answer.read())
    except urllib.error.HTTPError as error:
        raise StatusUnavailable(f"{base}/status answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise StatusUnavailable(f"cannot read {base}/status: {reason}") from None
    if not isinstance(document, dict):
        raise StatusUnavailable(f"{base}/status did not answer a JSON object")
    return document


class StatusUnavailable(Exception):
    """No status could be read: no file in the data dir, or the URL did not answer one."""


def is_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True
