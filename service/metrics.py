"""Prometheus metrics: their one declaration, the exporter that feeds them from a status document, the server.

The hot paths keep plain counters (recorder/stats.py reads them); `Exporter.update` turns their growth into
counter increments about once a second, so a frame costs no Prometheus call. Under `run`, whose children set
PROMETHEUS_MULTIPROC_DIR (read by prometheus-client when it is first imported), each process writes its own
multiprocess files and the service's one server (`serve(..., multiprocess=True)`) adds them up.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

from service import health, status

PREFIX = "bingx_recorder_"
METRICS = CollectorRegistry(auto_describe=True)  # ours only: the README lists exactly these names
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SEAL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _counter(name: str, documentation: str, *labels: str) -> Counter:
    return Counter(PREFIX + name, documentation, labels, registry=METRICS)


def _gauge(name: str, documentation: str, *labels: str, mode: str = "livesum") -> Gauge:
    return Gauge(PREFIX + name, documentation, labels, registry=METRICS, multiprocess_mode=mode)  # type: ignore[arg-type]


FRAMES = _counter("frames_received", "Data frames received, per subscribed channel.", "channel")
BYTES = _counter("bytes_received", "Bytes of every WebSocket frame as received (gzip), Pings included.")
ROWS = _counter("rows_written", "Rows made durable in the lake, per dataset and source.", "dataset", "source")
LAG = Histogram(
    PREFIX + "lag_seconds",
    "Exchange time to local receipt, per channel: each topic's newest frame, sampled once a second.",
    ["channel"],
    buckets=LAG_BUCKETS,
    registry=METRICS,
)
RECONNECTS = _counter("reconnects", "WebSocket reconnects.")
REFUSALS = _counter("refusals", "Subscriptions the exchange refused (an error ack).")
SILENCES = _counter("silences", "Sockets dropped for silence (no frame or no Ping within the timeout).")
BACKLOG_BYTES = _gauge("journal_backlog_bytes", "Journal bytes not yet converted into the lake.")
BACKLOG_SECONDS = _gauge(
    "journal_backlog_seconds", "Seconds the oldest unconverted journal bytes have waited.", mode="livemax"
)
SEAL = Histogram(
    PREFIX + "lake_seal_seconds",
    "Seconds one converter seal took (its files appearing in the lake).",
    buckets=SEAL_BUCKETS,
    registry=METRICS,
)
REQUESTS = _counter("rest_requests", "REST requests sent, per rate-limit group.", "group")
THROTTLED = _counter("rest_throttled", "REST answers that throttled us (429 / 100410 / 109429).", "group")
BUDGET = _gauge(
    "rest_budget_used_ratio", "Share of a REST budget used in its current window.", "budget", mode="livemax"
)
HEAL_PASSES = _counter("heal_passes", "Automatic heal passes finished.")
HEAL_FAILURES = _counter("heal_failures", "Automatic heal passes that failed.")
HEAL_ROWS = _counter("heal_rows", "Rows automatic healing wrote.")
COMPACTIONS = _counter("compaction_rounds", "Compaction rounds finished.")
COMPACTION_FAILURES = _counter("compaction_failures", "Compaction rounds that failed.")
COMPACTED_ROWS = _counter("compaction_rows", "Rows rewritten into compacted files.")
COMPACTED_FILES = _counter("compaction_files_removed", "Small files compaction removed.")
CONNECTIONS = _gauge("connections_up", "WebSocket connections currently open.")
AGE = _gauge(
    "last_frame_age_seconds",
    "Seconds since the last frame of each subscribed topic.",
    "topic",
    mode="livemin",
)


class Exporter:
    """Turns successive status documents (cumulative facts) into counter increments and gauge values."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, tuple[str, ...]], float] = {}
        self._lock = threading.Lock()
        self._seal = 0
        self._topics: set[str] = set()  # topics with an age series: a topic no longer subscribed loses it

    def update(self, document: dict[str, Any], now: float) -> None:
        """Apply one document (thread-safe); a fact that did not grow changes nothing."""
        with self._lock:
            self._update(document, now)

    def _grow(self, counter: Counter, value: float, *labels: str) -> None:
        key = (counter._name, labels)
        delta = value - self._seen.get(key, 0.0)
        self._seen[key] = value
        if delta > 0:
            (counter.labels(*labels) if labels else counter).inc(delta)

    def _update(self, document: dict[str, Any], now: float) -> None:
        for channel, entry in (document.get("channels") or {}).items():
            self._grow(FRAMES, entry["frames"], channel)
        for name, entry in (document.get("datasets") or {}).items():
            for source, rows in entry["rows"].items():
                self._grow(ROWS, rows, name, source)
        rest = document.get("rest") or {}
        for group, count in rest.get("requests", {}).items():
            self._grow(REQUESTS, count, group)
        for group, count in rest.get("throttled", {}).items():
            self._grow(THROTTLED, count, group)
        for budget, share in rest.get("budget_used", {}).items():
            BUDGET.labels(budget).set(share)
        if "connections" in document:
            self._recorder(document, now)

    def _recorder(self, document: dict[str, Any], now: float) -> None:
        connections = document["connections"]
        self._grow(BYTES, document.get("bytes_received", 0))
        self._grow(RECONNECTS, sum(c["reconnects"] for c in connections))
        self._grow(REFUSALS, sum(c["refusals"] for c in connections))
        self._grow(SILENCES, sum(c["silences"] for c in connections))
        CONNECTIONS.set(sum(1 for c in connections if c["connected"]))
        started = float(document.get("started_at") or now)
        for gone in self._topics - set(document["topics"]):
            AGE.remove(gone)
        self._topics = set(document["topics"])
        for topic, entry in document["topics"].items():
            last = entry["last_frame_at"]
            AGE.labels(topic).set(max(0.0, now - (last if last is not None else started)))
            key = ("lag", (topic,))
            if entry["lag_s"] is not None and entry["frames"] > self._seen.get(key, 0):
                LAG.labels(entry["channel"]).observe(max(0.0, entry["lag_s"]))
            self._seen[key] = entry["frames"]
        journal = document.get("journal") or {}
        BACKLOG_BYTES.set(journal.get("backlog_bytes", 0))
        BACKLOG_SECONDS.set(journal.get("backlog_s", 0.0))
        for number, seconds in (document.get("seal") or {}).get("recent", ()):
            if number > self._seal:
                SEAL.observe(seconds)
                self._seal = number
        heal, compaction = document.get("heal") or {}, document.get("compaction") or {}
        self._grow(HEAL_PASSES, heal.get("passes", 0))
        self._grow(HEAL_FAILURES, heal.get("failures", 0))
        self._grow(HEAL_ROWS, heal.get("rows", 0))
        self._grow(COMPACTIONS, compaction.get("rounds", 0))
        self._grow(COMPACTION_FAILURES, compaction.get("failures", 0))
        self._grow(COMPACTED_ROWS, compaction.get("rows", 0))
        self._grow(COMPACTED_FILES, compaction.get("files_removed", 0))


def names() -> list[str]:
    """Every metric name as exposed (counters with their _total), for the README check."""
    found = []
    for family in METRICS.collect():
        found.append(family.name + "_total" if family.type == "counter" else family.name)
    return sorted(found)


class BadAddress(ValueError):
    """--metrics is not HOST:PORT, or that address cannot be listened on (taken, not ours)."""


def parse_address(address: str) -> tuple[str, int]:
    """Split "HOST:PORT" (an IPv6 host in brackets); raise BadAddress with a one-line reason."""
    host, colon, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise BadAddress(f"--metrics {address!r}: expected HOST:PORT, e.g. 127.0.0.1:9464")
    return host, int(port)


@dataclass
class Server:
    """A running metrics server; `close()` stops it and frees the port."""

    http: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def address(self) -> str:
        host, port = self.http.server_address[:2]
        return f"{host!s}:{port}"

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.thread.join(5)


def serve(
    address: str,
    data_dir: Path,
    multiprocess: bool = False,
    document: Callable[[], dict[str, Any] | None] | None = None,
) -> Server:
    """Serve /metrics, /health and /status on `address` ("HOST:PORT"; port 0 picks a free one) in a thread.

    `document` returns this process's fresh status document (record, poll); without it (the `run` service)
    /health and /status read `<data_dir>/state/status.json`, which the recorder writes every 2 s.
    `multiprocess`: expose the sum of every process's files in $PROMETHEUS_MULTIPROC_DIR, not this process's.
    Raises BadAddress (one line) for a malformed or unusable address.
    """
    host, port = parse_address(address)
    if multiprocess:
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not directory:
            raise BadAddress(
                "multiprocess metrics need PROMETHEUS_MULTIPROC_DIR set before prometheus_client"
            )
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry = METRICS
    read = document or (lambda: status.read(data_dir))
    try:
        http = ThreadingHTTPServer((host, port), _handler(registry, read))
    except OSError as error:
        raise BadAddress(f"--metrics {address}: cannot listen there: {error.strerror or error}") from None
    http.daemon_threads = True
    thread = threading.Thread(target=http.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    return Server(http, thread)


def forget(pid: int) -> None:
    """A child process ended: drop its live gauges from the multiprocess files (its counters stay summed)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        _multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def _handler(
    registry: CollectorRegistry, read: Callable[[], dict[str, Any] | None]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == "/metrics":
                read()  # brings this process's metrics up to date first
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/health":
                code, body = health.verdict(read(), status.now())
                self._reply(code, json.dumps(body, indent=1).encode() + b"\n", "application/json")
            elif path == "/status":
                found = read()
                code = 200 if found is not None else 404
                self._reply(
                    code, json.dumps(found or {"error": "no status document"}).encode(), "application/json"
                )
            else:
                self._reply(404, b"not found: try /metrics, /health or /status\n", "text/plain")

        def _reply(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
