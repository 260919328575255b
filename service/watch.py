"""What `record` and `poll` run beside their work: the status document, the metrics feed and the server.

Metrics are fed when `--metrics` is given or PROMETHEUS_MULTIPROC_DIR is set (a `run` child: the service
serves); prometheus-client is imported only then. `record` always writes its status file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from service.status import STATUS, WRITE_EVERY_S, Observer


class Watch:
    """Binds the metrics server first (a bad or taken address fails before any work), then observes."""

    def __init__(self, data_dir: Path, address: str | None, kind: str) -> None:
        self.data_dir, self.kind = data_dir, kind
        self.started_at = time.time()
        self.exporter: Any = None
        self.server: Any = None
        self.observer: Observer | None = None
        if address is not None or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from service.metrics import Exporter, parse_address, serve

            if address is not None:
                parse_address(address)  # raises BadAddress before anything is bound
            self.exporter = Exporter()
            if address is not None:
                self.server = serve(address, data_dir, document=self.document)

    def document(self) -> dict[str, Any] | None:
        return self.observer.latest() if self.observer is not None else None

    def observe_recorder(self, recorder: Any, compactor: Any = None) -> Observer:
        """Start observing a Recorder (recorder.command.record calls this just before it runs)."""
        from recorder.stats import recorder_document

        def build() -> dict[str, Any]:
            return self._served(recorder_document(recorder, recorder.sealed, self.started_at, compactor))

        # metrics off: a document only when the file is due (~6 ms for 1,000 topics)
        every_s = 1.0 if self.exporter is not None else WRITE_EVERY_S
        self.observer = Observer(build, self.data_dir / STATUS, self.exporter, every_s).start()
        return self.observer

    def observe_process(self) -> Observer | None:
        """Observe a process without topics (poll): its REST use and lake writes; no status file."""
        if self.exporter is None:
            return None
        from recorder.stats import process_document

        self.observer = Observer(
            lambda: self._served(process_document(self.kind, self.started_at)), None, self.exporter
        )
        return self.observer.start()

    def _served(self, document: dict[str, Any]) -> dict[str, Any]:
        if self.server is not None:
            document["metrics_url"] = f"http://{self.server.address}"
        return document

    def close(self) -> None:
        if self.observer is not None:
            self.observer.stop()
        if self.server is not None:
            self.server.close()
