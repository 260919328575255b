"""What the simulator sent: per connection, per topic, garbage frames, and the REST server's ledger.

Thread-safe; the WebSocket loop writes, tests read. `bounded=True` keeps counts only (long benchmarks).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass
class ConnectionRecord:
    id: int
    peer: str
    connected_ms: int
    closed_ms: int | None = None
    close_reason: str | None = None
    topics: list[str] = field(default_factory=list)  # acked with code 0, in order, still subscribed
    refused: list[tuple[str, int]] = field(default_factory=list)  # (topic, code)
    frames_sent: int = 0
    pings_sent: int = 0
    pongs_received: int = 0


@dataclass(frozen=True)
class SentFrame:
    topic: str
    sent_ms: int
    text: str  # the exact JSON text inside the gzip member
    payload: dict[str, Any]  # the parsed message (do not mutate)
    connections: tuple[int, ...]  # who got it
    leaked: bool = False  # sent for a topic that was refused (BingX does this, §17)


@dataclass(frozen=True)
class GarbageFrame:
    kind: str
    sent_ms: int
    data: bytes  # the frame's payload bytes as written
    connections: tuple[int, ...]


class Ledger:
    """Append-only record of everything the simulator sent."""

    def __init__(self, bounded: bool = False) -> None:
        self.bounded = bounded
        self._lock = threading.Lock()
        self._connections: dict[int, ConnectionRecord] = {}
        self._frames: dict[str, list[SentFrame]] = {}
        self._counts: dict[str, int] = {}
        self._garbage: list[GarbageFrame] = []
        self._events: list[tuple[int, str, str]] = []  # (ms, what, detail): fault actions
        self.rest: Any = None  # the REST server's ledger, attached by the Simulator

    def open(self, record: ConnectionRecord) -> None:
        with self._lock:
            self._connections[record.id] = record

    def update(self, connection_id: int, **changes: Any) -> None:
        with self._lock:
            record = self._connections[connection_id]
            for name, value in changes.items():
                setattr(record, name, value)

    def bump(self, connection_id: int, counter: str, by: int = 1) -> None:
        with self._lock:
            record = self._connections[connection_id]
            setattr(record, counter, getattr(record, counter) + by)

    def frame(self, frame: SentFrame) -> None:
        with self._lock:
            self._counts[frame.topic] = self._counts.get(frame.topic, 0) + 1
            for connection_id in frame.connections:
                self._connections[connection_id].frames_sent += 1
            if not self.bounded:
                self._frames.setdefault(frame.topic, []).append(frame)

    def bulk(self, topic: str, connection_id: int, count: int) -> None:
        """Count replayed (firehose) frames without storing them."""
        with self._lock:
            self._counts[topic] = self._counts.get(topic, 0) + count
            self._connections[connection_id].frames_sent += count

    def refuse(self, connection_id: int, topic: str, code: int) -> None:
        with self._lock:
            self._connections[connection_id].refused.append((topic, code))

    def garbage(self, frame: GarbageFrame) -> None:
        with self._lock:
            self._garbage.append(frame)

    def event(self, ms: int, what: str, detail: str = "") -> None:
        with self._lock:
            self._events.append((ms, what, detail))

    @property
    def connections(self) -> list[ConnectionRecord]:
        """Copies of every connection record, oldest first."""
        with self._lock:
            return [
                replace(r, topics=list(r.topics), refused=list(r.refused)) for r in self._connections.values()
            ]

    def frames(self, topic: str) -> list[SentFrame]:
        """Every data frame sent for `topic`, in send order (empty when bounded)."""
        with self._lock:
            return list(self._frames.get(topic, ()))

    @property
    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    @property
    def garbage_frames(self) -> list[GarbageFrame]:
        with self._lock:
            return list(self._garbage)

    @property
    def events(self) -> list[tuple[int, str, str]]:
        with self._lock:
            return list(self._events)

    def summary(self) -> dict[str, Any]:
        """A JSON-able overview (the admin endpoint's GET /ledger)."""
        connections = self.connections
        return {
            "connections": [
                {
                    "id": r.id,
                    "peer": r.peer,
                    "connected_ms": r.connected_ms,
                    "closed_ms": r.closed_ms,
                    "close_reason": r.close_reason,
                    "topics": r.topics,
                    "refused": [list(item) for item in r.refused],
                    "frames_sent": r.frames_sent,
                    "pings_sent": r.pings_sent,
                    "pongs_received": r.pongs_received,
                }
                for r in connections
            ],
            "frames_per_topic": self.counts,
            "garbage": [
                {"kind": g.kind, "sent_ms": g.sent_ms, "connections": list(g.connections)}
                for g in self.garbage_frames
            ],
            "events": [list(e) for e in self.events],
            "rest": self._rest_summary(),
        }

    def _rest_summary(self) -> dict[str, Any] | None:
        snapshot = getattr(self.rest, "snapshot", None)
        if not callable(snapshot):
            return None
        per_path: dict[str, int] = {}
        for request in snapshot():
            per_path[request.path] = per_path.get(request.path, 0) + 1
        return {"requests_per_path": per_path, "throttled": getattr(self.rest, "throttled", None)}
