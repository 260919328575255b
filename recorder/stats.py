"""What a running recorder knows about itself, as one JSON-able document that the status file and the metrics
both read (service/). It reads plain counters the hot paths keep; nothing here runs per frame.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import orjson

from exchange.ratelimit import LIMITERS
from exchange.rest import REQUESTS, THROTTLED
from storage.journal import STATE_NAME as JOURNAL_STATE
from storage.journal import segments
from storage.lake import LAST_WRITTEN, WRITTEN

VERSION = 1


def channel_of(topic: str) -> str:
    """A topic's channel as --channels spells it: "BTC-USDT@depth20@500ms" -> "depth20@500ms"."""
    return topic.partition("@")[2]


def exchange_ms(channel: str, text: bytes) -> int | None:
    """The exchange's own time in one data frame, or None where it has none (a kline's T is its open time).

    Shapes: tests/payloads/ws_trade.json (data[0].T, newest first), ws_depth5.json (ts), ws_incr_depth_*.json
    (data.time), ws_ticker.json, ws_book_ticker.json, ws_mark_price.json, ws_last_price.json (data.E).
    """
    if channel.startswith("kline"):
        return None
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict):
        return None
    if isinstance(message.get("ts"), int):
        return int(message["ts"])
    data = message.get("data")
    if isinstance(data, list):
        data = data[0] if data else None
    if isinstance(data, dict):
        for key in ("E", "time", "T"):
            if isinstance(data.get(key), int):
                return int(data[key])
    return None


def journal_backlog(data_dir: Path, since: float) -> tuple[int, float]:
    """(bytes journaled but not yet converted into the lake, seconds the oldest of them has waited).

    The seconds are measured from the converter's last commit (or `since`, before the first one): every byte
    after the committed offset arrived after that moment, so this bounds the lake's lag from above.
    """
    root = data_dir / "journal"
    state = data_dir / "state" / f"{JOURNAL_STATE}.json"
    try:
        document = orjson.loads(state.read_bytes())
        segment, position, committed_at = str(document["segment"]), int(document["position"]), 0.0
        committed_at = state.stat().st_mtime
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        segment, position, committed_at = "", 0, since
    backlog = 0
    for name in segments(root):
        if name < segment:
            continue
        try:
            size = (root / name).stat().st_size
        except FileNotFoundError:  # converted and removed meanwhile
            continue
        backlog += max(0, size - (position if name == segment else 0))
    return backlog, (max(0.0, time.time() - committed_at) if backlog else 0.0)


class Sealed:
    """What the converter reported after each seal (recorder.process): rows written, the seal's duration."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rows: Counter[tuple[str, str]] = Counter()  # (dataset, source): the converter process's rows
        self.last_at: dict[str, float] = {}
        self.seals = 0
        self.recent: deque[tuple[int, float]] = deque(maxlen=64)  # (seal number, seconds) for the metrics

    def sealed(self, report: dict[str, Any]) -> None:
        """Take one report: {"seal_s": float, "rows": [[dataset, source, n], ...], "at": epoch seconds}."""
        with self._lock:
            self.seals += 1
            self.recent.append((self.seals, float(report.get("seal_s", 0.0))))
            for name, source, count in report.get("rows", ()):
                self.rows[str(name), str(source)] += int(count)
                self.last_at[str(name)] = float(report.get("at", time.time()))

    def document(self) -> dict[str, Any]:
        with self._lock:
            last = self.recent[-1][1] if self.recent else None
            return {"seals": self.seals, "last_s": last, "recent": [list(item) for item in self.recent]}


def datasets(sealed: Sealed | None = None) -> dict[str, Any]:
    """Rows written per dataset and source (this process's and its converter's), when each last got some."""
    rows = Counter(WRITTEN)
    last = dict(LAST_WRITTEN)
    if sealed is not None:
        with sealed._lock:
            rows.update(sealed.rows)
            for name, at in sealed.last_at.items():
                last[name] = max(at, last.get(name, 0.0))
    found: dict[str, Any] = {}
    for (name, source), count in sorted(rows.items()):
        entry = found.setdefault(name, {"rows": {}, "last_written_at": last.get(name)})
        entry["rows"][source] = count
    return found


def rest() -> dict[str, Any]:
    """REST requests and throttled answers per group, and the share of each budget in use (its fullest)."""
    used: dict[str, float] = {}
    for limiter in list(LIMITERS):
        for name, share in limiter.used().items():
            used[name] = max(share, used.get(name, 0.0))
    return {"requests": dict(REQUESTS), "throttled": dict(THROTTLED), "budget_used": used}


def process_document(kind: str, started_at: float) -> dict[str, Any]:
    """The part every process has (record, poll, ...): who, since when, its REST use and its lake writes."""
    return {
        "version": VERSION,
        "process": kind,
        "pid": os.getpid(),
        "started_at": started_at,
        "written_at": time.time(),
        "rest": rest(),
        "datasets": datasets(),
    }


def recorder_document(
    recorder: Any, sealed: Sealed, started_at: float, compactor: Any = None
) -> dict[str, Any]:
    """The whole document of a running recorder (recorder.runner.Recorder): see service/status.py."""
    document = process_document("record", started_at)
    document["datasets"] = datasets(sealed)
    wall = time.time()
    connections: list[dict[str, Any]] = []
    topics: dict[str, dict[str, Any]] = {}
    for connection in list(recorder.connections):
        since_frame = connection.clock() - wall  # monotonic -> wall clock offset of this connection
        seen = connection.snapshot()
        connections.append(
            {
                "name": connection.name,
                "connected": seen.connected,
                "topics": len(seen.topics),
                "acked": len(seen.acked),
                "refused": len(seen.refused),
                "frames": seen.frames,
                "bytes": seen.received_bytes,
                "reconnects": seen.reconnects,
                "silences": seen.silences,
                "refusals": seen.refusals,
            }
        )
        for topic in sorted(seen.topics):
            topics[topic] = {"channel": channel_of(topic), "frames": 0, "last_frame_at": None, "lag_s": None}
            if topic in seen.refused:
                topics[topic]["refused"] = seen.refused[topic]
        for topic, (frames, at_monotonic, text) in seen.seen.items():
            entry = topics.setdefault(
                topic, {"channel": channel_of(topic), "frames": 0, "last_frame_at": None, "lag_s": None}
            )
            entry["frames"] += frames
            at = at_monotonic - since_frame
            if entry["last_frame_at"] is None or at >= entry["last_frame_at"]:
                entry["last_frame_at"] = at
                exchange = exchange_ms(entry["channel"], text)
                entry["lag_s"] = None if exchange is None else round(at - exchange / 1000, 6)
    document.update(
        connections=connections,
        topics=topics,
        channels=_channels(topics),
        bytes_received=sum(c["bytes"] for c in connections),
        journal=dict(
            zip(("backlog_bytes", "backlog_s"), journal_backlog(recorder.data_dir, started_at), strict=True)
        ),
        seal=sealed.document(),
        heal=_heal(getattr(recorder, "healing", None)),
        compaction=_compaction(compactor),
    )
    return document


def _channels(topics: dict[str, Any]) -> dict[str, Any]:
    channels: dict[str, Any] = {}
    for entry in topics.values():
        channel = channels.setdefault(entry["channel"], {"topics": 0, "frames": 0, "lag_s": None})
        channel["topics"] += 1
        channel["frames"] += entry["frames"]
        if entry["lag_s"] is not None:
            channel["lag_s"] = max(entry["lag_s"], channel["lag_s"] if channel["lag_s"] is not None else -1e9)
    return channels


def _heal(healing: Any) -> dict[str, Any] | None:
    if healing is None:
        return None
    return {
        "passes": healing.passes,
        "rows": healing.rows,
        "failures": healing.failures,
        "last_at": healing.last_at,
        "last_rows": healing.last_rows,
    }


def _compaction(compactor: Any) -> dict[str, Any] | None:
    if compactor is None:
        return None
    return {
        "rounds": compactor.rounds,
        "rows": compactor.rows,
        "files_removed": compactor.files_removed,
        "failures": compactor.failures,
        "last_at": compactor.last_at,
    }
