"""One connection's subscription book: wanted topics, paced requests in flight, and what BingX acked."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from exchange.frames import Ack, subscribe_message, unsubscribe_message
from recorder.topics import Pacer


@dataclass(frozen=True)
class Answer:
    """What an ack meant: "subscribed", "refused" or "unsubscribed" for a topic."""

    event: str
    topic: str


class Subscriptions:
    """Not thread-safe: its session's owner thread (recorder/session.py) is the only one touching it."""

    def __init__(
        self,
        name: str,
        topics: Iterable[str],
        per_second: float,
        ack_timeout_s: float,
        shared_pacer: Pacer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.ack_timeout_s = ack_timeout_s
        self.clock = clock
        self.topics: set[str] = set(topics)
        self.acked: set[str] = set()  # data for any other topic is dropped (BingX leaks refused topics)
        self.refused: dict[str, int] = {}
        self._ops: deque[tuple[str, str, str | None]] = deque()  # (op, topic, request id if a resend)
        self._inflight: dict[str, tuple[str, str, float]] = {}  # request id -> (op, topic, sent at)
        self._requests = 0
        self._pacer = Pacer(per_second, clock=clock)
        self._shared_pacer = shared_pacer

    def add(self, topic: str) -> None:
        if topic not in self.topics:
            self.topics.add(topic)
            self._ops.append(("sub", topic, None))

    def remove(self, topic: str) -> None:
        if topic in self.topics:
            self.topics.discard(topic)
            self._ops.append(("unsub", topic, None))

    def resubscribe(self, topic: str) -> bool:
        """Queue an unsubscribe and a subscribe of a topic (a book resync wants a new snapshot)."""
        if topic not in self.topics:
            return False
        self._ops.append(("unsub", topic, None))
        self._ops.append(("sub", topic, None))
        return True

    def restart(self) -> None:
        """A new socket: nothing is acked or in flight; every wanted topic is queued again."""
        self.acked.clear()
        self._inflight.clear()
        self._ops = deque(("sub", topic, None) for topic in sorted(self.topics))

    @property
    def in_flight(self) -> bool:
        return bool(self._inflight)

    def next_request(self) -> tuple[str | None, bool]:
        """(the next request text if the pacers allow one now, whether more are queued)."""
        if not self._ops:
            return None, False
        if not self._pacer.try_take() or (self._shared_pacer and not self._shared_pacer.try_take()):
            return None, True
        op, topic, request_id = self._ops.popleft()
        if request_id is None:
            self._requests += 1
            request_id = f"{self.name}-{self._requests}"
        self._inflight[request_id] = (op, topic, self.clock())
        if op == "unsub":
            self.acked.discard(topic)
        build = subscribe_message if op == "sub" else unsubscribe_message
        return build(topic, request_id), bool(self._ops)

    def answer(self, ack: Ack) -> Answer | None:
        """Apply an ack; None when it answers no request of ours or repeats one already applied."""
        request = self._inflight.pop(ack.id, None)
        if request is None:
            return None
        op, topic, _ = request
        if op == "unsub":
            self.acked.discard(topic)
            return Answer("unsubscribed", topic)
        if ack.code != 0:
            self.refused[topic] = ack.code
            return Answer("refused", topic)
        if topic in self.acked:
            return None
        self.acked.add(topic)
        return Answer("subscribed", topic)

    def overdue(self, now: float) -> list[str]:
        """Queue again, under the same id, every request whose ack is late; return their ids.

        The id stays in flight, so a late ack of the first copy still counts.
        """
        late = [rid for rid, (_, _, sent) in self._inflight.items() if now - sent > self.ack_timeout_s]
        for request_id in late:
            op, topic, _ = self._inflight[request_id]
            self._inflight[request_id] = (op, topic, float("inf"))  # re-armed when sent again
            self._ops.append((op, topic, request_id))
        return late
